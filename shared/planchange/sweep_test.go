package planchange_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func sweepAt(t *testing.T, s *stack.Stack, at time.Time) planchange.SweepResult {
	t.Helper()
	var out planchange.SweepResult
	st.Scheduled(t, s, "DowngradeSweepFunction", at, &out)
	return out
}

// waitNoExecutions waits until the downgrade state machine runs nothing.
func waitNoExecutions(t *testing.T, s *stack.Stack) {
	t.Helper()
	arn := s.StateMachines["DowngradeStateMachine"]
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := s.SFNClient().ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn), StatusFilter: sfntypes.ExecutionStatusRunning})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Executions) == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatal("downgrade executions still running")
}

// TestSweepStartsEveryStartableChange: 1,000 due pending changes, the oldest 600 of
// which cannot start (300 suspended tenants, 300 whose operation is gone), and one
// whose execution cannot be started (its name is too long for Step Functions). One
// sweep reads each entry once, clears the 600 with a reason, starts all 399 others
// despite the failing one, and a later sweep reads only the entry that failed.
func TestSweepStartsEveryStartableChange(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	ts := s.Store()
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	now := base.Add(24 * time.Hour)
	var startable []string
	badOp := "op_" + strings.Repeat("x", 80)
	type seedItem struct {
		t  *tenant.Tenant
		op *tenant.Operation
	}
	var items []seedItem
	for i := range 1000 {
		id := fmt.Sprintf("sweep-%04d", i)
		opID := fmt.Sprintf("op_sweep_%04d", i)
		state, hasOp := tenant.Active, true
		switch {
		case i < 300:
			state = tenant.Suspended
		case i < 600:
			hasOp = false
		case i == 700:
			opID = badOp
		default:
			startable = append(startable, opID)
		}
		eff := base.Add(time.Duration(i) * time.Second)
		it := seedItem{t: &tenant.Tenant{ID: id, Name: id, Plan: tenant.Starter, State: state, Usage: tenant.Usage{Users: 5},
			PendingChange: &tenant.PendingChange{Plan: tenant.Free, EffectiveAt: eff, OperationID: opID}}}
		if hasOp {
			it.op = &tenant.Operation{ID: opID, TenantID: id, Kind: tenant.KindDowngrade, Status: tenant.OpScheduled,
				FromPlan: tenant.Starter, ToPlan: tenant.Free, AtPeriodEnd: true, EffectiveAt: &eff}
		}
		items = append(items, it)
	}
	seeded := time.Now()
	var tenants []*tenant.Tenant
	var ops []*tenant.Operation
	for _, it := range items {
		tenants = append(tenants, it.t)
		if it.op != nil {
			ops = append(ops, it.op)
		}
	}
	if err := s.Load(ctx, tenants, ops); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded 1,000 due pending changes in %v", time.Since(seeded).Round(time.Millisecond))
	// Starting is what is measured here: every started execution ends at once (its
	// first and its release step fail before they run), so the test does not wait
	// for 399 downgrades; those tenants keep their pending change.
	defer s.Lambda.ClearFaults()
	for _, fn := range []string{"PlanValidateFunction", "PlanReleaseFunction"} {
		if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault"}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	res := sweepAt(t, s, now)
	took := time.Since(start)
	slices.Sort(res.Started)
	if res.Read != 1000 || len(res.Cleared) != 600 || !slices.Equal(res.Started, startable) || !slices.Equal(res.Failed, []string{"sweep-0700"}) {
		t.Fatalf("sweep read %d, cleared %d, started %d, failed %v", res.Read, len(res.Cleared), len(res.Started), res.Failed)
	}
	t.Logf("one sweep: read %d, cleared %d, started %d, failed %d in %v", res.Read, len(res.Cleared), len(res.Started), len(res.Failed), took.Round(time.Millisecond))
	suspended := st.Tenant(t, s, "sweep-0000")
	op, _ := ts.GetOperation(ctx, "op_sweep_0000")
	if suspended.PendingChange != nil || op.Status != tenant.OpFailed || op.Error != "PendingChangeNotStartable" || !strings.Contains(op.Cause, "SUSPENDED") {
		t.Fatalf("suspended tenant's change: pending %+v, operation %+v", suspended.PendingChange, op)
	}
	waitNoExecutions(t, s)
	// The cleared entries left the index; the others are read again and their start
	// is idempotent (same execution names: nothing new runs).
	again := sweepAt(t, s, now.Add(time.Minute))
	if again.Read != 400 || !slices.Equal(again.Failed, []string{"sweep-0700"}) || len(again.Started) != 399 || len(again.Cleared) != 0 {
		t.Fatalf("next sweep: read %d, started %d, cleared %d, failed %v", again.Read, len(again.Started), len(again.Cleared), again.Failed)
	}
	n := 0
	pages := sfn.NewListExecutionsPaginator(s.SFNClient(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(s.StateMachines["DowngradeStateMachine"])})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Executions {
			if strings.HasPrefix(aws.ToString(e.Name), "op_sweep_") {
				n++
			}
		}
	}
	if n != 399 {
		t.Fatalf("%d downgrade executions after two sweeps, want 399", n)
	}
}

