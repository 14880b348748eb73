package lifecycle

import (
	"context"
	"fmt"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// WithHook gives the steps the provisioning hook's requester (the hook step's
// function only).
func (s *Steps) WithHook(q *apphook.Requester) *Steps {
	s.hook = q
	return s
}

// AppHook is the reactivation's provisioning hook step, a Task that waits for its
// token's answer:
//   - apply (forward, after RestoreAccess): asks the app plane to provision the plan
//     the tenant comes back to, once per operation; its answer (or its absence)
//     decides whether the flow goes on to billing or compensates.
//   - undo (compensation, between UndoBilling and UndoAccess): asks the app plane to
//     undo what the apply may have made, once per operation and attempt, and only if
//     an apply was requested. An apply still pending is expired first, so its late
//     answer changes nothing.
//
// Deletion and suspension have no hook: revoking or restricting access never waits
// for the app plane.
func (s *Steps) AppHook(ctx context.Context, in HookInput) (struct{}, error) {
	ref := in.Input.Ref
	if ref.Kind != tenant.KindReactivation {
		return struct{}{}, &tenant.ValidationError{Field: "kind", Reason: "only a reactivation asks the app plane"}
	}
	if in.TaskToken == "" {
		return struct{}{}, &tenant.ValidationError{Field: "task_token", Reason: "the hook step runs as a .waitForTaskToken Task"}
	}
	cfg := in.Input.AppHook
	if cfg == nil {
		cfg = &apphook.Config{}
	}
	switch in.Action {
	case apphook.ActionApply:
		if _, err := s.kit.Owned(ctx, ref, tenant.Reactivating); err != nil {
			return struct{}{}, err
		}
		op, err := s.kit.Store.GetOperation(ctx, ref.OperationID)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, s.hook.Request(ctx, s.request(op, apphook.ActionApply, 0, cfg), in.TaskToken)
	case apphook.ActionUndo:
		_, op, ok, err := s.kit.Compensating(ctx, ref, tenant.Reactivating)
		if err != nil {
			return struct{}{}, err
		}
		if !ok {
			return struct{}{}, s.hook.Skip(ctx, in.TaskToken, "nothing to compensate")
		}
		return struct{}{}, s.hook.Undo(ctx, op.ID, s.request(op, apphook.ActionUndo, op.Attempt, cfg), in.TaskToken)
	default:
		return struct{}{}, &tenant.ValidationError{Field: "action", Reason: fmt.Sprintf("must be %s or %s", apphook.ActionApply, apphook.ActionUndo)}
	}
}

// request is what the app plane is asked. A reactivating tenant has nothing
// provisioned to come from (from_plan is empty): the apply carries the limits of the
// plan it comes back to; the undo, which takes the tenant back out of service, carries
// no limits (all zero).
func (s *Steps) request(op *tenant.Operation, action string, attempt int, cfg *apphook.Config) apphook.Request {
	var limits tenant.Limits
	if action == apphook.ActionApply {
		limits, _ = s.catalog.Limits(op.ToPlan)
	}
	return apphook.Request{ID: apphook.RequestID(op.ID, attempt, action), TenantID: op.TenantID, OperationID: op.ID, Kind: op.Kind,
		Action: action, Attempt: attempt, ToPlan: op.ToPlan, Limits: limits,
		TimeoutSeconds: cfg.TimeoutSeconds, HeartbeatSeconds: cfg.HeartbeatSeconds}
}
