package httpapi_test

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestAuthMatrix runs every route for each kind of caller against seeded tables.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t)
	var (
		admin        = authz(adminClaims)
		adminScopes  = authz(map[string]string{"sub": "svc"}, "tenants/admin") // scope only in JWT.Scopes
		adminAmong   = authz(map[string]string{"sub": "svc", "scope": "openid tenants/admin profile"})
		nearlyAdmin  = authz(map[string]string{"sub": "svc", "scope": "tenants/admin-readonly tenants/adminx"})
		acme         = authz(acmeClaims)
		acmeUpper    = authz(map[string]string{"sub": "alice", "tenant_id": "TENANT_ACME"})
		techstart    = authz(map[string]string{"sub": "bob", "tenant_id": "tenant_techstart"})
		metering     = authz(meteringClaims)
		meteringJWT  = authz(map[string]string{"sub": "svc_metering"}, "tenants/usage") // scope only in JWT.Scopes
		nearlyUsage  = authz(map[string]string{"sub": "svc", "scope": "tenants/usagex tenants/usage-read"})
		acmeUsage    = authz(map[string]string{"sub": "alice", "tenant_id": "tenant_acme", "scope": "openid"})
		subOnly      = authz(map[string]string{"sub": "nobody"})
		emptyClaims  = authz(map[string]string{})
		none         = authz(nil)
		usage        = `{"users": 2, "storage_gb": 0.5, "api_calls_per_month": 5000}`
		createBody   = `{"id": "tenant_matrix", "name": "Matrix", "plan": "free"}`
		badJSON      = `{"name": `
		acmeOwnOpRef = knownOpID
	)
	cases := []struct {
		name   string
		route  string
		id     string
		who    *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
		body   string
		status int
	}{
		{"admin reads any tenant", "GET /tenants/{id}", "tenant_enterprise", admin, "", 200},
		{"admin via JWT scopes", "GET /tenants/{id}", "tenant_enterprise", adminScopes, "", 200},
		{"admin among other scopes", "GET /tenants/{id}", "tenant_enterprise", adminAmong, "", 200},
		{"scope prefix is not admin", "GET /tenants/{id}", "tenant_enterprise", nearlyAdmin, "", 403},
		{"admin lists", "GET /tenants", "", admin, "", 200},
		{"admin reads audit", "GET /tenants/{id}/audit", "tenant_suspended", admin, "", 200},
		{"admin reads any operation", "GET /operations/{id}", acmeOwnOpRef, admin, "", 200},

		{"own tenant read", "GET /tenants/{id}", "tenant_acme", acme, "", 200},
		{"own tenant usage is the metering service's", "PUT /tenants/{id}/usage", "tenant_acme", acme, usage, 403},
		{"own tenant usage, openid scope", "PUT /tenants/{id}/usage", "tenant_acme", acmeUsage, usage, 403},
		{"own tenant audit", "GET /tenants/{id}/audit", "tenant_acme", acme, "", 200},
		{"own tenant upgrade", "POST /tenants/{id}/upgrade", "tenant_techstart", techstart, `{"plan": "starter"}`, 202},
		{"own tenant downgrade", "POST /tenants/{id}/downgrade", "tenant_acme", acme, `{"plan": "free"}`, 202},
		{"own operation", "GET /operations/{id}", acmeOwnOpRef, acme, "", 200},

		{"other tenant read", "GET /tenants/{id}", "tenant_enterprise", acme, "", 403},
		{"other tenant usage", "PUT /tenants/{id}/usage", "tenant_enterprise", acme, usage, 403},
		{"other tenant audit", "GET /tenants/{id}/audit", "tenant_enterprise", acme, "", 403},
		{"other tenant upgrade", "POST /tenants/{id}/upgrade", "tenant_techstart", acme, `{"plan": "starter"}`, 403},
		{"other tenant downgrade", "POST /tenants/{id}/downgrade", "tenant_enterprise", acme, `{"plan": "starter"}`, 403},
		{"other tenant operation hides as 404", "GET /operations/{id}", acmeOwnOpRef, techstart, "", 404},
		{"tenant id compared exactly", "GET /tenants/{id}", "tenant_acme", acmeUpper, "", 403},
		{"auth before body: wrong tenant, bad JSON", "PUT /tenants/{id}/usage", "tenant_enterprise", acme, badJSON, 403},

		{"admin reports usage", "PUT /tenants/{id}/usage", "tenant_enterprise", admin, usage, 200},
		{"metering reports usage of any tenant", "PUT /tenants/{id}/usage", "tenant_enterprise", metering, usage, 200},
		{"metering reports usage of a suspended tenant", "PUT /tenants/{id}/usage", "tenant_suspended", metering, usage, 200},
		{"metering via JWT scopes", "PUT /tenants/{id}/usage", "tenant_techstart", meteringJWT, usage, 200},
		{"metering, unknown tenant", "PUT /tenants/{id}/usage", "tenant_nobody", metering, usage, 404},
		{"scope prefix is not usage", "PUT /tenants/{id}/usage", "tenant_acme", nearlyUsage, usage, 403},
		{"metering may not read a tenant", "GET /tenants/{id}", "tenant_acme", metering, "", 403},
		{"metering may not read audit", "GET /tenants/{id}/audit", "tenant_acme", metering, "", 403},
		{"metering may not list", "GET /tenants", "", metering, "", 403},
		{"metering may not create", "POST /tenants", "", metering, createBody, 403},
		{"metering may not upgrade", "POST /tenants/{id}/upgrade", "tenant_techstart", metering, `{"plan": "starter"}`, 403},
		{"metering may not downgrade", "POST /tenants/{id}/downgrade", "tenant_acme", metering, `{"plan": "free"}`, 403},
		{"metering may not read operations", "GET /operations/{id}", acmeOwnOpRef, metering, "", 403},

		{"tenant token lists", "GET /tenants", "", acme, "", 403},
		{"tenant token creates", "POST /tenants", "", acme, createBody, 403},
		{"tenant token creates, bad JSON", "POST /tenants", "", acme, badJSON, 403},
		{"token without tenant or scope", "GET /tenants/{id}", "tenant_acme", subOnly, "", 403},
		{"token without tenant or scope, operation", "GET /operations/{id}", acmeOwnOpRef, subOnly, "", 403},

		{"no claims read", "GET /tenants/{id}", "tenant_acme", none, "", 401},
		{"no claims list", "GET /tenants", "", none, "", 401},
		{"no claims create", "POST /tenants", "", none, createBody, 401},
		{"no claims usage", "PUT /tenants/{id}/usage", "tenant_acme", none, usage, 401},
		{"no claims operation", "GET /operations/{id}", acmeOwnOpRef, none, "", 401},
		{"empty claims", "GET /tenants/{id}", "tenant_acme", emptyClaims, "", 401},
	}
	for _, c := range cases {
		ev := req(c.route, c.id, c.who, c.body)
		if c.route == "GET /tenants" {
			ev.QueryStringParameters = map[string]string{"state": "ACTIVE"}
		}
		resp := invokeEvent(t, e.h, ev)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, resp.Body)
			continue
		}
		if c.status >= 400 {
			problem(t, resp)
		}
		if c.status == 401 && resp.Headers["WWW-Authenticate"] != "Bearer" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
}
