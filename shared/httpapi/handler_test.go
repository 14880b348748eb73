package httpapi_test

// These tests need no emulator: they exercise decoding, error mapping, panics and logs
// with a store that must not be reached and a fake PlanChanges without a store.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// unreachableStore fails the request (500) if a test reaches it: input errors must be
// answered before any read or write.
type unreachableStore struct{ httpapi.TenantStore }

func (unreachableStore) GetTenant(context.Context, string) (*tenant.Tenant, error) {
	return nil, errors.New("store reached")
}

func (unreachableStore) UpdateUsage(context.Context, string, tenant.Usage) (*tenant.Tenant, error) {
	return nil, errors.New("store reached")
}

func (unreachableStore) CreateTenant(context.Context, *tenant.Tenant, store.Actor) (*tenant.Tenant, error) {
	return nil, errors.New("store reached")
}

type nopProvisioner struct{}

func (nopProvisioner) Initial(context.Context, string, tenant.Plan) error { return nil }

func unitHandler(t *testing.T) (*httpapi.Handler, *fakePlans, *syncBuffer) {
	t.Helper()
	plans := newFakePlans(nil, tenant.DefaultCatalog())
	logs := &syncBuffer{}
	h, err := httpapi.New(httpapi.Config{Store: unreachableStore{}, Provisioner: nopProvisioner{}, PlanChanges: plans, Operations: plans, Lifecycle: lifecycle.NewStarter(unreachableStore{}, plans, tenant.DefaultCatalog(), 30),
		Catalog: tenant.DefaultCatalog(), Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return h, plans, logs
}

func TestNewNamesMissingDependencies(t *testing.T) {
	_, err := httpapi.New(httpapi.Config{Catalog: tenant.DefaultCatalog()})
	if err == nil || !strings.Contains(err.Error(), "Store, Provisioner, PlanChanges") || !strings.Contains(err.Error(), "Logger") {
		t.Fatalf("New with missing deps: %v", err)
	}
}

// TestBodyDecoding: malformed input is a 400/413/422 with a precise detail, never a 500
// and never a store call.
func TestBodyDecoding(t *testing.T) {
	h, _, _ := unitHandler(t)
	big := `{"users": 1, "storage_gb": 1, "api_calls_per_month": 1, "x": "` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`
	cases := []struct {
		name, body string
		b64        bool
		status     int
		detail     string
	}{
		{"empty", "", false, 400, "request body is required"},
		{"whitespace", " \n\t", false, 400, "request body is required"},
		{"array", `[1, 2]`, false, 400, "expected a JSON object, got array"},
		{"string", `"users"`, false, 400, "expected a JSON object, got string"},
		{"null", `null`, false, 400, "expected a JSON object, got null"},
		{"truncated", `{"users": 1,`, false, 400, "malformed JSON: unexpected end of input"},
		{"syntax", `{"users": 1,, }`, false, 400, "malformed JSON at byte"},
		{"single quotes", `{'users': 1}`, false, 400, "malformed JSON at byte 2"},
		{"trailing object", `{"users": 1, "storage_gb": 1, "api_calls_per_month": 1}{}`, false, 400, "unexpected data after the JSON object"},
		{"trailing garbage", `{"users": 1, "storage_gb": 1, "api_calls_per_month": 1} x`, false, 400, "unexpected data after the JSON object"},
		{"unknown field", `{"users": 1, "storage_gb": 1, "api_calls_per_month": 1, "tenant_id": "x"}`, false, 400, `unknown field "tenant_id"`},
		{"string number", `{"users": "1", "storage_gb": 1, "api_calls_per_month": 1}`, false, 400, "field users: expected a number, got string"},
		{"bool number", `{"users": 1, "storage_gb": true, "api_calls_per_month": 1}`, false, 400, "field storage_gb: expected a number, got boolean"},
		{"object number", `{"users": 1, "storage_gb": 1, "api_calls_per_month": {}}`, false, 400, "field api_calls_per_month: expected a number, got object"},
		{"fraction", `{"users": 1, "storage_gb": 1, "api_calls_per_month": 1.5}`, false, 400, "field api_calls_per_month: expected an integer, got 1.5"},
		{"overflow", `{"users": 1e30, "storage_gb": 1, "api_calls_per_month": 1}`, false, 400, "field users: expected an integer, got 1e30"},
		{"null field", `{"users": null, "storage_gb": 1, "api_calls_per_month": 1}`, false, 422, "field users: required"},
		{"missing storage", `{"users": 1, "api_calls_per_month": 1}`, false, 422, "field storage_gb: required"},
		{"negative storage", `{"users": 1, "storage_gb": -0.1, "api_calls_per_month": 1}`, false, 422, "field storage_gb: must be 0 or a number between 0.000001 and 1000000000"},
		{"negative calls", `{"users": 1, "storage_gb": 1, "api_calls_per_month": -5}`, false, 422, "field api_calls_per_month: must be an integer between 0 and 1000000000000000"},
		// Figures DynamoDB cannot store (magnitude 1e-130..1e+125) or no tenant has: 422
		// naming the field, never a 500 from the write.
		{"storage 1e200", `{"users": 1, "storage_gb": 1e200, "api_calls_per_month": 1}`, false, 422, "field storage_gb: must be 0 or a number between"},
		{"storage 1e-200", `{"users": 1, "storage_gb": 1e-200, "api_calls_per_month": 1}`, false, 422, "field storage_gb: must be 0 or a number between"},
		{"storage 1e126", `{"users": 1, "storage_gb": 1e126, "api_calls_per_month": 1}`, false, 422, "field storage_gb:"},
		{"storage just over", `{"users": 1, "storage_gb": 1000000000.5, "api_calls_per_month": 1}`, false, 422, "field storage_gb:"},
		{"storage just under", `{"users": 1, "storage_gb": 0.0000009, "api_calls_per_month": 1}`, false, 422, "field storage_gb:"},
		{"storage beyond float64", `{"users": 1, "storage_gb": 1e400, "api_calls_per_month": 1}`, false, 422, "field storage_gb:"},
		{"storage negative beyond float64", `{"users": 1, "storage_gb": -1e400, "api_calls_per_month": 1}`, false, 422, "field storage_gb:"},
		{"storage below float64", `{"users": 1, "storage_gb": 1e-400, "api_calls_per_month": 1}`, false, 422, "field storage_gb:"},
		{"storage 39 digits", `{"users": 1, "storage_gb": 123456789012345678901234567890123456789, "api_calls_per_month": 1}`, false, 422, "field storage_gb:"},
		{"users over 1e15", `{"users": 1000000000000001, "storage_gb": 1, "api_calls_per_month": 1}`, false, 422, "field users: must be an integer between 0 and 1000000000000000"},
		{"users beyond int64", `{"users": 99999999999999999999, "storage_gb": 1, "api_calls_per_month": 1}`, false, 422, "field users: must be an integer between"},
		{"users below int64", `{"users": -99999999999999999999, "storage_gb": 1, "api_calls_per_month": 1}`, false, 422, "field users: must be an integer between"},
		{"calls beyond int64", `{"users": 1, "storage_gb": 1, "api_calls_per_month": 100000000000000000000000000000000000000000}`, false, 422, "field api_calls_per_month: must be an integer between"},
		{"calls exponent", `{"users": 1, "storage_gb": 1, "api_calls_per_month": 1e3}`, false, 400, "field api_calls_per_month: expected an integer, got 1e3"},
		{"array storage", `{"users": 1, "storage_gb": [1], "api_calls_per_month": 1}`, false, 400, "field storage_gb: expected a number, got array"},
		{"string storage", `{"users": 1, "storage_gb": "1e200", "api_calls_per_month": 1}`, false, 400, "field storage_gb: expected a number, got string"},
		{"too large", big, false, 413, "exceeds 65536 bytes"},
		{"too large base64", base64.StdEncoding.EncodeToString([]byte(big)), true, 413, "exceeds 65536 bytes"},
		{"bad base64", "not base64!", true, 400, "not valid base64"},
		{"base64 of bad JSON", base64.StdEncoding.EncodeToString([]byte(`{"users":`)), true, 400, "malformed JSON"},
	}
	for _, c := range cases {
		ev := req("PUT /tenants/{id}/usage", "tenant_acme", authz(meteringClaims), c.body)
		ev.IsBase64Encoded = c.b64
		resp := invokeEvent(t, h, ev)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, resp.Body)
			continue
		}
		if p := problem(t, resp); !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s: detail %q, want %q", c.name, p.Detail, c.detail)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	h, _, _ := unitHandler(t)
	cases := []struct{ name, body, detail string }{
		{"blank name", `{"name": "   ", "plan": "free"}`, "field name: must be 1-200 characters"},
		{"long name", `{"name": "` + strings.Repeat("é", 201) + `", "plan": "free"}`, "field name: must be 1-200 characters"},
		{"missing plan", `{"name": "X"}`, "field plan: required; one of free, starter, professional, enterprise"},
		{"plan case", `{"name": "X", "plan": "Free"}`, `field plan: unknown plan "Free"`},
		{"bad email", `{"name": "X", "plan": "free", "email": "Bob <bob@example.com>"}`, "field email:"},
		{"bad id", `{"id": "ab", "name": "X", "plan": "free"}`, "field id:"},
	}
	for _, c := range cases {
		resp := invokeEvent(t, h, req("POST /tenants", "", authz(adminClaims), c.body))
		if resp.StatusCode != 422 {
			t.Errorf("%s: status %d: %s", c.name, resp.StatusCode, resp.Body)
			continue
		}
		if p := problem(t, resp); !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s: detail %q, want %q", c.name, p.Detail, c.detail)
		}
	}
	// A name of exactly 200 characters (not bytes) is accepted: it reaches the store.
	resp := invokeEvent(t, h, req("POST /tenants", "", authz(adminClaims), `{"name": "`+strings.Repeat("é", 200)+`", "plan": "free"}`))
	if resp.StatusCode != 500 {
		t.Errorf("200-character name: status %d, want the store to be reached (500 here): %s", resp.StatusCode, resp.Body)
	}
}

func TestListQueryValidation(t *testing.T) {
	h, _, _ := unitHandler(t)
	cases := []struct {
		query  map[string]string
		status int
		detail string
	}{
		{nil, 422, "field state: required"},
		{map[string]string{"state": "ACTIVE,SUSPENDED"}, 422, "field state: unknown state"},
		{map[string]string{"state": "ACTIVE", "limit": "0"}, 422, "field limit: must be between 1 and 100"},
		{map[string]string{"state": "ACTIVE", "limit": "101"}, 422, "field limit"},
		{map[string]string{"state": "ACTIVE", "limit": "ten"}, 400, `query parameter limit: expected an integer, got "ten"`},
		{map[string]string{"state": "ACTIVE", "limit": "99999999999999999999"}, 422, "field limit: must be between 1 and 100"},
		{map[string]string{"state": "ACTIVE", "limit": "-99999999999999999999"}, 422, "field limit: must be between 1 and 100"},
		{map[string]string{"state": "ACTIVE", "limit": "1e2"}, 400, "query parameter limit: expected an integer"},
		{map[string]string{"state": "ACTIVE", "cursor": "%%%"}, 422, "field cursor: not a cursor returned by this API"},
		{map[string]string{"state": "ACTIVE", "cursor": base64.RawURLEncoding.EncodeToString([]byte(`{"s":"DELETED","a":"x"}`))}, 422, "field cursor: not a cursor returned by this API"}, // unsigned (cursor_internal_test.go)
	}
	for _, c := range cases {
		ev := req("GET /tenants", "", authz(adminClaims), "")
		ev.QueryStringParameters = c.query
		resp := invokeEvent(t, h, ev)
		if resp.StatusCode != c.status {
			t.Errorf("%v: status %d, want %d: %s", c.query, resp.StatusCode, c.status, resp.Body)
			continue
		}
		if p := problem(t, resp); !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%v: detail %q, want %q", c.query, p.Detail, c.detail)
		}
	}
}

// TestErrorMapping: each domain error from a dependency gets its status, also when
// wrapped; anything else is a 500 that shows nothing of the cause but logs it.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		check  func(httpapi.Problem) bool
	}{
		{&tenant.ValidationError{Field: "plan", Reason: "not an upgrade"}, 422, func(p httpapi.Problem) bool { return p.Detail == "field plan: not an upgrade" }},
		{&tenant.NotFoundError{Kind: "tenant", ID: "x"}, 404, nil},
		{fmt.Errorf("starter: %w", &tenant.ConflictError{TenantID: "x", Reason: "operation op_1 is already in progress"}), 409,
			func(p httpapi.Problem) bool { return strings.Contains(p.Detail, "op_1 is already in progress") }},
		{&tenant.InvalidTransitionError{From: tenant.Purged, To: tenant.Upgrading}, 409,
			func(p httpapi.Problem) bool {
				return p.Allowed != nil && len(*p.Allowed) == 0 && strings.Contains(p.Detail, "PURGED -> UPGRADING")
			}},
		{&tenant.RetentionExpiredError{TenantID: "x", PurgeAfter: "2026-01-31T00:00:00Z"}, 409,
			func(p httpapi.Problem) bool { return p.Title == "Retention period expired" }},
		{&tenant.UsageExceedsLimitError{Plan: tenant.Free, Violations: []tenant.Violation{{Limit: "users", Usage: 4, Max: 3}}}, 422,
			func(p httpapi.Problem) bool { return len(p.Violations) == 1 && p.Violations[0].Max == 3 }},
		{context.DeadlineExceeded, 503, nil},
		{errors.New("operation error DynamoDB: GetItem, https response error StatusCode: 500, RequestID: SECRET-123"), 500,
			func(p httpapi.Problem) bool {
				return !strings.Contains(p.Detail, "SECRET") && !strings.Contains(p.Detail, "DynamoDB")
			}},
	}
	for _, c := range cases {
		h, plans, logs := unitHandler(t)
		plans.err = c.err
		resp := invokeEvent(t, h, req("POST /tenants/{id}/upgrade", "tenant_acme", authz(acmeClaims), `{"plan": "professional"}`))
		if resp.StatusCode != c.status {
			t.Errorf("%v: status %d, want %d", c.err, resp.StatusCode, c.status)
			continue
		}
		p := problem(t, resp)
		if c.check != nil && !c.check(p) {
			t.Errorf("%v: problem %+v", c.err, p)
		}
		lines := logs.Lines(t)
		if c.status == 500 && (len(lines) != 1 || lines[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(lines[0]["error"]), "SECRET-123")) {
			t.Errorf("500 not logged with its cause: %v", lines)
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	h, plans, logs := unitHandler(t)
	plans.panicMsg = "nil map write in flow starter"
	resp := invokeEvent(t, h, req("POST /tenants/{id}/upgrade", "tenant_acme", authz(acmeClaims), `{"plan": "professional"}`))
	if resp.StatusCode != 500 {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
	if p := problem(t, resp); strings.Contains(p.Detail, "nil map") {
		t.Fatalf("panic leaked: %+v", p)
	}
	var sawPanic, sawRequest bool
	for _, l := range logs.Lines(t) {
		switch l["msg"] {
		case "panic in route":
			sawPanic = strings.Contains(fmt.Sprint(l["panic"]), "nil map") && strings.Contains(fmt.Sprint(l["stack"]), "fakePlans")
		case "request":
			sawRequest = l["status"] == 500.0 && l["level"] == "ERROR"
		}
	}
	if !sawPanic || !sawRequest {
		t.Fatalf("panic not logged with stack and request line: %v", logs.Lines(t))
	}
}

// TestOneLogLinePerRequest: route, status, tenant, operation and latency on one line.
func TestOneLogLinePerRequest(t *testing.T) {
	h, _, logs := unitHandler(t)
	resp := invokeEvent(t, h, req("POST /tenants/{id}/upgrade", "tenant_acme", authz(acmeClaims), `{"plan": "professional"}`))
	if resp.StatusCode != 202 {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
	invokeEvent(t, h, req("GET /tenants/{id}", "tenant_acme", authz(map[string]string{"sub": "x", "tenant_id": "other"}), ""))
	lines := logs.Lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %v", len(lines), lines)
	}
	l := lines[0]
	if l["msg"] != "request" || l["route"] != "POST /tenants/{id}/upgrade" || l["status"] != 202.0 || l["tenant_id"] != "tenant_acme" ||
		l["operation_id"] != "op_upgrade" || l["sub"] != "alice" || l["request_id"] != "req-1" || l["level"] != "INFO" {
		t.Errorf("log line %v", l)
	}
	if _, ok := l["latency_ms"].(float64); !ok {
		t.Errorf("no latency_ms: %v", l)
	}
	if l := lines[1]; l["status"] != 403.0 || l["tenant_id"] != "tenant_acme" || l["error"] == nil {
		t.Errorf("403 log line %v", l)
	}
}

func TestLocationOnDefaultStage(t *testing.T) {
	h, _, _ := unitHandler(t)
	resp := invokeEvent(t, h, req("POST /tenants/{id}/upgrade", "tenant_acme", authz(acmeClaims), `{"plan": "professional"}`))
	if loc := resp.Headers["Location"]; loc != "/operations/op_upgrade" {
		t.Fatalf("Location %q", loc)
	}
}

func TestDowngradeAtPeriodEndDefaultsToFalse(t *testing.T) {
	h, plans, _ := unitHandler(t)
	resp := invokeEvent(t, h, req("POST /tenants/{id}/downgrade", "tenant_acme", authz(acmeClaims), `{"plan": "free"}`))
	if resp.StatusCode != 202 || strings.Contains(resp.Body, "effective_at") {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
	if c := plans.Calls(); len(c) != 1 || strings.Contains(c[0], "period end") {
		t.Fatalf("calls %v", c)
	}
}

func TestLatencyUsesInjectedClock(t *testing.T) {
	logs := &syncBuffer{}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h, err := httpapi.New(httpapi.Config{Store: unreachableStore{}, Provisioner: nopProvisioner{}, PlanChanges: newFakePlans(nil, tenant.DefaultCatalog()), Operations: newFakePlans(nil, tenant.DefaultCatalog()),
		Lifecycle: lifecycle.NewStarter(unreachableStore{}, newFakePlans(nil, tenant.DefaultCatalog()), tenant.DefaultCatalog(), 30),
		Catalog:   tenant.DefaultCatalog(), Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Now: func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	invokeEvent(t, h, req("GET /operations/{id}", knownOpID, authz(acmeClaims), ""))
	if l := logs.Lines(t); len(l) != 1 || l[0]["latency_ms"] != 1.5 {
		t.Fatalf("log %v", l)
	}
}
