package webhook_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
	"github.com/tenantflow/tenantflow/shared/webhook"
)

// event builds one signed-later payload of fixture typ for tenant id.
func event(t *testing.T, typ, id, evtID string, created time.Time) []byte {
	t.Helper()
	p, err := stack.StripeEvent(testenv.RepoRoot(), stack.StripeEventSpec{Type: typ, TenantID: id, ID: evtID, Created: created})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deliverOnce signs p now and delivers it once.
func deliverOnce(t *testing.T, s *stack.Stack, p []byte) (int, string) {
	t.Helper()
	resp, err := deliver(s, p, stack.SignStripeEvent(p, stack.StripeWebhookTestSecret, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Body
}

// TestWebhookConcurrentDeliveriesKeepOrder: a subscription goes unpaid (created t1)
// and its invoice is paid a moment later (t2 > t1); Stripe delivers both at the same
// moment. 20 rounds, each on its own tenant, the two deliveries released together by
// one channel, the unpaid launched first in even rounds and the paid in odd ones;
// each delivery is repeated on 503 as Stripe does. Whatever interleaving the handler
// sees, the newer fact (paid) must win: every tenant ends ACTIVE, never suspended for
// nonpayment after its invoice was paid.
func TestWebhookConcurrentDeliveriesKeepOrder(t *testing.T) {
	s := st.Shared(t)
	const rounds, batch = 20, 5
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	ids := make([]string, rounds)
	for r := range rounds {
		ids[r] = fmt.Sprintf("wh-race-%02d", r)
		st.Clone(t, s, "tenant_acme", ids[r])
	}
	deadline := time.Now().Add(90 * time.Second)
	var mu sync.Mutex
	var errs []error
	for first := 0; first < rounds; first += batch {
		var wg sync.WaitGroup
		for r := first; r < first+batch; r++ {
			unpaid := event(t, "customer.subscription.updated-unpaid", ids[r], fmt.Sprintf("evt_race_%02d_unpaid", r), base.Add(10*time.Second))
			paid := event(t, "invoice.paid", ids[r], fmt.Sprintf("evt_race_%02d_paid", r), base.Add(20*time.Second))
			order := [][]byte{unpaid, paid}
			if r%2 == 1 {
				order = [][]byte{paid, unpaid}
			}
			release := make(chan struct{})
			for _, p := range order {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-release
					if _, _, err := run(s, [][]byte{p}, true, deadline); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("round %d %s: %w", r, eventID(p), err))
						mu.Unlock()
					}
				}()
			}
			close(release)
		}
		wg.Wait()
	}
	for _, err := range errs {
		t.Error(err)
	}
	settle(t, s, ids)
	bad, via := 0, 0
	for r, id := range ids {
		tn := st.Tenant(t, s, id)
		first := "unpaid"
		if r%2 == 1 {
			first = "paid"
		}
		tr := st.Transitions(t, s, id)
		if tn.State != tenant.Active || tn.Attention != "" {
			bad++
			t.Errorf("round %d (%s launched first): tenant ends %s (suspend reason %q) after its invoice was paid; transitions %v",
				r, first, tn.State, tn.SuspendReason, tr)
			continue
		}
		switch {
		case slices.Equal(tr, []string{"ACTIVE->SUSPENDED", "SUSPENDED->REACTIVATING", "REACTIVATING->ACTIVE"}):
			via++ // the unpaid was applied first, then the paid lifted it
		case len(tr) != 0:
			t.Errorf("round %d: transitions %v", r, tr)
		}
	}
	t.Logf("%d rounds, %d ended suspended after the paid event; %d went through a suspension lifted by the paid event, %d had the unpaid found stale",
		rounds, bad, via, rounds-bad-via)
}

