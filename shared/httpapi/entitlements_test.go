package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

var appPlaneClaims = map[string]string{"sub": "svc_app", "scope": httpapi.EntitlementsScope}

func getEntitlements(t *testing.T, e *env, id string, claims map[string]string, ifNoneMatch string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	ev := req("GET /tenants/{id}/entitlements", id, authz(claims), "")
	if ifNoneMatch != "" {
		ev.Headers = map[string]string{"if-none-match": ifNoneMatch}
	}
	return invokeEvent(t, e.h, ev)
}

func putOverrides(t *testing.T, e *env, id string, claims map[string]string, body string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	return invokeEvent(t, e.h, req("PUT /tenants/{id}/overrides", id, authz(claims), body))
}

func document(t *testing.T, resp events.APIGatewayV2HTTPResponse) tenant.EntitlementsDocument {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
	var d tenant.EntitlementsDocument
	if err := json.Unmarshal([]byte(resp.Body), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEntitlementsCaching: the document carries a strong ETag and a private max-age
// (unlike every other answer, which is no-store); If-None-Match with the tag is a 304
// without a body, also when the client weakened it.
func TestEntitlementsCaching(t *testing.T) {
	e := newEnv(t)
	resp := getEntitlements(t, e, "tenant_acme", acmeClaims, "")
	d := document(t, resp)
	if d.TenantID != "tenant_acme" || d.State != tenant.Active || d.Plan != tenant.Starter || d.Version != 1 ||
		*d.Limits.Users != 10 || !d.Features["custom_domain"] || d.Features["sso"] || d.CatalogVersion != e.catalog.Version() {
		t.Fatalf("document %+v", d)
	}
	etag := resp.Headers["ETag"]
	if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") || etag != d.ETag() {
		t.Fatalf("ETag %q, want the strong tag %q", etag, d.ETag())
	}
	if cc := resp.Headers["Cache-Control"]; cc != "private, max-age=60" {
		t.Fatalf("Cache-Control %q", cc)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		nm := getEntitlements(t, e, "tenant_acme", acmeClaims, inm)
		if nm.StatusCode != 304 || nm.Body != "" || nm.Headers["ETag"] != etag || nm.Headers["Cache-Control"] != "private, max-age=60" {
			t.Fatalf("If-None-Match %s: %d %q %v", inm, nm.StatusCode, nm.Body, nm.Headers)
		}
	}
	if again := getEntitlements(t, e, "tenant_acme", acmeClaims, `"stale"`); again.StatusCode != 200 || again.Body != resp.Body {
		t.Fatalf("a stale tag: %d %s", again.StatusCode, again.Body)
	}
	// Every other answer stays no-store.
	if tr := invokeEvent(t, e.h, req("GET /tenants/{id}", "tenant_acme", authz(acmeClaims), "")); tr.Headers["Cache-Control"] != "no-store" {
		t.Fatalf("tenant view Cache-Control %q", tr.Headers["Cache-Control"])
	}
	// A suspended tenant's document grants nothing.
	s := document(t, getEntitlements(t, e, "tenant_suspended", adminClaims, ""))
	if s.State != tenant.Suspended || *s.Limits.Users != 0 || s.Features["api_access"] {
		t.Fatalf("suspended document %+v", s)
	}
}

// TestEntitlementsReaders: the tenant's own token, operators and app-plane services
// read it; the app-plane scope grants nothing else.
func TestEntitlementsReaders(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		id     string
		claims map[string]string
		status int
	}{
		"own token":             {"tenant_acme", acmeClaims, 200},
		"operator":              {"tenant_enterprise", adminClaims, 200},
		"app plane, any tenant": {"tenant_enterprise", appPlaneClaims, 200},
		"another tenant":        {"tenant_enterprise", acmeClaims, 403},
		"metering service":      {"tenant_acme", meteringClaims, 403},
		"no token":              {"tenant_acme", nil, 401},
		"malformed id":          {"A!", appPlaneClaims, 404},
		"unknown tenant":        {"tenant_nobody", appPlaneClaims, 404},
	} {
		t.Run(name, func(t *testing.T) {
			resp := getEntitlements(t, e, tc.id, tc.claims, "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			if tc.status >= 400 {
				problem(t, resp)
			}
		})
	}
	for _, rk := range []string{"GET /tenants/{id}", "GET /tenants/{id}/audit"} {
		if resp := invokeEvent(t, e.h, req(rk, "tenant_acme", authz(appPlaneClaims), "")); resp.StatusCode != 403 {
			t.Errorf("%s with the app-plane scope: %d", rk, resp.StatusCode)
		}
	}
	if resp := putOverrides(t, e, "tenant_acme", appPlaneClaims, `{"limits":{"users":99},"reason":"x"}`); resp.StatusCode != 403 {
		t.Errorf("overrides with the app-plane scope: %d", resp.StatusCode)
	}
}

