package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/httpapi"
)

// scopes the fuzzer picks from (index modulo len).
var fuzzScopes = []string{"", httpapi.AdminScope, httpapi.UsageScope, "openid", httpapi.AdminScope + " " + httpapi.UsageScope}

// FuzzHandle sends random requests through Handler.Handle on the seeded tables (real
// store on moto, fake flows): any route key (or garbage), path ids, query, body (plain
// or base64), claims and Idempotency-Key. Every answer must be below 500, except the
// deliberate 503 (a dependency to retry), and Handle must never return an error. Its
// seed corpus is every events/api fixture, run by `go test` as a normal test.
//
//	go test -run '^$' -fuzz FuzzHandle -fuzztime 5m ./shared/httpapi/
//
// Each fuzz worker process starts its own moto unless TENANTFLOW_MOTO_URL names a
// running one; a worker the fuzzer kills leaves its moto behind, holding the output
// pipe, so the run hangs after -fuzztime until that moto is stopped. Pointing every
// worker at one moto (TENANTFLOW_MOTO_URL=http://127.0.0.1:PORT) avoids it.
func FuzzHandle(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join(fixtureDir(), "*.json"))
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			f.Fatal(err)
		}
		var sub, tenantID, scope string
		hasClaims := false
		if a := ev.RequestContext.Authorizer; a != nil && a.JWT != nil && len(a.JWT.Claims) > 0 {
			hasClaims = true
			sub, tenantID, scope = a.JWT.Claims["sub"], a.JWT.Claims["tenant_id"], a.JWT.Claims["scope"]
		}
		scopeIdx := uint8(0)
		for i, s := range fuzzScopes {
			if s == scope {
				scopeIdx = uint8(i)
			}
		}
		key, _ := ev.Headers["idempotency-key"]
		f.Add(ev.RouteKey, ev.PathParameters["id"], ev.RawQueryString, ev.Body, ev.IsBase64Encoded, hasClaims, sub, tenantID, scopeIdx, key)
	}
	f.Add("POST /tenants/{id}/upgrade", "tenant_acme", "", `{"plan":"professional"}`, false, true, "admin", "", uint8(1), "k1")
	f.Add("PUT /tenants/{id}/usage", "tenant_acme", "", `{"users":1,"storage_gb":1e-7,"api_calls_per_month":1}`, false, true, "m", "", uint8(2), "k\x7f")
	// The operator's read routes: listings with filters, limits and forged cursors,
	// steps of a followed and of an unknown operation, the statistics.
	f.Add("GET /operations", "", "status=running&limit=1", "", false, true, "admin", "", uint8(1), "")
	f.Add("GET /operations", "", "status=scheduled&limit=100", "", false, true, "admin", "", uint8(1), "")
	f.Add("GET /operations", "", "tenant_id=tenant_acme&status=needs_attention&cursor=eyJsIjoiIiwiYSI6IngifQ.AA", "", false, true, "alice", "tenant_acme", uint8(0), "")
	f.Add("GET /operations", "", "tenant_id=tenant_acme&limit=99999999999999999999", "", false, true, "admin", "", uint8(1), "")
	f.Add("GET /operations/{id}/steps", knownOpID, "", "", false, true, "alice", "tenant_acme", uint8(0), "")
	f.Add("GET /operations/{id}/steps", "op_unknown", "", "", false, true, "admin", "", uint8(1), "")
	f.Add("GET /stats", "", "", "", false, true, "admin", "", uint8(1), "")

	e := newEnv(f)
	routes := httpapi.RouteKeys()
	f.Fuzz(func(t *testing.T, routeKey, id, query, body string, b64, hasClaims bool, sub, tenantID string, scope uint8, key string) {
		// A route key that is not one of the API's is still tried as is (404), but most
		// inputs should reach a real route: a short garbage key picks one by its length.
		if len(routeKey) < 4 {
			routeKey = routes[len(routeKey)%len(routes)]
		}
		method, path, _ := strings.Cut(routeKey, " ")
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: routeKey, Body: body, IsBase64Encoded: b64, RawQueryString: query,
			Headers: map[string]string{"content-type": "application/json"}}
		if b64 {
			ev.Body = base64.StdEncoding.EncodeToString([]byte(body))
		}
		if strings.Contains(path, "{id}") || id != "" {
			ev.PathParameters = map[string]string{"id": id, "export_id": id}
			path = strings.ReplaceAll(strings.ReplaceAll(path, "{id}", id), "{export_id}", id)
		}
		if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
			ev.QueryStringParameters = map[string]string{}
			for k, v := range q {
				ev.QueryStringParameters[k] = strings.Join(v, ",")
			}
		}
		if key != "" {
			ev.Headers["idempotency-key"] = key
		}
		ev.RawPath = path
		ev.RequestContext = events.APIGatewayV2HTTPRequestContext{RouteKey: routeKey, Stage: "$default", RequestID: "fuzz",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}
		if hasClaims {
			claims := map[string]string{"sub": sub, "scope": fuzzScopes[int(scope)%len(fuzzScopes)]}
			if tenantID != "" {
				claims["tenant_id"] = tenantID
			}
			ev.RequestContext.Authorizer = authz(claims)
		}
		resp, err := e.h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("Handle returned an error: %v", err)
		}
		if resp.StatusCode >= 500 && resp.StatusCode != 503 {
			t.Fatalf("%s %q query %q body %q: %d %s", routeKey, id, query, body, resp.StatusCode, resp.Body)
		}
		if resp.StatusCode < 100 || resp.Headers["Content-Type"] == "" {
			t.Fatalf("%s: malformed answer %+v", routeKey, resp)
		}
	})
}
