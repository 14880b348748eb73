package webhook_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The tests of this file: a flow the webhook started fails for good. Stripe got its
// 200 and the event is done, so nothing would apply it again: the operation must end
// needing attention (compensation_incomplete ["stripe-event"]), and the tenant must
// wait for an operator.

// markedOperation is the operation the subscription's last applied event started.
func markedOperation(t *testing.T, s *stack.Stack, tenantID string) string {
	t.Helper()
	m, err := s.Store().WebhookMark(context.Background(), "sub_"+tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if m.OperationID == "" {
		t.Fatalf("the order record of sub_%s names no operation: %+v", tenantID, m)
	}
	return m.OperationID
}

// operatorCall sends an operator's API request.
func operatorCall(t *testing.T, s *stack.Stack, method, path, route, id string, body any) (int, string) {
	t.Helper()
	resp := st.Call(t, s, st.Event(t, method, path, route, map[string]string{"id": id}, body, st.Admin))
	return resp.StatusCode, resp.Body
}

// needsStripeAttention checks that op ended FAILED needing attention for the Stripe
// event, and that its tenant waits for it.
func needsStripeAttention(t *testing.T, s *stack.Stack, tenantID, opID string, state tenant.State) {
	t.Helper()
	op := st.WaitDone(t, s, opID)
	tn := st.Tenant(t, s, tenantID)
	t.Logf("operation %s: status %v needs_attention %v compensation_incomplete %v error %v; tenant %s attention %q",
		opID, op["status"], op["needs_attention"], op["compensation_incomplete"], op["error"], tn.State, tn.Attention)
	if op["status"] != "FAILED" || op["needs_attention"] != true || fmt.Sprint(op["compensation_incomplete"]) != "[stripe-event]" {
		t.Errorf("operation %s: status %v needs_attention %v compensation_incomplete %v, want FAILED, true, [stripe-event]",
			opID, op["status"], op["needs_attention"], op["compensation_incomplete"])
	}
	if tn.State != state || tn.Operation != "" || tn.Attention != opID {
		t.Errorf("tenant %s held by %q, attention %q; want %s, free, attention %s", tn.State, tn.Operation, tn.Attention, state, opID)
	}
}

// TestWebhookLostSuspensionNeedsAttention: customer.subscription.deleted starts a
// suspension whose claim fails for good. The operation needs attention, the tenant
// waits for an operator (a new flow is refused with 409), and once the faults are
// gone the operator retry completes the suspension for the cause Stripe gave.
func TestWebhookLostSuspensionNeedsAttention(t *testing.T) {
	s := st.Shared(t)
	id := "wh-lost-cancel"
	st.Clone(t, s, "tenant_acme", id)
	defer s.Lambda.ClearFaults()
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleClaimFunction", Count: -1, ErrorType: "InjectedFault",
		Message: "claim failing for good (injected)"}); err != nil {
		t.Fatal(err)
	}
	code, body := deliverEvent(t, s, stack.StripeEventSpec{Type: "customer.subscription.deleted", TenantID: id, ID: "evt_lost_cancel"})
	if code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("deleted: %d %s", code, body)
	}
	opID := markedOperation(t, s, id)
	needsStripeAttention(t, s, id, opID, tenant.Active)

	code, body = operatorCall(t, s, "POST", "/tenants/"+id+"/suspend", "/tenants/{id}/suspend", id, map[string]any{"reason": "by hand"})
	t.Logf("operator suspension while the tenant waits: %d %s", code, body)
	if code != 409 || !strings.Contains(body, opID) {
		t.Errorf("operator suspension while the tenant waits for %s: %d %s, want 409 naming it", opID, code, body)
	}

	s.Lambda.ClearFaults()
	code, body = operatorCall(t, s, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", opID, nil)
	if code != 202 {
		t.Fatalf("retry: %d %s", code, body)
	}
	op := st.WaitDone(t, s, opID)
	tn := st.Tenant(t, s, id)
	t.Logf("after the retry: operation %v needs_attention %v; tenant %s cause %q reason %q attention %q; audit %v",
		op["status"], op["needs_attention"], tn.State, tn.SuspendCause, tn.SuspendReason, tn.Attention, st.Transitions(t, s, id))
	if op["status"] != "SUCCEEDED" {
		t.Errorf("after the retry: operation %v", op)
	}
	if tn.State != tenant.Suspended || tn.SuspendCause != tenant.CauseCanceled || tn.SuspendReason != tenant.CauseCanceled || tn.Attention != "" || tn.Operation != "" {
		t.Errorf("after the retry: tenant %s cause %q reason %q attention %q operation %q", tn.State, tn.SuspendCause, tn.SuspendReason, tn.Attention, tn.Operation)
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessSuspended {
		t.Errorf("entitlements after the retry: access %q", e.Access)
	}
	if tr := st.Transitions(t, s, id); !slices.Equal(tr, []string{"ACTIVE->SUSPENDED"}) {
		t.Errorf("audit %v, want one ACTIVE->SUSPENDED", tr)
	}
}

// TestWebhookLostLiftNeedsAttention: invoice.paid lifts a nonpayment suspension and
// the reactivation fails for good. The tenant stays SUSPENDED, the operation needs
// attention. An operator retry runs the compensation chain again and cannot apply
// the payment, so the operation still needs attention; the operator resolves it and
// reactivates by hand.
func TestWebhookLostLiftNeedsAttention(t *testing.T) {
	s := st.Shared(t)
	id := "wh-lost-lift"
	st.Clone(t, s, "tenant_acme", id)
	defer s.Lambda.ClearFaults()
	base := time.Now().Add(-time.Minute)
	code, body := deliverEvent(t, s, stack.StripeEventSpec{Type: "customer.subscription.updated", Status: "unpaid", TenantID: id,
		ID: "evt_lost_lift_1", Created: base})
	if code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("unpaid: %d %s", code, body)
	}
	if op := st.WaitDone(t, s, markedOperation(t, s, id)); op["status"] != "SUCCEEDED" {
		t.Fatalf("suspension: %v", op)
	}
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleClaimFunction", Count: -1, ErrorType: "InjectedFault",
		Message: "claim failing for good (injected)"}); err != nil {
		t.Fatal(err)
	}
	code, body = deliverEvent(t, s, stack.StripeEventSpec{Type: "invoice.paid", TenantID: id, ID: "evt_lost_lift_2", Created: base.Add(10 * time.Second)})
	if code != 200 || !strings.Contains(body, "reactivation_started") {
		t.Fatalf("paid: %d %s", code, body)
	}
	opID := markedOperation(t, s, id)
	needsStripeAttention(t, s, id, opID, tenant.Suspended)
	if tn := st.Tenant(t, s, id); tn.SuspendCause != tenant.CauseNonpayment {
		t.Errorf("cause %q, want nonpayment", tn.SuspendCause)
	}

	// A retry runs the compensation chain: nothing applies the payment.
	s.Lambda.ClearFaults()
	if code, body := operatorCall(t, s, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", opID, nil); code != 202 {
		t.Fatalf("retry: %d %s", code, body)
	}
	needsStripeAttention(t, s, id, opID, tenant.Suspended)

	if code, body := operatorCall(t, s, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", opID,
		map[string]any{"action": "resolve", "note": "lifting by hand"}); code != 200 {
		t.Fatalf("resolve: %d %s", code, body)
	}
	plan := st.Tenant(t, s, id).Plan
	resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/reactivate", "/tenants/{id}/reactivate", map[string]string{"id": id},
		map[string]any{"plan": plan}, st.Admin))
	if op := st.WaitDone(t, s, st.OperationID(t, resp)); op["status"] != "SUCCEEDED" {
		t.Fatalf("operator reactivation after the resolve: %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Active || tn.Attention != "" {
		t.Errorf("after the operator's reactivation: %s attention %q", tn.State, tn.Attention)
	}
}

