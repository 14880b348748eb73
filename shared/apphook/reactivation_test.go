package apphook_test

// The reactivation's provisioning hook on the local stack (ProvisioningHook=eventbridge):
// a suspended tenant is reactivated onto professional; the app plane is asked to
// provision after access is restored, and to undo between UndoBilling and UndoAccess
// when the flow compensates.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// reactivate clones the seeded suspended tenant (on starter) as id and reactivates it
// onto professional.
func reactivate(t *testing.T, s *stack.Stack, id string) string {
	t.Helper()
	st.Clone(t, s, "tenant_suspended", id)
	resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/reactivate", "/tenants/{id}/reactivate", map[string]string{"id": id},
		map[string]any{"plan": tenant.Professional}, st.Admin))
	return st.OperationID(t, resp)
}

// putBack asserts the reactivation was undone: SUSPENDED on starter, held by nobody,
// its entitlements not the reactivation's, the audit trail there and back.
func putBack(t *testing.T, s *stack.Stack, id, opID string) *tenant.Tenant {
	t.Helper()
	tn := st.Tenant(t, s, id)
	ent := st.Entitlements(t, s, id)
	if tn.State != tenant.Suspended || tn.Operation != "" || tn.Plan != tenant.Starter || ent.OperationID == opID || ent.Access == tenant.AccessActive {
		t.Errorf("tenant %s %s held by %q on %s, entitlements %s/%s by %q; want SUSPENDED on starter", id, tn.State, tn.Operation, tn.Plan,
			ent.Access, ent.Plan, ent.OperationID)
	}
	if tr := st.Transitions(t, s, id); !slices.Equal(tr, []string{"SUSPENDED->REACTIVATING", "REACTIVATING->SUSPENDED"}) {
		t.Errorf("audit %v", tr)
	}
	return tn
}

