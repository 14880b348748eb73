package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// deliverEvent builds, signs and delivers one event for tenant id.
func deliverEvent(t *testing.T, s *stack.Stack, spec stack.StripeEventSpec) (int, string) {
	t.Helper()
	p, err := stack.StripeEvent(testenv.RepoRoot(), spec)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := deliver(s, p, stack.SignStripeEvent(p, stack.StripeWebhookTestSecret, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Body
}

// TestWebhookNeverWaitsOnAStoppedSuspension: an unpaid event starts a suspension whose
// execution is stopped before it claims the tenant. After one reconcile run the
// operation has ended, needing attention (Stripe's event is lost otherwise): the next
// event of the subscription waits for the operator (503), and once the operator has
// resolved it, it is applied at once instead of waiting until the mark expires.
func TestWebhookNeverWaitsOnAStoppedSuspension(t *testing.T) {
	s := st.Shared(t)
	id := "wh-stopped"
	st.Clone(t, s, "tenant_acme", id)
	defer s.Lambda.ClearFaults()
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleClaimFunction", Count: 1, Delay: 3 * time.Second,
		ErrorType: "Lambda.ServiceException", Message: "slow claim (injected)"}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Minute)
	if code, body := deliverEvent(t, s, stack.StripeEventSpec{Type: "customer.subscription.updated", Status: "unpaid", TenantID: id,
		ID: "evt_stopped_1", Created: base}); code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("first unpaid: %d %s", code, body)
	}
	running := st.RunningOperations(t, s, id)
	if len(running) != 1 {
		t.Fatalf("operations running after the first event: %v", running)
	}
	opID := running[0]
	if _, err := s.SFNClient().StopExecution(context.Background(), &sfn.StopExecutionInput{
		ExecutionArn: aws.String(st.ExecutionARN(s, "SuspensionStateMachine", opID))}); err != nil {
		t.Fatal(err)
	}
	if got := st.WaitExecutionEnded(t, s, "SuspensionStateMachine", opID); got != "ABORTED" {
		t.Fatalf("execution %s", got)
	}
	time.Sleep(3500 * time.Millisecond) // the delayed claim invocation has answered (faulted)
	st.Reconcile(t, s, time.Now().UTC().Add(5*time.Minute))
	needsStripeAttention(t, s, id, opID, tenant.Active)
	next := stack.StripeEventSpec{Type: "customer.subscription.updated", Status: "unpaid", TenantID: id,
		ID: "evt_stopped_2", Created: base.Add(10 * time.Second)}
	if code, body := deliverEvent(t, s, next); code != 503 || !strings.Contains(body, "needs attention") {
		t.Fatalf("the next unpaid while the lost one waits for an operator: %d %s, want 503", code, body)
	}
	if code, body := operatorCall(t, s, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", opID,
		map[string]any{"action": "resolve", "note": "Stripe's next event suspends"}); code != 200 {
		t.Fatalf("resolve: %d %s", code, body)
	}
	code, body := deliverEvent(t, s, next)
	if code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("the next unpaid after one reconcile run: %d %s, want a new suspension", code, body)
	}
	settle(t, s, []string{id})
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended {
		t.Fatalf("after the second unpaid: %s", tn.State)
	}
}

// TestWebhookAsksStepFunctionsAboutTheMarkedOperation: the subscription's mark names
// an operation whose record still says RUNNING although its execution never started
// (long ago), while the tenant is free. The webhook asks Step Functions, as GET
// /operations/{id} does, and applies the event instead of waiting for it.
func TestWebhookAsksStepFunctionsAboutTheMarkedOperation(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	id := "wh-dead-mark"
	st.Clone(t, s, "tenant_acme", id)
	past := store.New(s.DynamoDB(), s.TenantsTable, func() time.Time { return time.Now().Add(-10 * time.Minute) })
	dead := &tenant.Operation{ID: "op_dead_mark_suspension", TenantID: id, Kind: tenant.KindSuspension, Status: tenant.OpRunning,
		FromPlan: tenant.Starter, Reason: "nonpayment", RequestedBy: "system:stripe-webhook"}
	if _, err := past.CreateOperation(ctx, dead); err != nil {
		t.Fatal(err)
	}
	mark := store.WebhookMark{Created: time.Now().Add(-time.Hour).Unix(), EventID: "evt_dead_mark_0", OperationID: dead.ID}
	if _, err := s.Store().AcceptWebhookMark(ctx, "sub_"+id, id, 0, mark); err != nil {
		t.Fatal(err)
	}
	code, body := deliverEvent(t, s, stack.StripeEventSpec{Type: "customer.subscription.updated", Status: "unpaid", TenantID: id, ID: "evt_dead_mark_1"})
	if code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("unpaid while the mark names an operation without an execution: %d %s, want a new suspension", code, body)
	}
	settle(t, s, []string{id})
}