// TestWebhookSuspensionAccessFailingNeedsAttention: customer.subscription.deleted
// suspends (the claim writes SUSPENDED for canceled) and the access step fails for
// good. The tenant is where Stripe's event meant it to be, so only the entitlements
// are incomplete; the operator retry restricts them and the suspension succeeds.
func TestWebhookSuspensionAccessFailingNeedsAttention(t *testing.T) {
	s := st.Shared(t)
	id := "wh-lost-access"
	st.Clone(t, s, "tenant_acme", id)
	defer s.Lambda.ClearFaults()
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleAccessFunction", Count: -1, ErrorType: "InjectedFault",
		Message: "access failing for good (injected)"}); err != nil {
		t.Fatal(err)
	}
	code, body := deliverEvent(t, s, stack.StripeEventSpec{Type: "customer.subscription.deleted", TenantID: id, ID: "evt_lost_access"})
	if code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("deleted: %d %s", code, body)
	}
	opID := markedOperation(t, s, id)
	op := st.WaitDone(t, s, opID)
	tn := st.Tenant(t, s, id)
	if op["status"] != "FAILED" || op["needs_attention"] != true || fmt.Sprint(op["compensation_incomplete"]) != "[entitlements]" {
		t.Errorf("operation %v", op)
	}
	if tn.State != tenant.Suspended || tn.SuspendCause != tenant.CauseCanceled || tn.Attention != opID {
		t.Errorf("tenant %s cause %q attention %q", tn.State, tn.SuspendCause, tn.Attention)
	}
	s.Lambda.ClearFaults()
	if code, body := operatorCall(t, s, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", opID, nil); code != 202 {
		t.Fatalf("retry: %d %s", code, body)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("after the retry: %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended || tn.SuspendCause != tenant.CauseCanceled || tn.Attention != "" {
		t.Errorf("after the retry: %s cause %q attention %q", tn.State, tn.SuspendCause, tn.Attention)
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessSuspended {
		t.Errorf("entitlements after the retry: access %q", e.Access)
	}
}

// TestWebhookEventAfterALostOneWaitsForTheOperator: an unpaid event's suspension fails
// for good, and Stripe then says paid (a newer event). The paid event waits (503)
// while the tenant waits for an operator; the operator's retry suspends for
// nonpayment, and Stripe's next delivery of the paid event lifts it: the newest fact
// wins, as it does without the fault. Judged before the retry, the paid event would
// have been "no change" on the still ACTIVE tenant, and the retry would have left it
// suspended on a paid subscription.
func TestWebhookEventAfterALostOneWaitsForTheOperator(t *testing.T) {
	s := st.Shared(t)
	id := "wh-lost-then-paid"
	st.Clone(t, s, "tenant_acme", id)
	defer s.Lambda.ClearFaults()
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleClaimFunction", Count: -1, ErrorType: "InjectedFault",
		Message: "claim failing for good (injected)"}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Minute)
	code, body := deliverEvent(t, s, stack.StripeEventSpec{Type: "customer.subscription.updated", Status: "unpaid", TenantID: id,
		ID: "evt_lost_then_paid_1", Created: base})
	if code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("unpaid: %d %s", code, body)
	}
	opID := markedOperation(t, s, id)
	needsStripeAttention(t, s, id, opID, tenant.Active)
	s.Lambda.ClearFaults()

	paid := stack.StripeEventSpec{Type: "invoice.paid", TenantID: id, ID: "evt_lost_then_paid_2", Created: base.Add(10 * time.Second)}
	code, body = deliverEvent(t, s, paid)
	t.Logf("paid while the tenant waits for the operator: %d %s", code, body)
	if code != 503 {
		t.Fatalf("paid while the tenant waits for the operator: %d %s, want 503", code, body)
	}
	if code, body := operatorCall(t, s, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", opID, nil); code != 202 {
		t.Fatalf("retry: %d %s", code, body)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("after the retry: %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended || tn.SuspendCause != tenant.CauseNonpayment {
		t.Fatalf("after the retry: %s cause %q", tn.State, tn.SuspendCause)
	}
	code, body = deliverEvent(t, s, paid)
	if code != 200 || !strings.Contains(body, "reactivation_started") {
		t.Fatalf("Stripe's next delivery of paid: %d %s, want a reactivation", code, body)
	}
	settle(t, s, []string{id})
	tn := st.Tenant(t, s, id)
	t.Logf("after paid: %s attention %q; audit %v", tn.State, tn.Attention, st.Transitions(t, s, id))
	if tn.State != tenant.Active || tn.Attention != "" {
		t.Errorf("after paid: %s attention %q, want ACTIVE", tn.State, tn.Attention)
	}
}
