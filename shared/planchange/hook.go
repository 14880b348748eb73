package planchange

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

// Hook is the requester WithHook gave (nil without it).
func (s *Steps) Hook() *apphook.Requester { return s.hook }

// AppHook is the provisioning hook's step, a Task that waits for its token's answer:
//   - apply (forward, after Provision): asks the app plane to provision the target
//     plan, once per operation; the answer (or its absence) decides whether the flow
//     goes on or compensates.
//   - undo (compensation): asks the app plane to undo what the apply may have done,
//     once per operation and attempt, and only if an apply was requested. An apply
//     still pending is expired first, so its late answer changes nothing.
//
// The step returns once the request is recorded and announced; the Task ends when the
// app plane's answer is handed to Step Functions (Answerer), or at its timeout.
func (s *Steps) AppHook(ctx context.Context, in HookInput) (struct{}, error) {
	if err := checkKind(in.Input.Kind); err != nil {
		return struct{}{}, err
	}
	if in.TaskToken == "" {
		return struct{}{}, &tenant.ValidationError{Field: "task_token", Reason: "the hook step runs as a .waitForTaskToken Task"}
	}
	ref := in.Input.Ref
	cfg := in.Input.AppHook
	if cfg == nil {
		cfg = &apphook.Config{}
	}
	switch in.Action {
	case apphook.ActionApply:
		if _, err := s.kit.Owned(ctx, ref, busyState(ref.Kind)); err != nil {
			return struct{}{}, err
		}
		op, err := s.kit.Store.GetOperation(ctx, ref.OperationID)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, s.hook.Request(ctx, s.request(op, apphook.ActionApply, 0, cfg), in.TaskToken)
	case apphook.ActionUndo:
		_, op, ok, err := s.kit.Compensating(ctx, ref, busyState(ref.Kind))
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

// request is what the app plane is asked: apply the target plan's limits, or undo
// them back to the plan the tenant had.
func (s *Steps) request(op *tenant.Operation, action string, attempt int, cfg *apphook.Config) apphook.Request {
	plan := op.ToPlan
	if action == apphook.ActionUndo {
		plan = op.FromPlan
	}
	limits, _ := s.catalog.Limits(plan)
	return apphook.Request{ID: apphook.RequestID(op.ID, attempt, action), TenantID: op.TenantID, OperationID: op.ID, Kind: op.Kind,
		Action: action, Attempt: attempt, FromPlan: op.FromPlan, ToPlan: op.ToPlan, Limits: limits,
		TimeoutSeconds: cfg.TimeoutSeconds, HeartbeatSeconds: cfg.HeartbeatSeconds}
}