func TestHookReactivationSuccess(t *testing.T) {
	s := hookStack(t)
	id := "hook-re-ok"
	opID := reactivate(t, s, id)
	op := drive(t, s, id, opID, always(apphook.StatusSucceeded))
	if op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	tn := st.Tenant(t, s, id)
	if ent := st.Entitlements(t, s, id); tn.State != tenant.Active || tn.Operation != "" || tn.Plan != tenant.Professional ||
		ent.Plan != tenant.Professional || ent.Access != tenant.AccessActive {
		t.Errorf("tenant %s held by %q on %s, entitlements %s/%s; want ACTIVE on professional", tn.State, tn.Operation, tn.Plan, ent.Access, ent.Plan)
	}
	evs := requests(t, s, id)
	if count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 0 {
		t.Fatalf("requests %+v, want one apply", evs)
	}
	ev := evs[0]
	limits, _ := tenant.DefaultCatalog().Limits(tenant.Professional)
	if ev.OperationID != opID || ev.Kind != tenant.KindReactivation || ev.FromPlan != "" || ev.ToPlan != tenant.Professional || ev.Limits != limits ||
		ev.RequestID != apphook.RequestID(opID, 0, apphook.ActionApply) || ev.TimeoutSeconds != hookTimeout || ev.HeartbeatSeconds != hookHeartbeat {
		t.Errorf("request %+v", ev)
	}
	// The apply comes after access is restored: TenantReactivated is published first.
	var order []string
	for _, e := range st.Published(t, s, id) {
		if e.DetailType == "TenantReactivated" || e.DetailType == apphook.DetailType {
			order = append(order, e.DetailType)
		}
	}
	if !slices.Equal(order, []string{"TenantReactivated", apphook.DetailType}) {
		t.Errorf("events %v", order)
	}
	if resp := answer(t, s, ev, map[string]any{"status": "succeeded"}); resp.StatusCode != 200 {
		t.Errorf("duplicate answer: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestHookReactivationFailureIsCompensated(t *testing.T) {
	s := hookStack(t)
	id := "hook-re-fail"
	opID := reactivate(t, s, id)
	op := drive(t, s, id, opID, byAction(
		map[string]any{"status": "failed", "error": "SiloUnavailable", "cause": "no silo capacity"},
		map[string]any{"status": "succeeded"}))
	if op["status"] != "FAILED" || op["error"] != apphook.ErrorFailed || !strings.Contains(fmt.Sprint(op["cause"]), "SiloUnavailable: no silo capacity") {
		t.Errorf("operation %v", op)
	}
	if op["needs_attention"] == true || op["compensation_incomplete"] != nil {
		t.Errorf("needs attention after a complete compensation: %v", op)
	}
	putBack(t, s, id, opID)
	evs := requests(t, s, id)
	if count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 1 {
		t.Fatalf("requests %+v, want one apply and one undo", evs)
	}
	undo := evs[1]
	if undo.Action != apphook.ActionUndo || undo.Kind != tenant.KindReactivation || undo.RequestID != apphook.RequestID(opID, 0, apphook.ActionUndo) ||
		undo.Limits != (tenant.Limits{}) || undo.ToPlan != tenant.Professional {
		t.Errorf("undo %+v", undo)
	}
	// The undo is asked between UndoBilling and UndoAccess: before the compensating
	// TenantReactivationReverted.
	var order []string
	for _, e := range st.Published(t, s, id) {
		switch e.DetailType {
		case "TenantReactivated", "TenantReactivationReverted", apphook.DetailType:
			order = append(order, e.DetailType)
		}
	}
	if want := []string{"TenantReactivated", apphook.DetailType, apphook.DetailType, "TenantReactivationReverted"}; !slices.Equal(order, want) {
		t.Errorf("events %v, want %v", order, want)
	}
}

// TestHookReactivationTimeoutAndLateAnswer: the app plane never answers the apply;
// the wait ends, the reactivation compensates and asks for the undo once; the apply's
// late answer is a 410 and changes nothing.
func TestHookReactivationTimeoutAndLateAnswer(t *testing.T) {
	s := hookStack(t)
	id := "hook-re-timeout"
	opID := reactivate(t, s, id)
	op := drive(t, s, id, opID, byAction(nil, map[string]any{"status": "succeeded"}))
	if op["status"] != "FAILED" || !strings.HasPrefix(fmt.Sprint(op["error"]), "States.") || op["needs_attention"] == true {
		t.Fatalf("operation %v", op)
	}
	tn := putBack(t, s, id, opID)
	evs := requests(t, s, id)
	if count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 1 {
		t.Fatalf("requests %+v", evs)
	}
	apply := evs[0]
	if r := request(t, s, apply); r.Status != apphook.StatusExpired {
		t.Errorf("apply request %s, want expired", r.Status)
	}
	audit := st.Transitions(t, s, id)
	published := len(st.Published(t, s, id))
	resp := answer(t, s, apply, map[string]any{"status": "succeeded"})
	if resp.StatusCode != 410 || !strings.Contains(resp.Body, "provisioning-expired") {
		t.Errorf("late answer: %d %s", resp.StatusCode, resp.Body)
	}
	after := putBack(t, s, id, opID)
	if after.Version != tn.Version || !slices.Equal(st.Transitions(t, s, id), audit) || operation(t, s, opID)["status"] != "FAILED" {
		t.Errorf("the late answer changed something: version %d -> %d", tn.Version, after.Version)
	}
	if n := len(st.Published(t, s, id)); n != published {
		t.Errorf("the late answer published %d events", n-published)
	}
	if r := request(t, s, apply); r.Status != apphook.StatusExpired {
		t.Errorf("apply request %s after the late answer", r.Status)
	}
}

// TestHookReactivationUndoUnansweredNeedsAttention: neither the apply nor the undo is
// answered; the tenant is put back, and the operation needs attention for what the
// app plane may still hold, until an operator retry's undo is confirmed.
func TestHookReactivationUndoUnansweredNeedsAttention(t *testing.T) {
	s := hookStack(t)
	id := "hook-re-silent"
	opID := reactivate(t, s, id)
	op := drive(t, s, id, opID, byAction(nil, nil))
	inc, _ := op["compensation_incomplete"].([]any)
	if op["status"] != "FAILED" || op["needs_attention"] != true || len(inc) != 1 || inc[0] != apphook.Incomplete {
		t.Errorf("operation %v", op)
	}
	putBack(t, s, id, opID)
	if evs := requests(t, s, id); count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 1 {
		t.Errorf("requests %+v", evs)
	}

	// The operator retry runs the compensation again: a new undo (attempt 1), once;
	// confirmed, the operation no longer needs attention. The apply is not asked again.
	resp := st.Call(t, s, st.Event(t, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil, st.Admin))
	if resp.StatusCode != 202 {
		t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
	}
	op = drive(t, s, id, opID, func(ev apphook.Event) map[string]any {
		if ev.Action == apphook.ActionUndo && ev.Attempt == 1 {
			return map[string]any{"status": "succeeded"}
		}
		return nil
	})
	if op["status"] != "FAILED" || op["needs_attention"] == true || op["compensation_incomplete"] != nil {
		t.Errorf("after the retry: operation %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended || tn.Operation != "" || tn.Plan != tenant.Starter || tn.Attention != "" {
		t.Errorf("after the retry: tenant %s held by %q on %s, attention %q", tn.State, tn.Operation, tn.Plan, tn.Attention)
	}
	evs := requests(t, s, id)
	undos := map[int]int{}
	for _, ev := range evs {
		if ev.Action == apphook.ActionUndo {
			undos[ev.Attempt]++
		}
	}
	if count(evs, apphook.ActionApply) != 1 || undos[0] != 1 || undos[1] != 1 || len(undos) != 2 {
		t.Errorf("requests after the retry %+v, want one apply and one undo per attempt", evs)
	}
}
