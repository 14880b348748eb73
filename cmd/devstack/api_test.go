package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestLoadAPIConfigFromTheTemplate(t *testing.T) {
	tpl, err := stack.LoadTemplate(testenv.RepoRoot(), nil)
	if err != nil {
		t.Fatal(err)
	}
	api, err := LoadAPIConfig(tpl)
	if err != nil {
		t.Fatal(err)
	}
	if api.Issuer != stack.LocalParams["JwtIssuer"] || !reflect.DeepEqual(api.Audience, []string{stack.LocalParams["JwtAudience"]}) {
		t.Errorf("issuer %q audience %q, want the local parameters", api.Issuer, api.Audience)
	}
	if api.Stage != "dev" {
		t.Errorf("stage = %q", api.Stage)
	}
	want := gateway.Route{Method: "GET", Path: "/tenants/{id}", Function: "ApiFunction", Auth: true}
	found, foundWebhook := false, false
	for _, r := range api.Routes {
		if reflect.DeepEqual(r, want) {
			found = true
		}
		// Stripe's webhook is public (its own function; the signature authenticates
		// it), and so are the operator console's static files (ApiFunction serves them;
		// the console signs in by itself and calls the guarded routes with its token).
		webhook := gateway.Route{Method: "POST", Path: "/webhooks/stripe", Function: "StripeWebhookFunction"}
		consoleRoute := r.Function == "ApiFunction" && r.Method == "GET" && (r.Path == "/console" || r.Path == "/console/{proxy+}")
		if reflect.DeepEqual(r, webhook) {
			foundWebhook = true
		} else if !r.Auth && !consoleRoute {
			t.Errorf("route %s is public; the template guards every route but the Stripe webhook and the console's files", r.Key())
		}
	}
	if !foundWebhook {
		t.Errorf("no public route POST /webhooks/stripe of StripeWebhookFunction in %+v", api.Routes)
	}
	if !found {
		t.Errorf("no route %+v in %+v", want, api.Routes)
	}
	// Every HttpApi event of every function is a route.
	fns, _ := tpl.Functions()
	n := 0
	for _, f := range fns {
		for _, ev := range f.Events {
			if ev.Type == "HttpApi" {
				n++
			}
		}
	}
	if len(api.Routes) != n {
		t.Errorf("%d routes for %d HttpApi events", len(api.Routes), n)
	}
}

const apiTemplate = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Issuer: { Type: String, Default: "https://issuer.example/" }
Globals:
  Function: { Runtime: provided.al2023, Handler: bootstrap, CodeUri: . }
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: v1
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Ref Issuer
              audience: [one, two]
  WebhookFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hook: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: post, Path: /webhooks/stripe, Auth: { Authorizer: NONE } } }
        Admin: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: GET, Path: /admin, Auth: { AuthorizationScopes: [tenants/admin] } } }
        Legacy: { Type: Api, Properties: { Method: GET, Path: /legacy } }
`

func TestLoadAPIConfigAuth(t *testing.T) {
	tpl, err := samtemplate.Parse("template.yaml", []byte(apiTemplate), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api, err := LoadAPIConfig(tpl)
	if err != nil {
		t.Fatal(err)
	}
	want := []gateway.Route{
		{Method: "GET", Path: "/admin", Function: "WebhookFunction", Auth: true, Scopes: []string{"tenants/admin"}},
		{Method: "POST", Path: "/webhooks/stripe", Function: "WebhookFunction", Auth: false},
	}
	if !reflect.DeepEqual(api.Routes, want) {
		t.Errorf("routes = %+v, want %+v", api.Routes, want)
	}
	if api.Issuer != "https://issuer.example/" || !reflect.DeepEqual(api.Audience, []string{"one", "two"}) || api.Stage != "v1" {
		t.Errorf("issuer %q audience %q stage %q", api.Issuer, api.Audience, api.Stage)
	}
	if len(api.Warnings) != 1 || !strings.Contains(api.Warnings[0], "Legacy") {
		t.Errorf("warnings = %q, want one about the REST API event", api.Warnings)
	}
}

func TestKebab(t *testing.T) {
	for id, want := range map[string]string{
		"ApiFunction":                   "api",
		"DowngradeSweepFunction":        "downgrade-sweep",
		"PlanRollbackProvisionFunction": "plan-rollback-provision",
		"HTTPApiFunction":               "http-api",
		"S3Export":                      "s3-export",
	} {
		if got := kebab(id); got != want {
			t.Errorf("kebab(%q) = %q, want %q", id, got, want)
		}
	}
	// Every function of the template has its directory under functions/.
	root := testenv.RepoRoot()
	tpl, err := stack.LoadTemplate(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	fns, _ := tpl.Functions()
	for _, f := range fns {
		if _, err := os.Stat(filepath.Join(root, "functions", kebab(f.LogicalID), "main.go")); err != nil {
			t.Errorf("%s: %v", f.LogicalID, err)
		}
	}
}

func TestRenderJSONLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{`[ApiFunction] {"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"request","status":200,"route":"GET /tenants/{id}","tenant_id":"tenant_acme"}` + "\n",
			`[ApiFunction] INFO  request route="GET /tenants/{id}" status=200 tenant_id=tenant_acme` + "\n"},
		{`[PlanCommitFunction] plain text line` + "\n", ""},
		{`[stepfunctions] {"not":"a log record"}` + "\n", ""},
		{`no prefix {"msg":"x"}` + "\n", ""},
	}
	for _, tt := range tests {
		got, ok := renderJSONLine([]byte(tt.in))
		if tt.want == "" {
			if ok {
				t.Errorf("renderJSONLine(%q) = %q, want it left alone", tt.in, got)
			}
			continue
		}
		if string(got) != tt.want {
			t.Errorf("renderJSONLine(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
