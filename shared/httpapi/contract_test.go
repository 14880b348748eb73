package httpapi_test

import (
	"strings"
	"testing"
)

// TestContractMismatches holds the requests on which the handler disagreed with
// openapi.yaml (found by the generated requests of internal/localstack/apifuzz): each
// must get the answer the spec promises, before any store call (the unit handler's
// store fails the request with a 500 when reached).
func TestContractMismatches(t *testing.T) {
	h, _, _ := unitHandler(t)
	cases := []struct {
		name, route, id, body string
		claims                map[string]string
		status                int
		typ, detail           string
	}{
		// JSON null is not the object the schema requires (it used to read as {}:
		// a deletion with the default retention, a retry without a body).
		{"delete null body", "DELETE /tenants/{id}", "tenant_acme", `null`, adminClaims, 400, "malformed-request", "expected a JSON object, got null"},
		{"retry null body", "POST /operations/{id}/retry", "op_123", `null`, adminClaims, 400, "malformed-request", "expected a JSON object, got null"},
		{"usage null body", "PUT /tenants/{id}/usage", "tenant_acme", ` null `, adminClaims, 400, "malformed-request", "expected a JSON object, got null"},
		// The note's bounds hold for both actions, as the schema states them.
		{"retry long note", "POST /operations/{id}/retry", "op_123", `{"action": "retry", "note": "` + strings.Repeat("n", 1001) + `"}`, adminClaims, 422, "validation-failed", "field note:"},
		{"retry blank note", "POST /operations/{id}/retry", "op_123", `{"note": "  "}`, adminClaims, 422, "validation-failed", "field note:"},
		// An address net/mail accepts but the documented pattern does not.
		{"email ip literal", "POST /tenants", "", `{"name": "X", "plan": "free", "email": "ops@[10.0.0.1]"}`, adminClaims, 422, "validation-failed", "field email:"},
		// A handler without exports answers the not-found problem, not "forbidden".
		{"exports off", "GET /tenants/{id}/exports", "tenant_acme", "", adminClaims, 404, "not-found", "exports are not configured"},
	}
	for _, c := range cases {
		resp := invokeEvent(t, h, req(c.route, c.id, authz(c.claims), c.body))
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, resp.Body)
			continue
		}
		p := problem(t, resp)
		if p.Type != "urn:tenantflow:problem:"+c.typ || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s: %s %q, want %s %q", c.name, p.Type, p.Detail, c.typ, c.detail)
		}
	}
}