// subscriptionJSON is a Stripe subscription on price with the given billing period.
func subscriptionJSON(id, price string, start, end time.Time) string {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "subscription", "customer": "cus_" + id, "status": "active",
		"current_period_start": start.Unix(), "current_period_end": end.Unix(),
		"items": map[string]any{"object": "list", "data": []any{map[string]any{
			"id": "si_" + id, "object": "subscription_item", "quantity": 1,
			"price": map[string]any{"id": price, "object": "price"},
		}}},
	})
	return string(b)
}

// TestPeriodEndFollowsTheRealBillingPeriod: a period-end downgrade takes effect at the
// subscription's current period end as Stripe reports it when the change is
// scheduled (not the stale one stored at creation); when the sweep finds the period
// still running past that time (it was extended), the change moves to the new end;
// once the period has renewed, the change runs and the price changes without proration.
func TestPeriodEndFollowsTheRealBillingPeriod(t *testing.T) {
	s := st.Shared(t)
	id := "period-truth"
	st.Clone(t, s, "tenant_acme", id)
	sub := "sub_" + id
	start := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	end := start.Add(30 * 24 * time.Hour)
	s.Stripe.StubNext(1, "GET /v1/subscriptions/"+sub, 200, subscriptionJSON(sub, "price_starter", start, end))
	opID := st.OperationID(t, planChange(t, s, tenant.KindDowngrade, id, tenant.Free, true))
	tn := st.Tenant(t, s, id)
	if tn.PendingChange == nil || !tn.PendingChange.EffectiveAt.Equal(end) || tn.Billing.CurrentPeriodEnd == nil || !tn.Billing.CurrentPeriodEnd.Equal(end) {
		t.Fatalf("pending change %+v, period end %v; want both at Stripe's period end %v", tn.PendingChange, tn.Billing.CurrentPeriodEnd, end)
	}
	// The sweep after the recorded end finds the period extended by a week: it waits.
	extended := end.Add(7 * 24 * time.Hour)
	s.Stripe.StubNext(1, "GET /v1/subscriptions/"+sub, 200, subscriptionJSON(sub, "price_starter", start, extended))
	if r := sweepAt(t, s, end.Add(time.Minute)); !slices.Equal(r.Rescheduled, []string{id}) || len(r.Started) != 0 {
		t.Fatalf("sweep on an extended period: %+v", r)
	}
	if tn := st.Tenant(t, s, id); !tn.PendingChange.EffectiveAt.Equal(extended) || tn.Plan != tenant.Starter {
		t.Fatalf("after reschedule: %+v", tn.PendingChange)
	}
	// After the renewal the change runs, at the boundary: no proration.
	s.Stripe.StubNext(1, "GET /v1/subscriptions/"+sub, 200, subscriptionJSON(sub, "price_starter", extended, extended.Add(30*24*time.Hour)))
	if r := sweepAt(t, s, extended.Add(time.Minute)); !slices.Equal(r.Started, []string{opID}) {
		t.Fatalf("sweep after the renewal: %+v", r)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	reqs := s.Stripe.RequestsTo("POST /v1/subscriptions/" + sub)
	if len(reqs) != 1 || reqs[0].Form.Get("proration_behavior") != "none" || reqs[0].Form.Get("items[0][price]") != "price_free" {
		t.Fatalf("price change requests %+v", reqs)
	}
}
