package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// deleteRequest is the optional body of DELETE /tenants/{id}.
type deleteRequest struct {
	RetentionDays *int64 `json:"retention_days"`
}

// DeletionResponse answers a soft deletion that was started (202). PurgeAfter is when
// the tenant may be purged if the deletion finishes now; GET /tenants/{id} shows the
// exact time once it is DELETED.
type DeletionResponse struct {
	OperationID   string                 `json:"operation_id"`
	Status        tenant.OperationStatus `json:"status"`
	RetentionDays int                    `json:"retention_days"`
	PurgeAfter    time.Time              `json:"purge_after"`
}

// deleteTenant soft-deletes a tenant (operator, or the tenant's own token): 202 with
// the retention chosen (30-90 days, the deployment's default when absent).
func (h *Handler) deleteTenant(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	as, err := r.who.permit(r.tenantID, tenant.ActDelete)
	if err != nil {
		return response{}, err
	}
	var in deleteRequest
	if r.ev.Body != "" {
		if err := decodeBody(r.ev, &in); err != nil {
			return response{}, err
		}
	}
	days := 0
	if in.RetentionDays != nil {
		if *in.RetentionDays < tenant.MinRetentionDays || *in.RetentionDays > tenant.MaxRetentionDays {
			return response{}, &tenant.ValidationError{Field: "retention_days", Reason: fmt.Sprintf("must be between %d and %d", tenant.MinRetentionDays, tenant.MaxRetentionDays)}
		}
		days = int(*in.RetentionDays)
	}
	d, err := h.life.Delete(ctx, r.tenantID, days, r.who.actorAs(as, "delete tenant"))
	if err != nil {
		return response{}, err
	}
	r.operationID = d.Operation.ID
	return response{status: http.StatusAccepted, location: "/operations/" + d.Operation.ID,
		body: DeletionResponse{OperationID: d.Operation.ID, Status: d.Operation.Status, RetentionDays: d.RetentionDays, PurgeAfter: d.PurgeAfter}}, nil
}

// suspendRequest is the body of POST /tenants/{id}/suspend.
type suspendRequest struct {
	Reason *string `json:"reason"`
}

// maxReasonRunes bounds a suspension reason.
const maxReasonRunes = 500

// suspendTenant suspends an ACTIVE tenant (operators only): its users keep read and
// export access, and it cannot change plan until reactivated.
func (h *Handler) suspendTenant(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	as, err := r.who.permit(r.tenantID, tenant.ActSuspend)
	if err != nil {
		return response{}, err
	}
	var in suspendRequest
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	if in.Reason == nil || strings.TrimSpace(*in.Reason) == "" || utf8.RuneCountInString(*in.Reason) > maxReasonRunes {
		return response{}, &tenant.ValidationError{Field: "reason", Reason: fmt.Sprintf("required: why the tenant is suspended (1-%d characters)", maxReasonRunes)}
	}
	op, err := h.life.Suspend(ctx, r.tenantID, *in.Reason, r.who.actorAs(as, "suspend: "+*in.Reason))
	if err != nil {
		return response{}, err
	}
	return accepted(r, op), nil
}

// reactivateRequest is the body of POST /tenants/{id}/reactivate.
type reactivateRequest struct {
	Plan *string `json:"plan"`
}

// reactivateTenant brings a tenant back onto a plan, as the lifecycle policy allows
// the caller: an operator lifts a suspension (any cause) or wins back a DELETED tenant;
// the tenant's own token only wins back its own deletion, inside the retention, onto a
// plan its usage fits — and a tenant deleted while suspended comes back SUSPENDED on
// its plan (docs/policy.md). Past purge_after the answer is 409 "retention period
// expired".
func (h *Handler) reactivateTenant(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	as, err := r.who.permit(r.tenantID, tenant.ActReactivate, tenant.ActWinBack)
	if err != nil {
		return response{}, err
	}
	var in reactivateRequest
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	plan, err := h.parsePlan(in.Plan)
	if err != nil {
		return response{}, err
	}
	op, err := h.life.Reactivate(ctx, r.tenantID, plan, r.who.actorAs(as, "reactivate onto "+string(plan)))
	if err != nil {
		return response{}, err
	}
	return accepted(r, op), nil
}