// TestOverrides: an operator's override is one audited write, shown in the tenant
// view, applied in the entitlements document (new version, new ETag) and announced
// once; a repeat changes nothing; null removes one; every usage check applies them.
func TestOverrides(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := getEntitlements(t, e, "tenant_enterprise", appPlaneClaims, "")
	body := `{"limits":{"users":60,"storage_gb":"unlimited","api_calls_per_month":null},"features":{"priority_support":true,"sso":null},"reason":"deal #42"}`
	resp := putOverrides(t, e, "tenant_enterprise", adminClaims, body)
	if resp.StatusCode != 200 || resp.Headers["Cache-Control"] != "no-store" {
		t.Fatalf("PUT overrides: %d %s", resp.StatusCode, resp.Body)
	}
	m := bodyMap(t, resp)
	ov, _ := m["overrides"].(map[string]any)
	limits, _ := m["limits"].(map[string]any)
	if ov == nil || ov["reason"] != "deal #42" || ov["by"] != "admin" || limits["users"] != 60.0 || limits["storage_gb"] != nil || limits["api_calls_per_month"] != 1e6 {
		t.Fatalf("tenant view %s", resp.Body)
	}
	if ol, _ := ov["limits"].(map[string]any); ol["storage_gb"] != "unlimited" || len(ol) != 2 {
		t.Fatalf("overridden limits %v", ov["limits"])
	}
	trail, err := e.st.Audit(ctx, "tenant_enterprise")
	if err != nil {
		t.Fatal(err)
	}
	last := trail[len(trail)-1]
	if last.Who != "admin" || !strings.Contains(last.Reason, "deal #42") || !strings.Contains(last.Reason, "users=60") || !strings.Contains(last.Reason, "priority_support=true") {
		t.Fatalf("audit %+v", last)
	}

	after := getEntitlements(t, e, "tenant_enterprise", appPlaneClaims, before.Headers["ETag"])
	d := document(t, after)
	if d.Version != 2 || *d.Limits.Users != 60 || d.Limits.StorageGB != nil || !d.Features["priority_support"] || !d.Features["sso"] ||
		d.Overrides.Limits[tenant.LimitStorageGB] != tenant.Unlimited || !d.Overrides.Features["priority_support"] {
		t.Fatalf("document after the override %+v", d)
	}
	docs := e.events.documents()
	if len(docs) != 1 || docs[0].ETag() != after.Headers["ETag"] {
		t.Fatalf("published %+v, want the document the GET answers", docs)
	}

	// The same overrides again (another reason): nothing is written or announced.
	if again := putOverrides(t, e, "tenant_enterprise", adminClaims, strings.Replace(body, "deal #42", "again", 1)); again.StatusCode != 200 {
		t.Fatalf("repeat: %d %s", again.StatusCode, again.Body)
	}
	if t2, _ := e.st.Audit(ctx, "tenant_enterprise"); len(t2) != len(trail) || len(e.events.documents()) != 1 {
		t.Fatalf("a repeat wrote %d audit lines or announced %d documents", len(t2)-len(trail), len(e.events.documents())-1)
	}

	// Usage checks apply them: 45 users do not fit starter (10), but do with a
	// users override of 50 (storage 80 GB and 600k calls need theirs too).
	down := func() int {
		return invokeEvent(t, e.h, req("POST /tenants/{id}/downgrade", "tenant_enterprise", authz(adminClaims), `{"plan":"starter"}`)).StatusCode
	}
	if got := down(); got != 422 {
		t.Fatalf("downgrade with the users override only: %d, want 422 (storage and calls still exceed)", got)
	}
	if r := putOverrides(t, e, "tenant_enterprise", adminClaims, `{"limits":{"users":50,"storage_gb":100,"api_calls_per_month":"unlimited"},"reason":"migration"}`); r.StatusCode != 200 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	if got := down(); got != 202 {
		t.Fatalf("downgrade that fits through the overrides: %d, want 202", got)
	}

	// A body without limits and features removes them all.
	tn, _ := e.st.GetTenant(ctx, "tenant_acme")
	if r := putOverrides(t, e, "tenant_acme", adminClaims, `{"features":{"sso":true},"reason":"trial"}`); r.StatusCode != 200 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	if r := putOverrides(t, e, "tenant_acme", adminClaims, `{"reason":"trial over"}`); r.StatusCode != 200 || bodyMap(t, r)["overrides"] != nil {
		t.Fatalf("remove: %d %s", r.StatusCode, r.Body)
	}
	got := document(t, getEntitlements(t, e, "tenant_acme", acmeClaims, ""))
	if got.Features["sso"] || len(got.Overrides.Features) != 0 || got.Version != 3 {
		t.Fatalf("after removal %+v", got)
	}
	if cur, _ := e.st.GetTenant(ctx, "tenant_acme"); cur.Overrides != nil || cur.Version != tn.Version+2 {
		t.Fatalf("tenant after removal %+v", cur)
	}
}

