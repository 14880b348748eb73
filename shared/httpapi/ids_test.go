package httpapi_test

// These tests need no emulator: a malformed path id must be refused before the store or
// the flows are reached (unreachableStore answers 500, fakePlans records calls).

import (
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestMalformedTenantIDs: every /tenants/{id} route answers 404 for an id that breaks
// tenant.ValidateID, for admins (who could otherwise reach the store) and tenant
// tokens alike, and 401 first when there is no token.
func TestMalformedTenantIDs(t *testing.T) {
	routes := map[string]string{
		"GET /tenants/{id}":            "",
		"GET /tenants/{id}/audit":      "",
		"PUT /tenants/{id}/usage":      `{"users": 1, "storage_gb": 1, "api_calls_per_month": 1}`,
		"POST /tenants/{id}/upgrade":   `{"plan": "professional"}`,
		"POST /tenants/{id}/downgrade": `{"plan": "free"}`,
	}
	ids := []string{
		strings.Repeat("a", 2000), "tenant_" + strings.Repeat("x", 58), "", "ab", "Tenant_Acme", "TENANT_ACME", "_tenant",
		"tenant/acme", "tenant acme", "../tenant_acme", "tenant_acme\x00", "ténant_acme", "tenant_acme%2F..", "tenant.acme",
	}
	callers := map[string]*events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		"admin": authz(adminClaims), "tenant": authz(acmeClaims), "metering": authz(meteringClaims),
	}
	for route, body := range routes {
		for _, id := range ids {
			for who, a := range callers {
				h, plans, logs := unitHandler(t)
				ev := req(route, "", a, body)
				ev.PathParameters = map[string]string{"id": id}
				resp := invokeEvent(t, h, ev)
				if resp.StatusCode != 404 {
					t.Errorf("%s %.20q by %s: status %d, want 404: %.300s", route, id, who, resp.StatusCode, resp.Body)
					continue
				}
				p := problem(t, resp)
				if !strings.Contains(p.Detail, "tenant not found") || !strings.Contains(p.Detail, "3-64 characters") || len(p.Detail) > 200 {
					t.Errorf("%s %.20q by %s: detail %q", route, id, who, p.Detail)
				}
				if c := plans.Calls(); len(c) != 0 {
					t.Errorf("%s %.20q by %s: flows called %v", route, id, who, c)
				}
				// The log line does not carry the malformed id as a tenant id.
				if l := logs.Lines(t); len(l) != 1 || l[0]["tenant_id"] != nil {
					t.Errorf("%s %.20q by %s: log %v", route, id, who, l)
				}
			}
			h, _, _ := unitHandler(t)
			ev := req(route, "", nil, body)
			ev.PathParameters = map[string]string{"id": id}
			if resp := invokeEvent(t, h, ev); resp.StatusCode != 401 {
				t.Errorf("%s %.20q without a token: status %d, want 401", route, id, resp.StatusCode)
			}
		}
	}
}

// TestMalformedOperationIDs: GET /operations/{id} answers 404 for an id that is not
// "op_" and 1-77 of [a-z0-9_] without asking the flows; a well-formed unknown id is
// looked up and is the ordinary 404.
func TestMalformedOperationIDs(t *testing.T) {
	for _, id := range []string{
		strings.Repeat("o", 2000), "op_" + strings.Repeat("a", 78), "", "op_", "op", "OP_19b7c5e2a00", "op_19B7C5E2A00",
		"op_19b7c5e2a00-3f2a", "op_19b7c5e2a00_3f2a9c1d7e6b5a40 ", "op_../x", "op_a/b", "op_ü", "tenant_acme",
	} {
		for _, a := range []*events.APIGatewayV2HTTPRequestContextAuthorizerDescription{authz(adminClaims), authz(acmeClaims)} {
			h, plans, _ := unitHandler(t)
			resp := invokeEvent(t, h, req("GET /operations/{id}", id, a, ""))
			if resp.StatusCode != 404 {
				t.Errorf("%.20q: status %d, want 404: %.300s", id, resp.StatusCode, resp.Body)
				continue
			}
			if p := problem(t, resp); !strings.Contains(p.Detail, "operation not found") || len(p.Detail) > 200 {
				t.Errorf("%.20q: detail %q", id, p.Detail)
			}
			if c := plans.Calls(); len(c) != 0 {
				t.Errorf("%.20q: flows asked %v", id, c)
			}
		}
	}
	for _, id := range []string{"op_" + strings.Repeat("a", 77), "op_1", "op_upgrade_tenant_acme"} {
		h, plans, _ := unitHandler(t)
		resp := invokeEvent(t, h, req("GET /operations/{id}", id, authz(adminClaims), ""))
		if resp.StatusCode != 404 || len(plans.Calls()) != 1 {
			t.Errorf("well-formed %q: status %d, calls %v", id, resp.StatusCode, plans.Calls())
		}
	}
}
