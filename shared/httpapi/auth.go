package httpapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
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
	provisioning  bool // ProvisioningScope: may answer provisioning requests, nothing more
	entitlements  bool // EntitlementsScope: may read any tenant's entitlements, nothing more
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
	p.provisioning = has(ProvisioningScope)
	p.entitlements = has(EntitlementsScope)
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

// actorAs is the caller's audit identity with the class the policy decides for.
func (p principal) actorAs(as tenant.Actor, reason string) store.Actor {
	a := p.actor(reason)
	a.As = as
	return a
}

// classes are the lifecycle policy's actor classes the caller holds toward tenant id
// (id "" for routes on no tenant), strongest first: an admin token is an operator, a
// token whose tenant_id claim is id is the tenant's own, a usage-scope token is the
// metering service. The token decides the class, never the body.
func (p principal) classes(id string) []tenant.Actor {
	var out []tenant.Actor
	if p.admin {
		out = append(out, tenant.ActorOperator)
	}
	if p.tenantID != "" && p.tenantID == id {
		out = append(out, tenant.ActorTenant)
	}
	if p.usage {
		out = append(out, tenant.ActorMetering)
	}
	return out
}

// permit asks the policy's actor column before the body is read (so a refused caller
// is a 403 whatever it sent): the first of the caller's classes the policy allows one
// of actions for. Several actions are passed when the tenant's state picks the rule
// later (a reactivation is a lift of a suspension or a win-back); the starter then asks
// the whole rule (tenant.Decide) with the class returned here.
func (p principal) permit(id string, actions ...tenant.Action) (tenant.Actor, error) {
	if !p.authenticated {
		return "", errUnauthenticated
	}
	for _, c := range p.classes(id) {
		for _, a := range actions {
			if tenant.Permit(a, c) == nil {
				return c, nil
			}
		}
	}
	return "", &authError{status: 403, detail: refusal(id, actions)}
}

// phrases name an action in a 403: what the token may not do, and the activity.
var phrases = map[tenant.Action][2]string{
	tenant.ActCreate:               {"create tenants", "creating tenants"},
	tenant.ActUpgrade:              {"upgrade tenant %s", "upgrading a tenant"},
	tenant.ActDowngrade:            {"downgrade tenant %s", "downgrading a tenant"},
	tenant.ActDowngradeAtPeriodEnd: {"downgrade tenant %s", "downgrading a tenant"},
	tenant.ActDelete:               {"delete tenant %s", "deleting a tenant"},
	tenant.ActSuspend:              {"suspend tenant %s", "suspending a tenant"},
	tenant.ActReactivate:           {"reactivate tenant %s", "reactivating a tenant"},
	tenant.ActWinBack:              {"reactivate tenant %s", "reactivating a tenant"},
	tenant.ActUsageReport:          {"report usage for tenant %s", "reporting usage"},
	tenant.ActOverride:             {"override the limits and features of tenant %s", "overriding limits and features"},
	tenant.ActExport:               {"export the data of tenant %s", "exporting a tenant's data"},
	tenant.ActRetry:                {"retry operations", "retrying or resolving operations"},
	tenant.ActResolve:              {"resolve operations", "retrying or resolving operations"},
}

// refusal is the detail of a 403 from permit: what the token may not do and which
// tokens may (from the policy's actor column).
func refusal(id string, actions []tenant.Action) string {
	ph := phrases[actions[0]]
	doing := ph[0]
	if strings.Contains(doing, "%s") {
		doing = fmt.Sprintf(doing, id)
	}
	var allowed []tenant.Actor
	for _, a := range actions {
		if r := tenant.RuleFor(a); r != nil {
			for _, c := range r.Actors {
				if !slices.Contains(allowed, c) {
					allowed = append(allowed, c)
				}
			}
		}
	}
	return "this token may not " + doing + ": " + ph[1] + " requires " + grants(allowed, id)
}

// grants says which tokens hold the given actor classes.
func grants(actors []tenant.Actor, id string) string {
	var out []string
	for _, a := range actors {
		switch a {
		case tenant.ActorOperator:
			out = append(out, "the "+AdminScope+" scope")
		case tenant.ActorMetering:
			out = append(out, "the "+UsageScope+" scope")
		case tenant.ActorTenant:
			if id == "" {
				out = append(out, "a token of the tenant itself ("+TenantClaim+" claim)")
			} else {
				out = append(out, "a token of tenant "+id+" ("+TenantClaim+" claim)")
			}
		}
	}
	if len(out) == 0 {
		return "a caller other than the API (Stripe or a schedule)"
	}
	return strings.Join(out, " or ")
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

// requireEntitlements refuses callers that may not read tenant id's entitlements: an
// operator, the tenant's own token and an app-plane service (EntitlementsScope) may.
func (p principal) requireEntitlements(id string) error {
	if !p.authenticated {
		return errUnauthenticated
	}
	if !p.canActOn(id) && !p.entitlements {
		return &authError{status: 403, detail: "this token may not read the entitlements of tenant " + id +
			": that requires the " + AdminScope + " scope, the " + EntitlementsScope + " scope or a token of tenant " + id + " (" + TenantClaim + " claim)"}
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
