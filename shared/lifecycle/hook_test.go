package lifecycle

import (
	"context"
	"errors"
	"testing"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestAppHookRefusesWhatIsNotAReactivationsTask: only a reactivation asks the app
// plane, only from a waiting Task, and only to apply or undo; anything else is a
// ValidationError before anything is read or written.
func TestAppHookRefusesWhatIsNotAReactivationsTask(t *testing.T) {
	s := NewSteps(nil, nil, nil, nil, tenant.DefaultCatalog()).WithHook(&apphook.Requester{})
	ref := func(kind string) Input { return Input{Ref: flow.Ref{OperationID: "op_1", TenantID: "t1", Kind: kind}} }
	cases := []struct {
		name  string
		in    HookInput
		field string
	}{
		{"deletion", HookInput{Input: ref(tenant.KindDeletion), Action: apphook.ActionApply, TaskToken: "tok"}, "kind"},
		{"suspension", HookInput{Input: ref(tenant.KindSuspension), Action: apphook.ActionUndo, TaskToken: "tok"}, "kind"},
		{"no token", HookInput{Input: ref(tenant.KindReactivation), Action: apphook.ActionApply}, "task_token"},
		{"unknown action", HookInput{Input: ref(tenant.KindReactivation), Action: "rollback", TaskToken: "tok"}, "action"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.AppHook(context.Background(), c.in)
			var ve *tenant.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("error %v, want a ValidationError on %s", err, c.field)
			}
		})
	}
}

// TestHookRequestOfAReactivation: the apply carries the chosen plan's limits and no
// from_plan; the undo, which takes the tenant back out of service, carries no limits;
// both are the reactivation's kind, with the ids of (operation, attempt, action).
func TestHookRequestOfAReactivation(t *testing.T) {
	s := NewSteps(nil, nil, nil, nil, tenant.DefaultCatalog())
	op := &tenant.Operation{ID: "op_1", TenantID: "t1", Kind: tenant.KindReactivation, FromPlan: tenant.Starter, ToPlan: tenant.Professional, Attempt: 2}
	cfg := &apphook.Config{Mode: apphook.ModeEventBridge, TimeoutSeconds: 30, HeartbeatSeconds: 10}
	limits, _ := tenant.DefaultCatalog().Limits(tenant.Professional)
	apply := s.request(op, apphook.ActionApply, 0, cfg)
	if apply.ID != apphook.RequestID("op_1", 0, apphook.ActionApply) || apply.Kind != tenant.KindReactivation || apply.FromPlan != "" ||
		apply.ToPlan != tenant.Professional || apply.Limits != limits || apply.TimeoutSeconds != 30 || apply.HeartbeatSeconds != 10 {
		t.Errorf("apply %+v", apply)
	}
	undo := s.request(op, apphook.ActionUndo, op.Attempt, cfg)
	if undo.ID != apphook.RequestID("op_1", 2, apphook.ActionUndo) || undo.Attempt != 2 || undo.FromPlan != "" || undo.Limits != (tenant.Limits{}) {
		t.Errorf("undo %+v", undo)
	}
}
