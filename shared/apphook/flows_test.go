package apphook_test

// The provisioning hook end to end on the local stack, with ProvisioningHook=eventbridge:
// the real upgrade and downgrade machines wait (.waitForTaskToken) on the local Step
// Functions service; the test plays the app plane: it reads ProvisioningRequested from
// the lifecycle bus and answers through the real API function. Faults are injected from
// outside, through the local Lambda service.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// hookStack is the binary's stack with the hook on: 6 s to answer, 2 s of silence at
// most. A silent app plane fails on the heartbeat at 2 s; the 6 s leave the heartbeat
// test (2.5 s of heartbeats, then the answer) room on a loaded machine.
func hookStack(t *testing.T) *stack.Stack {
	return st.SharedWith(t, st.Options{Params: map[string]string{
		"ProvisioningHook": "eventbridge", "ProvisioningTimeoutSeconds": fmt.Sprint(hookTimeout), "ProvisioningHeartbeatSeconds": fmt.Sprint(hookHeartbeat),
	}})
}

// The hook stack's wait bounds, in seconds (every request names them).
const (
	hookTimeout   = 6
	hookHeartbeat = 2
)

// appPlaneClaims are the claims of the app plane's provisioning service.
var appPlaneClaims = map[string]string{"sub": "app-plane", "scope": "tenants/provisioning"}

type flowCase struct {
	kind     string
	example  string
	from, to tenant.Plan
}

var flows = []flowCase{
	{tenant.KindUpgrade, "tenant_techstart", tenant.Free, tenant.Starter},
	{tenant.KindDowngrade, "tenant_acme", tenant.Starter, tenant.Free},
}

// reactivation is the fault matrix's reactivation: the seeded suspended tenant (on
// starter) comes back onto professional.
var reactivation = flowCase{tenant.KindReactivation, "tenant_suspended", "", tenant.Professional}

func start(t *testing.T, s *stack.Stack, f flowCase, id string) string {
	t.Helper()
	body := map[string]any{"plan": f.to}
	action := f.kind
	if f.kind == tenant.KindReactivation {
		action = "reactivate"
	}
	resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/"+action, "/tenants/{id}/"+action, map[string]string{"id": id}, body, st.Admin))
	return st.OperationID(t, resp)
}

// ended asserts the tenant ended consistent after flow f: committed, ACTIVE on the
// target plan; otherwise back where it was (a plan change: ACTIVE on its plan; a
// reactivation: SUSPENDED, as putBack checks).
func ended(t *testing.T, s *stack.Stack, f flowCase, id, opID string, committed bool) {
	t.Helper()
	switch {
	case committed:
		settled(t, s, id, f.to)
	case f.kind == tenant.KindReactivation:
		putBack(t, s, id, opID)
	default:
		settled(t, s, id, f.from)
	}
}