// TestWebhookCurrentAPIVersion: a webhook endpoint on Stripe's 2025 API versions
// (2025-03-31.basil and later) sends invoices that name their subscription only under
// parent.subscription_details, and subscriptions whose billing period lives on their
// items. An unpaid subscription of that shape suspends the tenant for nonpayment and
// the paid invoice of that shape lifts the suspension.
func TestWebhookCurrentAPIVersion(t *testing.T) {
	s := st.Shared(t)
	id := "wh-basil"
	st.Clone(t, s, "tenant_acme", id)
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	code, body := deliverOnce(t, s, event(t, "customer.subscription.updated-unpaid-2025", id, "evt_basil_unpaid", base))
	if code != 200 || !strings.Contains(body, `"suspension_started"`) {
		t.Fatalf("unpaid (2025 shape): %d %s", code, body)
	}
	settle(t, s, []string{id})
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended || tn.SuspendReason != "nonpayment" {
		t.Fatalf("after unpaid: %s (%s)", tn.State, tn.SuspendReason)
	}
	code, body = deliverOnce(t, s, event(t, "invoice.paid-2025", id, "evt_basil_paid", base.Add(time.Second)))
	t.Logf("invoice.paid (2025 shape): %d %s", code, body)
	if code != 200 || !strings.Contains(body, `"reactivation_started"`) {
		t.Fatalf("invoice.paid (2025 shape): %d %s, want 200 reactivation_started", code, body)
	}
	settle(t, s, []string{id})
	if tn := st.Tenant(t, s, id); tn.State != tenant.Active || tn.SuspendReason != "" {
		t.Fatalf("after invoice.paid: %s (%s)", tn.State, tn.SuspendReason)
	}
}

// TestWebhookDuringDeletionWaitsForItsOutcome: an unpaid event arrives while a
// deletion holds the tenant (DELETING). The deletion may still roll back, so the event
// is answered 503 (Stripe retries) rather than "no change": once the deletion has
// rolled back to ACTIVE, Stripe's retry suspends the tenant for nonpayment.
func TestWebhookDuringDeletionWaitsForItsOutcome(t *testing.T) {
	s := st.Shared(t)
	id := "wh-deleting"
	st.Clone(t, s, "tenant_acme", id)
	defer s.Lambda.ClearFaults()
	// The deletion fails at its access step and is compensated, but its release keeps
	// failing: the tenant stays DELETING, held by the deletion, until the reconciler
	// releases it.
	for _, fn := range []string{"LifecycleAccessFunction", "LifecycleReleaseFunction"} {
		if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault"}); err != nil {
			t.Fatal(err)
		}
	}
	del := st.Call(t, s, st.Event(t, "DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil, st.Admin))
	opID := st.OperationID(t, del)
	waitExecutionsEnded(t, s)
	if tn := st.Tenant(t, s, id); tn.State != tenant.Deleting || tn.Operation != opID {
		t.Fatalf("deletion did not stay held: %s held by %q", tn.State, tn.Operation)
	}
	unpaid := event(t, "customer.subscription.updated-unpaid", id, "evt_deleting_unpaid", time.Now().Add(-time.Minute))
	code, body := deliverOnce(t, s, unpaid)
	t.Logf("unpaid during DELETING: %d %s", code, body)
	if code != 503 {
		t.Errorf("unpaid during DELETING: %d %s, want 503 (the deletion may roll back)", code, body)
	}
	s.Lambda.ClearFaults()
	var rec flow.ReconcileResult
	st.Scheduled(t, s, "ReconcileFunction", time.Now().UTC(), &rec)
	if tn := st.Tenant(t, s, id); tn.State != tenant.Active || tn.Operation != "" {
		t.Fatalf("reconciler did not roll the deletion back: %s held by %q (%+v)", tn.State, tn.Operation, rec)
	}
	// Stripe's retry of the same event.
	code, body = deliverOnce(t, s, unpaid)
	t.Logf("retry after the rollback: %d %s", code, body)
	settle(t, s, []string{id})
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended || tn.SuspendReason != "nonpayment" {
		t.Fatalf("after the rolled-back deletion and the retried unpaid event: %s (%q); the event was lost", tn.State, tn.SuspendReason)
	}
}

// waitExecutionsEnded waits until no execution of any state machine runs.
func waitExecutionsEnded(t *testing.T, s *stack.Stack) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if runningExecutions(t, s) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("executions still running")
}

func runningExecutions(t *testing.T, s *stack.Stack) int {
	t.Helper()
	n := 0
	for _, arn := range s.StateMachines {
		out, err := s.SFNClient().ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn), StatusFilter: sfntypes.ExecutionStatusRunning})
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Executions)
	}
	return n
}

// putMark writes the order record a delivery of event evtID left when it died after
// accepting the event with operation id opID reserved: its lease has run out.
func putMark(t *testing.T, s *stack.Stack, sub, tenantID, evtID string, created time.Time, opID string) {
	t.Helper()
	item := map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "WEBHOOKSUB#" + sub}, "sk": &ddbtypes.AttributeValueMemberS{Value: "ORDER"},
		"last_created": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(created.Unix())}, "last_event": &ddbtypes.AttributeValueMemberS{Value: evtID},
		"canceled": &ddbtypes.AttributeValueMemberBOOL{Value: false}, "tenant_id": &ddbtypes.AttributeValueMemberS{Value: tenantID},
		"pending_event": &ddbtypes.AttributeValueMemberS{Value: evtID}, "pending_op": &ddbtypes.AttributeValueMemberS{Value: opID},
		"lease_until": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(time.Now().Add(-time.Second).Unix())},
		"version":     &ddbtypes.AttributeValueMemberN{Value: "1"},
	}
	if _, err := s.DynamoDB().PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(s.TenantsTable), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookAfterADeadDelivery: a delivery accepted its event, reserved the id of
