package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/console"
	"github.com/tenantflow/tenantflow/shared/httpapi"
)

func consoleEvent(routeKey, rawPath, stage string, params map[string]string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: routeKey, RawPath: rawPath, PathParameters: params,
		Headers: map[string]string{"accept": "text/html"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: routeKey, Stage: stage, RequestID: "c1",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: rawPath}}}
}

// TestConsoleRoutesWithoutToken: the console's files are served without claims (the
// routes have no authorizer), under the stage prefix the browser used, while the
// API's own routes still answer 401 without a token.
func TestConsoleRoutesWithoutToken(t *testing.T) {
	c, err := console.New(console.Config{Issuer: "https://idp.example.com/", ClientID: "console"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(cfg *httpapi.Config) { cfg.Console = c })
	ctx := context.Background()

	resp, _ := e.h.Handle(ctx, consoleEvent("GET /console/{proxy+}", "/dev/console/tenants/tenant_acme", "dev", map[string]string{"proxy": "tenants/tenant_acme"}))
	if resp.StatusCode != 200 || resp.Headers["Content-Type"] != "text/html; charset=utf-8" || !strings.Contains(resp.Body, "/dev/console/v/"+c.Version()+"/app.js") {
		t.Fatalf("index: %d %v\n%s", resp.StatusCode, resp.Headers, resp.Body)
	}
	if resp.Headers["Content-Security-Policy"] != c.CSP() {
		t.Fatalf("CSP %q", resp.Headers["Content-Security-Policy"])
	}

	resp, _ = e.h.Handle(ctx, consoleEvent("GET /console/{proxy+}", "/dev/console/config.json", "dev", map[string]string{"proxy": "config.json"}))
	var cfg map[string]string
	if err := json.Unmarshal([]byte(resp.Body), &cfg); err != nil || cfg["api_base"] != "/dev" || cfg["issuer"] != "https://idp.example.com/" {
		t.Fatalf("config: %d %s (%v)", resp.StatusCode, resp.Body, err)
	}

	resp, _ = e.h.Handle(ctx, consoleEvent("GET /console", "/console", "$default", nil))
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"/console/v/`+c.Version()+`/app.js"`) {
		t.Fatalf("GET /console: %d %v", resp.StatusCode, resp.Headers)
	}

	ev := consoleEvent("GET /tenants/{id}", "/tenants/tenant_acme", "$default", map[string]string{"id": "tenant_acme"})
	if resp, _ := e.h.Handle(ctx, ev); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /tenants/{id} without a token: %d", resp.StatusCode)
	}
}

// TestConsoleNotConfigured: without a console the routes are a 404 problem, not a panic.
func TestConsoleNotConfigured(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.h.Handle(context.Background(), consoleEvent("GET /console/{proxy+}", "/console/", "$default", map[string]string{"proxy": ""}))
	if resp.StatusCode != http.StatusNotFound || resp.Headers["Content-Type"] != httpapi.ContentTypeProblem {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}
}