// requests are the ProvisioningRequested events published for tenant id.
func requests(t *testing.T, s *stack.Stack, id string) []apphook.Event {
	t.Helper()
	var out []apphook.Event
	for _, e := range st.Published(t, s, id) {
		if e.DetailType != apphook.DetailType {
			continue
		}
		var ev apphook.Event
		if err := json.Unmarshal(e.Detail, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func count(evs []apphook.Event, action string) int {
	n := 0
	for _, e := range evs {
		if e.Action == action {
			n++
		}
	}
	return n
}

func answer(t *testing.T, s *stack.Stack, ev apphook.Event, body map[string]any) events.APIGatewayV2HTTPResponse {
	t.Helper()
	return st.Call(t, s, st.Event(t, "POST", ev.AnswerPath, "/tenants/{id}/provisioning/{request_id}",
		map[string]string{"id": ev.TenantID, "request_id": ev.RequestID}, body, appPlaneClaims))
}

func operation(t *testing.T, s *stack.Stack, opID string) map[string]any {
	t.Helper()
	resp := st.Call(t, s, st.Event(t, "GET", "/operations/"+opID, "/operations/{id}", map[string]string{"id": opID}, nil, st.Admin))
	return st.Body(t, resp)
}

// drive plays the app plane until the operation ends: every request it has not seen
// yet is answered with policy's body (nil: never answered). It returns the operation.
func drive(t *testing.T, s *stack.Stack, id, opID string, policy func(apphook.Event) map[string]any) map[string]any {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range requests(t, s, id) {
			if seen[ev.RequestID] {
				continue
			}
			seen[ev.RequestID] = true
			if body := policy(ev); body != nil {
				answer(t, s, ev, body)
			}
		}
		if op := operation(t, s, opID); op["status"] == "SUCCEEDED" || op["status"] == "FAILED" {
			return op
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("operation %s did not end", opID)
	return nil
}

func always(status string) func(apphook.Event) map[string]any {
	return func(apphook.Event) map[string]any { return map[string]any{"status": status} }
}

// byAction answers apply and undo differently (nil: never).
func byAction(apply, undo map[string]any) func(apphook.Event) map[string]any {
	return func(ev apphook.Event) map[string]any {
		if ev.Action == apphook.ActionApply {
			return apply
		}
		return undo
	}
}

// settled asserts the tenant ended consistent: ACTIVE, held by nobody, on plan, with
// that plan's entitlements.
func settled(t *testing.T, s *stack.Stack, id string, plan tenant.Plan) *tenant.Tenant {
	t.Helper()
	tn := st.Tenant(t, s, id)
	ent := st.Entitlements(t, s, id)
	if tn.State != tenant.Active || tn.Operation != "" || tn.Plan != plan || ent.Plan != plan {
		t.Errorf("tenant %s %s held by %q on %s, entitlements %s; want ACTIVE on %s", id, tn.State, tn.Operation, tn.Plan, ent.Plan, plan)
	}
	return tn
}

func request(t *testing.T, s *stack.Stack, ev apphook.Event) *apphook.Request {
	t.Helper()
	r, err := s.Store().GetProvisioning(context.Background(), ev.TenantID, ev.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHookSuccess(t *testing.T) {
	s := hookStack(t)
	for i, f := range flows {
		t.Run(f.kind, func(t *testing.T) {
			id := fmt.Sprintf("hook-ok-%d", i)
			st.Clone(t, s, f.example, id)
			opID := start(t, s, f, id)
			op := drive(t, s, id, opID, always(apphook.StatusSucceeded))
			if op["status"] != "SUCCEEDED" {
				t.Fatalf("operation %v", op)
			}
			settled(t, s, id, f.to)
			evs := requests(t, s, id)
			if count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 0 {
				t.Fatalf("requests %+v, want one apply", evs)
			}
			ev := evs[0]
			limits, _ := tenant.DefaultCatalog().Limits(f.to)
			if ev.OperationID != opID || ev.Kind != f.kind || ev.FromPlan != f.from || ev.ToPlan != f.to || ev.Limits != limits ||
				ev.TimeoutSeconds != hookTimeout || ev.HeartbeatSeconds != hookHeartbeat || ev.AnswerPath != "/tenants/"+id+"/provisioning/"+ev.RequestID {
				t.Errorf("request %+v", ev)
			}
			// A duplicate answer changes nothing; a different one is refused.
			if resp := answer(t, s, ev, map[string]any{"status": "succeeded"}); resp.StatusCode != 200 {
				t.Errorf("duplicate answer: %d %s", resp.StatusCode, resp.Body)
			}
			resp := answer(t, s, ev, map[string]any{"status": "failed", "error": "Late"})
			if resp.StatusCode != 409 || !strings.Contains(resp.Body, "provisioning-answered") {
				t.Errorf("different answer: %d %s", resp.StatusCode, resp.Body)
			}
			settled(t, s, id, f.to)
			if r := request(t, s, ev); r.Status != apphook.StatusSucceeded {
				t.Errorf("request %s", r.Status)
			}
		})
	}
}

func TestHookFailureIsCompensated(t *testing.T) {
	s := hookStack(t)
	for i, f := range flows {
		t.Run(f.kind, func(t *testing.T) {
			id := fmt.Sprintf("hook-fail-%d", i)
			st.Clone(t, s, f.example, id)
			opID := start(t, s, f, id)
			op := drive(t, s, id, opID, byAction(
				map[string]any{"status": "failed", "error": "QuotaExceeded", "cause": "no dedicated table left"},
				map[string]any{"status": "succeeded"}))
			if op["status"] != "FAILED" || op["error"] != apphook.ErrorFailed || !strings.Contains(fmt.Sprint(op["cause"]), "QuotaExceeded: no dedicated table left") {
				t.Errorf("operation %v", op)
			}
			if op["needs_attention"] == true {
				t.Errorf("needs attention after a complete compensation: %v", op)
			}
			settled(t, s, id, f.from)
			evs := requests(t, s, id)
			if count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 1 {
				t.Errorf("requests %+v, want one apply and one undo", evs)
			}
			for _, ev := range evs {
				if ev.Action == apphook.ActionUndo {
					want, _ := tenant.DefaultCatalog().Limits(f.from)
					if ev.Limits != want || ev.RequestID == evs[0].RequestID {
						t.Errorf("undo %+v", ev)
					}
				}
			}
		})
	}
}

// TestHookTimeoutAndLateAnswer: the app plane never answers the apply; the wait ends
// (States.HeartbeatTimeout), the flow compensates and asks for the undo once; the
// apply's late answer is a 410 and changes nothing.
func TestHookTimeoutAndLateAnswer(t *testing.T) {
	s := hookStack(t)
	f := flows[0]
	id := "hook-timeout"
	st.Clone(t, s, f.example, id)
	opID := start(t, s, f, id)
	op := drive(t, s, id, opID, byAction(nil, map[string]any{"status": "succeeded"}))
	if op["status"] != "FAILED" || !strings.HasPrefix(fmt.Sprint(op["error"]), "States.") || op["needs_attention"] == true {
		t.Fatalf("operation %v", op)
	}
	tn := settled(t, s, id, f.from)
	evs := requests(t, s, id)
	if count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 1 {
		t.Fatalf("requests %+v", evs)
	}
	apply := evs[0]
	if r := request(t, s, apply); r.Status != apphook.StatusExpired {
		t.Errorf("apply request %s, want expired", r.Status)
	}
	audit := st.Transitions(t, s, id)
	resp := answer(t, s, apply, map[string]any{"status": "succeeded"})
	if resp.StatusCode != 410 || !strings.Contains(resp.Body, "provisioning-expired") {
		t.Errorf("late answer: %d %s", resp.StatusCode, resp.Body)
	}
	after := settled(t, s, id, f.from)
	if after.Version != tn.Version || !slices.Equal(st.Transitions(t, s, id), audit) || operation(t, s, opID)["status"] != "FAILED" {
		t.Errorf("the late answer changed something: version %d -> %d", tn.Version, after.Version)
	}
	if r := request(t, s, apply); r.Status != apphook.StatusExpired {
		t.Errorf("apply request %s after the late answer", r.Status)
	}
	if n := count(requests(t, s, id), apphook.ActionUndo); n != 1 {
		t.Errorf("%d undo requests", n)
	}
}

// TestHookHeartbeatKeepsWaiting: in_progress answers keep the wait alive past the
// heartbeat (2 s), then the answer arrives and the change commits.
func TestHookHeartbeatKeepsWaiting(t *testing.T) {
	s := hookStack(t)
	f := flows[0]
	id := "hook-heartbeat"
	st.Clone(t, s, f.example, id)
	opID := start(t, s, f, id)
	var ev apphook.Event
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if evs := requests(t, s, id); len(evs) > 0 {
			ev = evs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no provisioning request")
		}
	}
	// Heartbeats until 2.3 s after the request: past the 2 s heartbeat timeout, inside
	// the 3 s timeout. Counted from the request, not from when the test saw its event,
	// so a slow event delivery cannot push the answer past the timeout.
	for end := ev.RequestedAt.Add(2300 * time.Millisecond); time.Now().Before(end); time.Sleep(min(600*time.Millisecond, time.Until(end))) {
		if resp := answer(t, s, ev, map[string]any{"status": "in_progress"}); resp.StatusCode != 200 {
			t.Fatalf("heartbeat: %d %s", resp.StatusCode, resp.Body)
		}
	}
	if resp := answer(t, s, ev, map[string]any{"status": "succeeded", "output": map[string]any{"table": "t-" + id}}); resp.StatusCode != 200 {
		t.Fatalf("answer: %d %s", resp.StatusCode, resp.Body)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Errorf("operation %v", op)
	}
	settled(t, s, id, f.to)
}

// TestHookUndoUnansweredNeedsAttention: neither the apply nor the undo is answered;
// the tenant is released on its plan and the operation needs attention for what the
// app plane may still hold.
func TestHookUndoUnansweredNeedsAttention(t *testing.T) {
	s := hookStack(t)
	f := flows[1]
	id := "hook-silent"
	st.Clone(t, s, f.example, id)
	opID := start(t, s, f, id)
	op := drive(t, s, id, opID, byAction(nil, nil))
	inc, _ := op["compensation_incomplete"].([]any)
	if op["status"] != "FAILED" || op["needs_attention"] != true || len(inc) != 1 || inc[0] != "app-provisioning" {
		t.Errorf("operation %v", op)
	}
	settled(t, s, id, f.from)
	if evs := requests(t, s, id); count(evs, apphook.ActionApply) != 1 || count(evs, apphook.ActionUndo) != 1 {
		t.Errorf("requests %+v", evs)
	}
}

// TestHookFaultMatrix fails the hook's step under each fault mode, for the upgrade,
// the downgrade and the reactivation, the app plane answering success to everything:
// the tenant always ends consistent, the apply and
// the undo are each requested at most once, and the operation says what happened.
func TestHookFaultMatrix(t *testing.T) {
	s := hookStack(t)
	step := "PlanAppHookFunction"
	modes := []struct {
		name     string
		spec     lambdasvc.FaultSpec
		recovers bool
	}{
		{"before-once", lambdasvc.FaultSpec{Function: step, Count: 1, ErrorType: "Lambda.ServiceException", Message: "injected before " + step}, true},
		{"before-always", lambdasvc.FaultSpec{Function: step, Count: -1, ErrorType: "InjectedFault", Message: "injected before " + step}, false},
		{"after-once", lambdasvc.FaultSpec{Function: step, After: true, Count: 1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + step}, true},
		{"after-always", lambdasvc.FaultSpec{Function: step, After: true, Count: -1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + step}, false},
	}
	for i, f := range append(slices.Clone(flows), reactivation) {
		for j, m := range modes {
			t.Run(f.kind+"/"+m.name, func(t *testing.T) {
				id := fmt.Sprintf("hook-fm-%d-%d", i, j)
				st.Clone(t, s, f.example, id)
				defer s.Lambda.ClearFaults()
				if err := s.Lambda.Inject(m.spec); err != nil {
					t.Fatal(err)
				}
				opID := start(t, s, f, id)
				op := drive(t, s, id, opID, always(apphook.StatusSucceeded))
				s.Lambda.ClearFaults()
				evs := requests(t, s, id)
				applies, undos := count(evs, apphook.ActionApply), count(evs, apphook.ActionUndo)
				if applies > 1 || undos > 1 {
					t.Errorf("%d apply and %d undo requests, want at most one each", applies, undos)
				}
				switch {
				case m.recovers:
					if op["status"] != "SUCCEEDED" || applies != 1 || undos != 0 {
						t.Errorf("operation %v with %d/%d requests", op["status"], applies, undos)
					}
					ended(t, s, f, id, opID, true)
				case !m.spec.After:
					// The step never ran: nothing was asked, nothing to undo.
					if op["status"] != "FAILED" || op["error"] != "InjectedFault" || op["needs_attention"] == true || applies != 0 || undos != 0 {
						t.Errorf("operation %v with %d/%d requests", op, applies, undos)
					}
					ended(t, s, f, id, opID, false)
				case op["status"] == "SUCCEEDED":
					// Every invoke's answer is lost, but the app plane's answer reached
					// a retried attempt of the Task (recorded while the attempts
					// changed tokens, replayed to the next one): the change commits.
					if applies != 1 || undos != 0 {
						t.Errorf("operation %v with %d/%d requests", op, applies, undos)
					}
					ended(t, s, f, id, opID, true)
				default:
					// Every answer of the step is lost and the attempts ran out before
					// the app plane's answer: the apply was asked once; the undo too,
					// and an undo whose Task kept failing is reported, never hidden.
					// The app plane's answer is never turned into AppProvisioningExpired
					// while the operation runs.
					if op["status"] != "FAILED" || op["error"] != "Sandbox.Timedout" || applies != 1 || undos != 1 {
						t.Errorf("operation %v with %d/%d requests", op, applies, undos)
					}
					ended(t, s, f, id, opID, false)
					var undo apphook.Event
					for _, ev := range evs {
						if ev.Action == apphook.ActionUndo {
							undo = ev
						}
					}
					confirmed := undo.RequestID != "" && request(t, s, undo).Status == apphook.StatusSucceeded
					if att := op["needs_attention"] == true; att == confirmed {
						t.Errorf("needs_attention %v with the undo confirmed %v: %v", att, confirmed, op)
					}
				}
			})
		}
	}
}
