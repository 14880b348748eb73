package httpapi

import (
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/store"
)

// AdminScope lets a token act on every tenant, list tenants and create them.
const AdminScope = "tenants/admin"

// UsageScope is the scope of the platform's metering service: a token with it may report
// usage (PUT /tenants/{id}/usage) for any tenant, and it grants nothing else. Usage is
// not reported by a tenant's own tokens, because the figures decide whether a downgrade
// fits the target plan: a tenant that could write them could report zero usage, pass
// the downgrade check and keep more than the cheaper plan allows.
const UsageScope = "tenants/usage"

// TenantClaim is the JWT claim that binds a token to one tenant.
const TenantClaim = "tenant_id"

// principal is who is calling, as far as the JWT authorizer told us. API Gateway has
// already validated the token; the function only reads its claims.
type principal struct {
	authenticated bool
	sub           string
	admin         bool
	usage         bool // UsageScope: may report usage for any tenant, nothing more
	tenantID      string
}

func principalFrom(req *events.APIGatewayV2HTTPRequest) principal {
	a := req.RequestContext.Authorizer
	if a == nil || a.JWT == nil || len(a.JWT.Claims) == 0 {
		return principal{}
	}
	claims := a.JWT.Claims
	p := principal{authenticated: true, sub: claims["sub"], tenantID: claims[TenantClaim]}
	// OAuth puts scopes space-separated in "scope"; API Gateway also passes the scopes
	// it matched against route authorization scopes in JWT.Scopes.
	scopes := strings.Fields(claims["scope"])
	has := func(scope string) bool { return slices.Contains(scopes, scope) || slices.Contains(a.JWT.Scopes, scope) }
	p.admin = has(AdminScope)
	p.usage = has(UsageScope)
	return p
}

// canActOn reports whether the caller may read or change tenant id.
func (p principal) canActOn(id string) bool {
	return p.admin || (p.tenantID != "" && p.tenantID == id)
}

// actor is the audit identity of the caller.
func (p principal) actor(reason string) store.Actor {
	who := p.sub
	if who == "" {
		who = "unknown"
	}
	return store.Actor{Who: who, Reason: reason}
}

// requireTenant refuses callers that may not act on tenant id.
func (p principal) requireTenant(id string) error {
	if !p.authenticated {
		return errUnauthenticated
	}
	if !p.canActOn(id) {
		return &authError{status: 403, detail: "this token may not act on tenant " + id}
	}
	return nil
}

// requireUsageReporter refuses callers that may not report the usage of tenant id: only
// the metering service (UsageScope) and admins may, never a tenant's own token (see
// UsageScope for why).
func (p principal) requireUsageReporter(id string) error {
	if !p.authenticated {
		return errUnauthenticated
	}
	if !p.admin && !p.usage {
		return &authError{status: 403, detail: "this token may not report usage for tenant " + id +
			": usage is reported by the metering service and requires the " + UsageScope + " or " + AdminScope + " scope"}
	}
	return nil
}

// requireAdmin refuses callers without the admin scope.
func (p principal) requireAdmin(what string) error {
	if !p.authenticated {
		return errUnauthenticated
	}
	if !p.admin {
		return &authError{status: 403, detail: what + " requires the " + AdminScope + " scope"}
	}
	return nil
}

// authError is a refused caller: 401 without claims, 403 for the wrong ones.
type authError struct {
	status int
	detail string
}

func (e *authError) Error() string { return e.detail }

var errUnauthenticated = &authError{status: 401, detail: "no JWT claims on the request; a bearer token is required"}
