package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// t0 is the pinned clock: 2026-03-01T12:00:00.123Z.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)

func testAuthority(t *testing.T) *jwtauth.Authority {
	t.Helper()
	a, err := jwtauth.NewWithKey(jwtauth.Config{
		Issuer: "https://auth.example.com/", Audience: []string{"tenantflow"},
		Now: func() time.Time { return t0 },
	}, testKey())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mint signs c with a fixed jti so the event is reproducible.
func mint(t *testing.T, a *jwtauth.Authority, c jwtauth.Claims) string {
	t.Helper()
	c["jti"] = "00000000-0000-4000-8000-000000000001"
	tok, err := a.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fakeInvoker records the payloads it is given and answers with respond.
type fakeInvoker struct {
	mu      sync.Mutex
	calls   []call
	respond func(ctx context.Context, function string, payload []byte) ([]byte, string, error)
}

type call struct {
	function string
	payload  []byte
}

func (f *fakeInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{function, append([]byte(nil), payload...)})
	f.mu.Unlock()
	if f.respond == nil {
		return []byte(`{"statusCode":200,"headers":{"content-type":"application/json"},"body":"{\"ok\":true}"}`), "", nil
	}
	return f.respond(ctx, function, payload)
}

func (f *fakeInvoker) last(t *testing.T) call {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("the function was not invoked")
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeInvoker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// testRoutes mirror template.yaml's shape plus the cases the template does not have yet.
var testRoutes = []Route{
	{Method: "POST", Path: "/tenants", Function: "ApiFunction", Auth: true},
	{Method: "GET", Path: "/tenants", Function: "ApiFunction", Auth: true},
	{Method: "GET", Path: "/tenants/{id}", Function: "ApiFunction", Auth: true},
	{Method: "PUT", Path: "/tenants/{id}/usage", Function: "ApiFunction", Auth: true},
	{Method: "GET", Path: "/tenants/{id}/exports/{export_id}", Function: "ApiFunction", Auth: true},
	{Method: "POST", Path: "/webhooks/stripe", Function: "StripeWebhookFunction", Auth: false},
	{Method: "ANY", Path: "/files/{proxy+}", Function: "FilesFunction", Auth: false},
	{Method: "GET", Path: "/files/special", Function: "SpecialFunction", Auth: false},
	{Method: "GET", Path: "/files/{name}/meta", Function: "MetaFunction", Auth: false},
	{Method: "GET", Path: "/admin/{id}", Function: "AdminFunction", Auth: true, Scopes: []string{"tenants/admin", "tenants/ops"}},
}

func newTestGateway(t *testing.T, inv Invoker, mutate ...func(*Config)) *Gateway {
	t.Helper()
	cfg := Config{
		Routes:       testRoutes,
		Invoker:      inv,
		Authorizer:   testAuthority(t),
		Now:          func() time.Time { return t0 },
		NewRequestID: func() string { return "c0ffee00-0000-4000-8000-000000000000" },
	}
	for _, m := range mutate {
		m(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestEventGolden compares the produced payload 2.0 events with testdata/*.golden.json.
func TestEventGolden(t *testing.T) {
	a := testAuthority(t)
	operator := mint(t, a, jwtauth.OperatorClaims())
	tenant := mint(t, a, jwtauth.TenantClaims("tenant_acme"))
	binary := []byte{0x89, 'P', 'N', 'G', 0x00, 0xff, 0x10}

	tests := []struct {
		name    string
		method  string
		target  string
		body    []byte
		headers [][2]string
		token   string // the bearer token, replaced by a placeholder in the golden file
	}{
		{
			name: "get_tenant_operator", method: "GET",
			target: "http://api.local:3000/tenants/tenant_acme?include=usage&tag=a&tag=b&q=a%20b%26c&empty",
			headers: [][2]string{
				{"Accept", "application/json"}, {"User-Agent", "devstack-test/1.0"},
				{"X-Custom", "one"}, {"X-Custom", "two"},
				{"Cookie", "session=abc; theme=dark"}, {"Cookie", "lang=en"},
				{"X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000000"},
			},
			token: operator,
		},
		{
			name: "put_usage_tenant_token", method: "PUT",
			target: "http://api.local:3000/tenants/tenant_acme/usage",
			body:   []byte(`{"users":2,"storage_gb":0.5,"api_calls":5000}`),
			headers: [][2]string{
				{"Content-Type", "application/json; charset=utf-8"}, {"Idempotency-Key", "k-1"},
				{"X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000001"},
			},
			token: tenant,
		},
		{
			name: "export_two_params", method: "GET",
			target: "http://api.local:3000/tenants/tenant%20x/exports/exp_1",
			headers: [][2]string{
				{"X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000002"},
			},
			token: tenant,
		},
		{
			name: "binary_upload_greedy_no_auth", method: "POST",
			target: "http://api.local:3000/files/a/b%20c/d%25e.bin",
			body:   binary,
			headers: [][2]string{
				{"Content-Type", "application/octet-stream"},
				{"X-Forwarded-For", "203.0.113.9"},
				{"X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000003"},
			},
		},
		{
			name: "form_body_is_base64", method: "POST",
			target: "http://api.local:3000/webhooks/stripe",
			body:   []byte("a=1&b=two"),
			headers: [][2]string{
				{"Content-Type", "application/x-www-form-urlencoded"},
				{"X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000004"},
			},
		},
		{
			name: "stripe_webhook_ignores_token", method: "POST",
			target: "http://api.local:3000/webhooks/stripe",
			body:   []byte(`{"id":"evt_1","type":"invoice.paid"}`),
			headers: [][2]string{
				{"Content-Type", "application/json; charset=utf-8"},
				{"Stripe-Signature", "t=1,v1=abc"},
				{"Authorization", "Bearer not-checked-on-this-route"},
				{"X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000005"},
			},
		},
		{
			name: "scoped_route_carries_scopes", method: "GET",
			target: "http://api.local:3000/admin/x",
			headers: [][2]string{
				{"X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000006"},
			},
			token: operator,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := &fakeInvoker{}
			g := newTestGateway(t, inv)
			req := httptest.NewRequest(tc.method, tc.target, bytes.NewReader(tc.body))
			for _, h := range tc.headers {
				req.Header.Add(h[0], h[1])
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			c := inv.last(t)

			// The payload must decode into the SDK type the function uses.
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(c.payload, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Version != "2.0" || ev.RequestContext.RouteKey != ev.RouteKey {
				t.Errorf("version %q, routeKey %q / %q", ev.Version, ev.RouteKey, ev.RequestContext.RouteKey)
			}

			var doc map[string]any
			if err := json.Unmarshal(c.payload, &doc); err != nil {
				t.Fatal(err)
			}
			if hs, ok := doc["headers"].(map[string]any); ok && tc.token != "" {
				if hs["authorization"] != "Bearer "+tc.token {
					t.Errorf("authorization header not passed through: %v", hs["authorization"])
				}
				hs["authorization"] = "Bearer <token>"
			}
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(map[string]any{"function": c.function, "event": doc}); err != nil {
				t.Fatal(err)
			}
			got := out.Bytes()
			golden := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestEventGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("event differs from %s:\ngot:\n%s", golden, got)
			}
		})
	}
}

func TestRouteSelection(t *testing.T) {
	tests := []struct {
		method, path string
		wantRoute    string // "" means 404
		wantParams   map[string]string
	}{
		{"GET", "/tenants", "GET /tenants", nil},
		{"POST", "/tenants", "POST /tenants", nil},
		{"DELETE", "/tenants", "", nil}, // HTTP APIs answer a wrong method with 404, not 405
		{"GET", "/tenants/", "", nil},
		{"GET", "/tenants/t1", "GET /tenants/{id}", map[string]string{"id": "t1"}},
		{"GET", "/tenants/t1/", "", nil},
		{"GET", "/tenants/t1/usage", "", nil},
		{"PUT", "/tenants/t1/usage", "PUT /tenants/{id}/usage", map[string]string{"id": "t1"}},
		{"GET", "/tenants/t1/exports/e1", "GET /tenants/{id}/exports/{export_id}", map[string]string{"id": "t1", "export_id": "e1"}},
		{"GET", "/tenants/t1/exports/e1/x", "", nil},
		{"GET", "/files/special", "GET /files/special", nil},                               // literal beats greedy
		{"GET", "/files/f/meta", "GET /files/{name}/meta", map[string]string{"name": "f"}}, // param beats greedy
		{"DELETE", "/files/special", "ANY /files/{proxy+}", map[string]string{"proxy": "special"}},
		{"PATCH", "/files/a/b/c", "ANY /files/{proxy+}", map[string]string{"proxy": "a/b/c"}},
		{"GET", "/files", "", nil}, // greedy needs at least one segment
		{"GET", "/files/", "", nil},
		{"GET", "/tenants/a%2Fb", "", nil}, // a decoded slash splits the segment
		{"GET", "/nope", "", nil},
		{"GET", "/", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			inv := &fakeInvoker{}
			g := newTestGateway(t, inv)
			req := httptest.NewRequest(tc.method, tc.path, nil)
			tok, _ := testAuthority(t).OperatorToken()
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if tc.wantRoute == "" {
				if rec.Code != http.StatusNotFound || rec.Body.String() != `{"message":"Not Found"}` {
					t.Fatalf("got %d %s, want 404", rec.Code, rec.Body)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("content-type %q", ct)
				}
				if inv.count() != 0 {
					t.Error("a function was invoked")
				}
				return
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(inv.last(t).payload, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.RouteKey != tc.wantRoute {
				t.Errorf("routeKey %q, want %q", ev.RouteKey, tc.wantRoute)
			}
			if !reflect.DeepEqual(ev.PathParameters, tc.wantParams) {
				t.Errorf("pathParameters %v, want %v", ev.PathParameters, tc.wantParams)
			}
		})
	}
}

func TestUnauthorized(t *testing.T) {
	a := testAuthority(t)
	expired := mint(t, a, jwtauth.Claims{"sub": "x", "exp": t0.Add(-time.Hour)})
	wrongAud := mint(t, a, jwtauth.Claims{"sub": "x", "aud": "other"})
	tenant := mint(t, a, jwtauth.TenantClaims("tenant_acme"))

	tests := []struct {
		name, path, authorization string
		wantStatus                int
		wantBody, wantChallenge   string
	}{
		{"missing token", "/tenants/t1", "", 401, `{"message":"Unauthorized"}`, "Bearer"},
		{"garbage token", "/tenants/t1", "Bearer nope", 401, `{"message":"Unauthorized"}`,
			`Bearer scope="" error="invalid_token" error_description="token contains an invalid number of segments"`},
		{"expired token", "/tenants/t1", "Bearer " + expired, 401, `{"message":"Unauthorized"}`,
			`Bearer scope="" error="invalid_token" error_description="the token has expired"`},
		{"wrong audience", "/tenants/t1", "Bearer " + wrongAud, 401, `{"message":"Unauthorized"}`,
			`Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience"`},
		{"scoped route, missing token", "/admin/x", "", 401, `{"message":"Unauthorized"}`, "Bearer"},
		{"scoped route, invalid token", "/admin/x", "Bearer nope", 401, `{"message":"Unauthorized"}`,
			`Bearer scope="tenants/admin tenants/ops" error="invalid_token" error_description="token contains an invalid number of segments"`},
		{"scoped route, token without the scope", "/admin/x", "Bearer " + tenant, 403, `{"message":"Forbidden"}`,
			`Bearer scope="tenants/admin tenants/ops" error="insufficient_scope" error_description="the token needs one of the scopes: tenants/admin tenants/ops"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := &fakeInvoker{}
			g := newTestGateway(t, inv)
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
			if got := rec.Header().Get("Www-Authenticate"); got != tc.wantChallenge {
				t.Errorf("www-authenticate:\ngot  %s\nwant %s", got, tc.wantChallenge)
			}
			if rec.Header().Get("Apigw-Requestid") == "" {
				t.Error("no apigw-requestid")
			}
			if inv.count() != 0 {
				t.Error("the function was invoked without authorization")
			}
		})
	}
}

func TestAuthFalseRoute(t *testing.T) {
	a := testAuthority(t)
	for name, authorization := range map[string]string{
		"no token":      "",
		"invalid token": "Bearer nope",
		"valid token":   "Bearer " + mint(t, a, jwtauth.OperatorClaims()),
	} {
		t.Run(name, func(t *testing.T) {
			inv := &fakeInvoker{}
			g := newTestGateway(t, inv)
			req := httptest.NewRequest("POST", "/webhooks/stripe", strings.NewReader(`{}`))
			if authorization != "" {
				req.Header.Set("Authorization", authorization)
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(inv.last(t).payload, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.RequestContext.Authorizer != nil {
				t.Errorf("an Auth:false route got an authorizer context: %+v", ev.RequestContext.Authorizer)
			}
		})
	}
	// The same token on an authorized route does reach the function with claims.
	inv := &fakeInvoker{}
	g := newTestGateway(t, inv)
	req := httptest.NewRequest("GET", "/tenants/tenant_acme", nil)
	req.Header.Set("Authorization", mint(t, a, jwtauth.TenantClaims("tenant_acme"))) // bare token, no "Bearer"
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(inv.last(t).payload, &ev); err != nil {
		t.Fatal(err)
	}
	jwt := ev.RequestContext.Authorizer.JWT
	if jwt.Claims["tenant_id"] != "tenant_acme" || jwt.Claims["sub"] != "user@tenant_acme" {
		t.Errorf("claims %v", jwt.Claims)
	}
	if jwt.Scopes != nil {
		t.Errorf("unscoped route got scopes %v (API Gateway sends null)", jwt.Scopes)
	}
}

func TestResponseMapping(t *testing.T) {
	type answer struct {
		result string
		fnErr  string
		err    error
	}
	tests := []struct {
		name        string
		answer      answer
		wantStatus  int
		wantBody    string
		wantHeaders map[string][]string
	}{
		{
			name: "structured with headers and cookies",
			answer: answer{result: `{"statusCode":201,"headers":{"content-type":"application/problem+json","x-operation-id":"op-1","location":"/operations/op-1"},` +
				`"cookies":["a=1; Path=/; HttpOnly","b=2"],"body":"{\"operation_id\":\"op-1\"}"}`},
			wantStatus: 201, wantBody: `{"operation_id":"op-1"}`,
			wantHeaders: map[string][]string{
				"Content-Type": {"application/problem+json"}, "X-Operation-Id": {"op-1"}, "Location": {"/operations/op-1"},
				"Set-Cookie": {"a=1; Path=/; HttpOnly", "b=2"},
			},
		},
		{
			name:       "structured without content-type",
			answer:     answer{result: `{"statusCode":202,"body":"accepted"}`},
			wantStatus: 202, wantBody: "accepted",
			wantHeaders: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}},
		},
		{
			name:       "structured without body",
			answer:     answer{result: `{"statusCode":204}`},
			wantStatus: 204, wantBody: "",
		},
		{
			name:       "base64 body",
			answer:     answer{result: `{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"isBase64Encoded":true,"body":"iVBORwD/EA=="}`},
			wantStatus: 200, wantBody: "\x89PNG\x00\xff\x10",
			wantHeaders: map[string][]string{"Content-Type": {"application/octet-stream"}},
		},
		{
			name:       "multiValueHeaders are not part of payload 2.0",
			answer:     answer{result: `{"statusCode":200,"multiValueHeaders":{"content-type":["application/json"],"x-a":["1","2"]},"body":"{}"}`},
			wantStatus: 200, wantBody: "{}",
			wantHeaders: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}, "X-A": nil},
		},
		{
			name:       "plain object is 200 JSON",
			answer:     answer{result: `{"tenant_id":"tenant_acme","state":"ACTIVE"}`},
			wantStatus: 200, wantBody: `{"tenant_id":"tenant_acme","state":"ACTIVE"}`,
			wantHeaders: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name:       "plain string is its contents",
			answer:     answer{result: `"Hello from Lambda!"`},
			wantStatus: 200, wantBody: "Hello from Lambda!",
			wantHeaders: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name:       "plain array",
			answer:     answer{result: `[1,2]`},
			wantStatus: 200, wantBody: "[1,2]",
		},
		{
			name:       "function error",
			answer:     answer{result: `{"errorType":"Conflict","errorMessage":"boom"}`, fnErr: "Unhandled"},
			wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`,
			wantHeaders: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name:       "invoker error",
			answer:     answer{err: errors.New("function ApiFunction is not running")},
			wantStatus: 502, wantBody: `{"message":"function ApiFunction is not running"}`,
		},
		{
			name:       "result is not JSON",
			answer:     answer{result: `not json`},
			wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`,
		},
		{
			name:       "statusCode of the wrong type",
			answer:     answer{result: `{"statusCode":"200","body":"x"}`},
			wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`,
		},
		{
			name:       "body that is not base64",
			answer:     answer{result: `{"statusCode":200,"isBase64Encoded":true,"body":"%%%"}`},
			wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := &fakeInvoker{respond: func(context.Context, string, []byte) ([]byte, string, error) {
				return []byte(tc.answer.result), tc.answer.fnErr, tc.answer.err
			}}
			var logs bytes.Buffer
			g := newTestGateway(t, inv, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, httptest.NewRequest("DELETE", "/files/x", nil))
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
			for k, want := range tc.wantHeaders {
				if got := rec.Header().Values(k); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if tc.answer.fnErr != "" && !strings.Contains(logs.String(), `"error_type":"Conflict"`) {
				t.Errorf("function error type not logged:\n%s", logs.String())
			}
		})
	}
}

func TestIntegrationTimeout(t *testing.T) {
	inv := &fakeInvoker{respond: func(ctx context.Context, _ string, _ []byte) ([]byte, string, error) {
		<-ctx.Done()
		return nil, "", ctx.Err()
	}}
	g := newTestGateway(t, inv, func(c *Config) { c.Timeout = 20 * time.Millisecond })
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/files/x", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"message":"Service Unavailable"}` {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestBodyLimit(t *testing.T) {
	inv := &fakeInvoker{}
	g := newTestGateway(t, inv)

	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("POST", "/files/big", bytes.NewReader(make([]byte, MaxBodyBytes+1))))
	if rec.Code != http.StatusRequestEntityTooLarge || rec.Body.String() != `{"message":"Request Entity Too Large"}` {
		t.Fatalf("declared length: got %d %s", rec.Code, rec.Body)
	}

	// A chunked body declares no length; the limit still holds.
	req := httptest.NewRequest("POST", "/files/big", io.MultiReader(bytes.NewReader(make([]byte, MaxBodyBytes)), strings.NewReader("x")))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("undeclared length: got %d", rec.Code)
	}
	if inv.count() != 0 {
		t.Fatal("an oversized request reached the function")
	}

	rec = httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("POST", "/files/big", bytes.NewReader(make([]byte, MaxBodyBytes))))
	if rec.Code != http.StatusOK {
		t.Fatalf("exactly 10 MB: got %d", rec.Code)
	}
}

func TestJWKSServed(t *testing.T) {
	a := testAuthority(t)
	g := newTestGateway(t, &fakeInvoker{}, func(c *Config) { c.Authorizer = a })
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", JWKSPath, nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != string(a.JWKS()) {
		t.Fatalf("got %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

// TestOverHTTP runs the gateway behind a real loopback server: headers, cookies and
// the access log as a client and an operator would see them.
func TestOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	inv := &fakeInvoker{respond: func(context.Context, string, []byte) ([]byte, string, error) {
		return []byte(`{"statusCode":200,"headers":{"content-type":"application/json"},"cookies":["a=1","b=2; Secure"],"body":"{}"}`), "", nil
	}}
	a := testAuthority(t)
	g := newTestGateway(t, inv, func(c *Config) { c.Logger = logger; c.NewRequestID = nil; c.Now = nil; c.Authorizer = a })
	srv := httptest.NewServer(g)
	defer srv.Close()

	tok, _ := a.OperatorToken()
	req, _ := http.NewRequest("GET", srv.URL+"/tenants/tenant_acme?x=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.AddCookie(&http.Cookie{Name: "session", Value: "abc"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "{}" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, []string{"a=1", "b=2; Secure"}) {
		t.Errorf("set-cookie %q", got)
	}
	reqID := resp.Header.Get("Apigw-Requestid")
	if len(reqID) != 36 {
		t.Errorf("apigw-requestid %q", reqID)
	}

	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(inv.last(t).payload, &ev); err != nil {
		t.Fatal(err)
	}
	port := srv.Listener.Addr().String()[strings.LastIndex(srv.Listener.Addr().String(), ":")+1:]
	rc := ev.RequestContext
	if rc.HTTP.SourceIP != "127.0.0.1" || ev.Headers["x-forwarded-port"] != port || rc.DomainName != "127.0.0.1:"+port || rc.DomainPrefix != "127.0.0.1" {
		t.Errorf("sourceIp %q, port %q, domain %q/%q", rc.HTTP.SourceIP, ev.Headers["x-forwarded-port"], rc.DomainName, rc.DomainPrefix)
	}
	if rc.RequestID != reqID || !strings.HasPrefix(ev.Headers["x-amzn-trace-id"], "Root=1-") {
		t.Errorf("requestId %q, trace %q", rc.RequestID, ev.Headers["x-amzn-trace-id"])
	}
	if !reflect.DeepEqual(ev.Cookies, []string{"session=abc"}) || ev.Headers["cookie"] != "" {
		t.Errorf("cookies %v, cookie header %q", ev.Cookies, ev.Headers["cookie"])
	}
	if _, err := time.Parse(TimeFormat, rc.Time); err != nil || rc.TimeEpoch == 0 {
		t.Errorf("time %q epoch %d: %v", rc.Time, rc.TimeEpoch, err)
	}

	mu.Lock()
	line := logs.String()
	mu.Unlock()
	var entry map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &entry); err != nil {
		t.Fatalf("access log %q: %v", line, err)
	}
	for k, want := range map[string]any{
		"msg": "http request", "method": "GET", "path": "/tenants/tenant_acme", "route": "GET /tenants/{id}",
		"status": float64(200), "function": "ApiFunction", "request_id": reqID,
	} {
		if entry[k] != want {
			t.Errorf("access log %s = %v, want %v", k, entry[k], want)
		}
	}
	if _, ok := entry["latency"]; !ok {
		t.Error("access log has no latency")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNewValidation(t *testing.T) {
	inv := &fakeInvoker{}
	auth := testAuthority(t)
	tests := map[string]Config{
		"no invoker":           {Routes: []Route{{Method: "GET", Path: "/a", Function: "F"}}},
		"duplicate route":      {Invoker: inv, Routes: []Route{{Method: "GET", Path: "/a", Function: "F"}, {Method: "get", Path: "/a", Function: "G"}}},
		"greedy not last":      {Invoker: inv, Routes: []Route{{Method: "GET", Path: "/{p+}/x", Function: "F"}}},
		"bad method":           {Invoker: inv, Routes: []Route{{Method: "FETCH", Path: "/a", Function: "F"}}},
		"no function":          {Invoker: inv, Routes: []Route{{Method: "GET", Path: "/a"}}},
		"relative path":        {Invoker: inv, Routes: []Route{{Method: "GET", Path: "a", Function: "F"}}},
		"empty segment":        {Invoker: inv, Routes: []Route{{Method: "GET", Path: "/a//b", Function: "F"}}},
		"repeated param":       {Invoker: inv, Routes: []Route{{Method: "GET", Path: "/{id}/{id}", Function: "F"}}},
		"auth, no authorizer":  {Invoker: inv, Routes: []Route{{Method: "GET", Path: "/a", Function: "F", Auth: true}}},
		"brace inside literal": {Invoker: inv, Authorizer: auth, Routes: []Route{{Method: "GET", Path: "/a{b}", Function: "F"}}},
	}
	for name, cfg := range tests {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	g, err := New(Config{Invoker: inv, Routes: []Route{{Method: "get", Path: "/", Function: "F"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Routes(); got[0].Key() != "GET /" {
		t.Errorf("Routes() = %v", got)
	}
}

func TestDecodePath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":        "/a/b",
		"/a%20b":      "/a b",
		"/a%252Eb":    "/a%252Eb",
		"/caf%C3%A9":  "/café",
		"/bad%zz":     "/bad%zz",
		"/trailing%2": "/trailing%2",
		"/x%2fy":      "/x/y",
	} {
		if got := decodePath(in); got != want {
			t.Errorf("decodePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsText(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"Application/JSON":                  true,
		"text/plain":                        true,
		"text/csv; charset=utf-8":           true,
		"application/xml":                   true,
		"application/javascript":            true,
		"":                                  false,
		"application/octet-stream":          false,
		"application/x-www-form-urlencoded": false,
		"multipart/form-data; boundary=x":   false,
		"image/png":                         false,
		"application/problem+json":          false,
	} {
		if got := isText(ct); got != want {
			t.Errorf("isText(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestConcurrentRequests runs many requests at once through one Gateway (run with -race).
func TestConcurrentRequests(t *testing.T) {
	inv := &fakeInvoker{respond: func(_ context.Context, _ string, payload []byte) ([]byte, string, error) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, "", err
		}
		b, err := json.Marshal(map[string]string{"id": ev.PathParameters["id"], "request": ev.RequestContext.RequestID})
		return b, "", err
	}}
	a := testAuthority(t)
	g := newTestGateway(t, inv, func(c *Config) { c.NewRequestID = nil; c.Authorizer = a })
	srv := httptest.NewServer(g)
	defer srv.Close()
	tok, _ := a.OperatorToken()

	const n = 40
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", srv.URL+"/tenants/t"+strconv.Itoa(i), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var got map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Error(err)
				return
			}
			if got["id"] != "t"+strconv.Itoa(i) || got["request"] != resp.Header.Get("Apigw-Requestid") {
				t.Errorf("request %d got %v", i, got)
			}
			ids <- got["request"]
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("request id %s used twice", id)
		}
		seen[id] = true
	}
}
