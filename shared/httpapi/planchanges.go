package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

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
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	as, err := r.who.permit(r.tenantID, tenant.ActUpgrade)
	if err != nil {
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
	op, err := h.plans.Upgrade(ctx, r.tenantID, plan, r.who.actorAs(as, "upgrade to "+string(plan)))
	if err != nil {
		return response{}, err
	}
	return accepted(r, op), nil
}

func (h *Handler) downgrade(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	as, err := r.who.permit(r.tenantID, tenant.ActDowngrade, tenant.ActDowngradeAtPeriodEnd)
	if err != nil {
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
	op, err := h.plans.Downgrade(ctx, r.tenantID, plan, atPeriodEnd, r.who.actorAs(as, "downgrade to "+string(plan)))
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
// operations cannot be probed. Admins get the whole record; a tenant token gets
// OperationResponse, which leaves out who asked and the raw cause of a failure.
func (h *Handler) getOperation(ctx context.Context, r *request) (response, error) {
	op, err := h.visibleOperation(ctx, r)
	if err != nil {
		return response{}, err
	}
	if r.who.admin {
		// The domain type itself, so that fields added to tenant.Operation reach
		// operators without a change here.
		return response{status: http.StatusOK, body: op}, nil
	}
	return response{status: http.StatusOK, body: operationView(op)}, nil
}

// retryRequest is the optional body of POST /operations/{id}/retry: action "retry"
// (the default) runs the operation's compensation again; "resolve" records, with a
// note, that an operator fixed by hand what compensation could not undo.
type retryRequest struct {
	Action *string `json:"action"`
	Note   *string `json:"note"`
}

// maxNoteRunes bounds an operator's resolution note.
const maxNoteRunes = 1000

// retryOperation is the operator route for an operation that needs attention (its
// compensation is incomplete): 202 while the retry runs, 200 when resolved, 409 when
// the operation does not need attention.
func (h *Handler) retryOperation(ctx context.Context, r *request) (response, error) {
	as, err := r.who.permit("", tenant.ActRetry, tenant.ActResolve)
	if err != nil {
		return response{}, err
	}
	id := r.pathID()
	if !validOperationID(id) {
		return response{}, &malformedIDError{kind: "operation", rule: operationIDRule}
	}
	r.operationID = id
	var in retryRequest
	if r.ev.Body != "" {
		if err := decodeBody(r.ev, &in); err != nil {
			return response{}, err
		}
	}
	action := "retry"
	if in.Action != nil {
		action = *in.Action
	}
	switch action {
	case "retry":
		op, err := h.ops.Retry(ctx, id, r.who.actorAs(as, "retry operation "+id))
		if err != nil {
			return response{}, err
		}
		r.tenantID = op.TenantID
		return accepted(r, op), nil
	case "resolve":
		if in.Note == nil || strings.TrimSpace(*in.Note) == "" || utf8.RuneCountInString(*in.Note) > maxNoteRunes {
			return response{}, &tenant.ValidationError{Field: "note", Reason: fmt.Sprintf("required to resolve: what was fixed by hand (1-%d characters)", maxNoteRunes)}
		}
		op, err := h.ops.Resolve(ctx, id, *in.Note, r.who.actorAs(as, "resolve operation "+id))
		if err != nil {
			return response{}, err
		}
		r.tenantID = op.TenantID
		return response{status: http.StatusOK, body: op}, nil
	}
	return response{}, &tenant.ValidationError{Field: "action", Reason: `must be "retry" or "resolve"`}
}