// TestOverridesRefusals: who may, what the body must be, and which tenant.
func TestOverridesRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	purged := &tenant.Tenant{ID: "tenant_gone", Name: "Gone", Plan: tenant.Free, State: tenant.Purged}
	if _, err := e.st.CreateTenant(ctx, purged, store.Actor{Who: "seed"}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		id, body string
		claims   map[string]string
		status   int
		detail   string
	}{
		"tenant token":      {"tenant_acme", `{"limits":{"users":99},"reason":"x"}`, acmeClaims, 403, "tenants/admin"},
		"no reason":         {"tenant_acme", `{"limits":{"users":99}}`, adminClaims, 422, "field reason"},
		"unknown feature":   {"tenant_acme", `{"features":{"teleport":true},"reason":"x"}`, adminClaims, 422, "features.teleport"},
		"unknown limit":     {"tenant_acme", `{"limits":{"seats":1},"reason":"x"}`, adminClaims, 422, "limits.seats"},
		"word":              {"tenant_acme", `{"limits":{"users":"lots"},"reason":"x"}`, adminClaims, 422, "limits.users"},
		"negative":          {"tenant_acme", `{"limits":{"users":-1},"reason":"x"}`, adminClaims, 422, "limits.users"},
		"fraction of users": {"tenant_acme", `{"limits":{"users":1.5},"reason":"x"}`, adminClaims, 422, "whole number"},
		"unknown field":     {"tenant_acme", `{"limit":{},"reason":"x"}`, adminClaims, 400, "unknown field"},
		"feature not bool":  {"tenant_acme", `{"features":{"sso":"yes"},"reason":"x"}`, adminClaims, 400, ""},
		"purged tenant":     {"tenant_gone", `{"limits":{"users":9},"reason":"x"}`, adminClaims, 409, "PURGED"},
		"unknown tenant":    {"tenant_nobody", `{"limits":{"users":9},"reason":"x"}`, adminClaims, 404, ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp := putOverrides(t, e, tc.id, tc.claims, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			if p := problem(t, resp); !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("detail %q lacks %q", p.Detail, tc.detail)
			}
		})
	}
	if len(e.events.documents()) != 0 {
		t.Fatal("a refused override was announced")
	}
	if tn, _ := e.st.GetTenant(ctx, "tenant_acme"); tn.Overrides != nil {
		t.Fatalf("a refused override was written: %+v", tn.Overrides)
	}
}