// the flow it may start, then died (its lease ran out) — before starting the flow,
// or after. Stripe's retry of the event starts the flow under the reserved id, or
// finds the flow already started and starts no second one; a newer event of the
// subscription waits (503) while the dead delivery's flow may still claim the tenant.
func TestWebhookAfterADeadDelivery(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	created := time.Now().Add(-time.Minute).Truncate(time.Second)

	t.Run("died before starting its flow", func(t *testing.T) {
		id := "wh-dead-before"
		st.Clone(t, s, "tenant_acme", id)
		reserved := flow.NewOperationID()
		putMark(t, s, "sub_"+id, id, "evt_dead_before", created, reserved)
		code, body := deliverOnce(t, s, event(t, "customer.subscription.updated-unpaid", id, "evt_dead_before", created))
		if code != 200 || !strings.Contains(body, "suspension_started") {
			t.Fatalf("retry: %d %s", code, body)
		}
		settle(t, s, []string{id})
		op, err := s.Store().GetOperation(ctx, reserved)
		if err != nil || op.Kind != tenant.KindSuspension || op.Status != tenant.OpSucceeded {
			t.Fatalf("the flow did not run under the reserved id %s: %+v %v", reserved, op, err)
		}
	})

	t.Run("died after starting its flow", func(t *testing.T) {
		id := "wh-dead-after"
		st.Clone(t, s, "tenant_acme", id)
		// The flow the dead delivery started (through the API here: same flow).
		resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/suspend", "/tenants/{id}/suspend", map[string]string{"id": id},
			map[string]any{"reason": "nonpayment"}, st.Admin))
		reserved := st.OperationID(t, resp)
		putMark(t, s, "sub_"+id, id, "evt_dead_after", created, reserved)
		code, body := deliverOnce(t, s, event(t, "customer.subscription.updated-unpaid", id, "evt_dead_after", created))
		if code != 200 || !strings.Contains(body, "suspension_started") {
			t.Fatalf("retry: %d %s", code, body)
		}
		settle(t, s, []string{id})
		if tr := st.Transitions(t, s, id); !slices.Equal(tr, []string{"ACTIVE->SUSPENDED"}) {
			t.Fatalf("transitions %v: a second flow was started", tr)
		}
	})

	t.Run("a newer event waits for the dead delivery's flow", func(t *testing.T) {
		id := "wh-dead-newer"
		st.Clone(t, s, "tenant_acme", id)
		reserved := flow.NewOperationID()
		// The dead delivery recorded its flow, whose execution has not claimed the
		// tenant yet.
		if _, err := s.Store().CreateOperation(ctx, &tenant.Operation{ID: reserved, TenantID: id, Kind: tenant.KindSuspension,
			Status: tenant.OpRunning, FromPlan: tenant.Starter, Reason: "nonpayment"}); err != nil {
			t.Fatal(err)
		}
		putMark(t, s, "sub_"+id, id, "evt_dead_unpaid", created, reserved)
		paid := event(t, "invoice.paid", id, "evt_dead_paid", created.Add(time.Second))
		code, body := deliverOnce(t, s, paid)
		t.Logf("newer event while the dead delivery's flow is unclaimed: %d %s", code, body)
		if code != 503 {
			t.Fatalf("newer event: %d %s, want 503", code, body)
		}
		if err := s.Store().SetOperationStatus(ctx, reserved, tenant.OpFailed, "ExecutionEnded", "test: the execution never started"); err != nil {
			t.Fatal(err)
		}
		code, body = deliverOnce(t, s, paid)
		if code != 200 || !strings.Contains(body, "no_change") {
			t.Fatalf("newer event after the flow ended: %d %s", code, body)
		}
		// The older unpaid is now stale.
		code, body = deliverOnce(t, s, event(t, "customer.subscription.updated-unpaid", id, "evt_dead_unpaid", created))
		if code != 200 || !strings.Contains(body, webhook.OutcomeStale) {
			t.Fatalf("older event after the newer one: %d %s", code, body)
		}
	})
}
