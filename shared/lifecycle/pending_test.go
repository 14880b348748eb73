package lifecycle_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// scheduleDowngrade records a period-end downgrade of id to free and returns its
// operation id.
func scheduleDowngrade(t *testing.T, s *stack.Stack, id string) string {
	t.Helper()
	resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/downgrade", "/tenants/{id}/downgrade", map[string]string{"id": id},
		map[string]any{"plan": "free", "at_period_end": true}, st.Admin))
	opID := st.OperationID(t, resp)
	if tn := st.Tenant(t, s, id); tn.PendingChange == nil || tn.PendingChange.OperationID != opID {
		t.Fatalf("pending change not recorded: %+v", tn.PendingChange)
	}
	return opID
}

// TestPendingDowngradeDroppedOnlyWhenALifecycleFlowCommits: a deletion that rolls
// back hands the tenant back with its scheduled period-end downgrade (the change
// still pending, its operation still SCHEDULED); a deletion or a suspension that
// commits drops it, and the scheduled operation ends FAILED (PendingChangeDropped),
// also when the finish step's answer was lost and the step ran again.
func TestPendingDowngradeDroppedOnlyWhenALifecycleFlowCommits(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	id := "pending-rollback"
	st.Clone(t, s, "tenant_acme", id)
	sched := scheduleDowngrade(t, s, id)
	want := *st.Tenant(t, s, id).PendingChange

	defer s.Lambda.ClearFaults()
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleAccessFunction", Count: -1, ErrorType: "InjectedFault"}); err != nil {
		t.Fatal(err)
	}
	del := st.OperationID(t, deleteTenant(t, s, id, nil, st.Admin))
	if op := st.WaitDone(t, s, del); op["status"] != "FAILED" {
		t.Fatalf("deletion %v", op)
	}
	s.Lambda.ClearFaults()
	tn := st.Tenant(t, s, id)
	op, err := s.Store().GetOperation(ctx, sched)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the rolled-back deletion: tenant %s, pending %+v, scheduled operation %s %s", tn.State, tn.PendingChange, op.Status, op.Error)
	if tn.State != tenant.Active || tn.PendingChange == nil || *tn.PendingChange != want || op.Status != tenant.OpScheduled {
		t.Fatalf("the rolled-back deletion did not restore the scheduled downgrade: pending %+v (want %+v), operation %s %s",
			tn.PendingChange, want, op.Status, op.Error)
	}

	// A deletion that commits drops it.
	del = st.OperationID(t, deleteTenant(t, s, id, nil, st.Admin))
	if op := st.WaitDone(t, s, del); op["status"] != "SUCCEEDED" {
		t.Fatalf("deletion %v", op)
	}
	checkDropped(t, s, id, sched, del)

	// A deletion whose finish step's answer is lost after the commit: the repeated
	// step finds the commit and ends the dropped change's operation all the same.
	id = "pending-lost-answer"
	st.Clone(t, s, "tenant_acme", id)
	sched = scheduleDowngrade(t, s, id)
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleFinishFunction", After: true, Count: 1, ErrorType: "Sandbox.Timedout"}); err != nil {
		t.Fatal(err)
	}
	del = st.OperationID(t, deleteTenant(t, s, id, nil, st.Admin))
	if op := st.WaitDone(t, s, del); op["status"] != "SUCCEEDED" {
		t.Fatalf("deletion %v", op)
	}
	s.Lambda.ClearFaults()
	checkDropped(t, s, id, sched, del)

	// So does a suspension.
	id = "pending-suspend"
	st.Clone(t, s, "tenant_acme", id)
	sched = scheduleDowngrade(t, s, id)
	sus := st.OperationID(t, suspend(t, s, id, "fraud review"))
	if op := st.WaitDone(t, s, sus); op["status"] != "SUCCEEDED" {
		t.Fatalf("suspension %v", op)
	}
	checkDropped(t, s, id, sched, sus)
}

func checkDropped(t *testing.T, s *stack.Stack, id, sched, by string) {
	t.Helper()
	tn := st.Tenant(t, s, id)
	op, err := s.Store().GetOperation(context.Background(), sched)
	if err != nil {
		t.Fatal(err)
	}
	if tn.PendingChange != nil || op.Status != tenant.OpFailed || op.Error != "PendingChangeDropped" || !strings.Contains(op.Cause, by) {
		t.Fatalf("after %s committed: pending %+v, scheduled operation %s %s (%s)", by, tn.PendingChange, op.Status, op.Error, op.Cause)
	}
}
