package httpapi

import (
	"context"
	"net/http"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// upgradeRequest is the body of POST /tenants/{id}/upgrade.
type upgradeRequest struct {
	Plan *string `json:"plan"`
}

// downgradeRequest is the body of POST /tenants/{id}/downgrade. at_period_end is
// optional and defaults to false (downgrade now).
type downgradeRequest struct {
	Plan        *string `json:"plan"`
	AtPeriodEnd *bool   `json:"at_period_end"`
}

// parsePlan checks the plan name against the catalog before any flow starts, so an
// unknown plan is a 422 naming the known ones.
func (h *Handler) parsePlan(name *string) (tenant.Plan, error) {
	if name == nil {
		return "", &tenant.ValidationError{Field: "plan", Reason: "required; one of " + h.planNames()}
	}
	return h.catalog.Parse(*name)
}

func (h *Handler) upgrade(ctx context.Context, r *request) (response, error) {
	r.tenantID = r.pathID()
	if err := r.who.requireTenant(r.tenantID); err != nil {
		return response{}, err
	}
	var in upgradeRequest
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	plan, err := h.parsePlan(in.Plan)
	if err != nil {
		return response{}, err
	}
	op, err := h.plans.Upgrade(ctx, r.tenantID, plan, r.who.actor("upgrade to "+string(plan)))
	if err != nil {
		return response{}, err
	}
	return accepted(r, op), nil
}

func (h *Handler) downgrade(ctx context.Context, r *request) (response, error) {
	r.tenantID = r.pathID()
	if err := r.who.requireTenant(r.tenantID); err != nil {
		return response{}, err
	}
	var in downgradeRequest
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	plan, err := h.parsePlan(in.Plan)
	if err != nil {
		return response{}, err
	}
	atPeriodEnd := in.AtPeriodEnd != nil && *in.AtPeriodEnd
	op, err := h.plans.Downgrade(ctx, r.tenantID, plan, atPeriodEnd, r.who.actor("downgrade to "+string(plan)))
	if err != nil {
		return response{}, err
	}
	return accepted(r, op), nil
}

func accepted(r *request, op *tenant.Operation) response {
	r.operationID = op.ID
	return response{
		status:   http.StatusAccepted,
		body:     AcceptedResponse{OperationID: op.ID, Status: op.Status, EffectiveAt: op.EffectiveAt},
		location: "/operations/" + op.ID,
	}
}

// getOperation shows an operation to an admin or to a token of the operation's tenant.
// Anyone else gets the same 404 as for a missing operation, so ids of other tenants'
// operations cannot be probed.
func (h *Handler) getOperation(ctx context.Context, r *request) (response, error) {
	id := r.pathID()
	r.operationID = id
	if !r.who.authenticated {
		return response{}, errUnauthenticated
	}
	if !r.who.admin && r.who.tenantID == "" {
		return response{}, &authError{status: http.StatusForbidden, detail: "reading operations requires the " + AdminScope + " scope or a " + TenantClaim + " claim"}
	}
	op, err := h.plans.Operation(ctx, id)
	if err != nil {
		return response{}, err
	}
	if !r.who.canActOn(op.TenantID) {
		return response{}, &tenant.NotFoundError{Kind: "operation", ID: id}
	}
	r.tenantID = op.TenantID
	return response{status: http.StatusOK, body: op}, nil
}
