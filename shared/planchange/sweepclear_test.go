package planchange_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestSweepLeavesAChangeOfAHeldTenant: a due change whose tenant another operation
// holds (a deletion running) is left for a later sweep, not cleared: that operation
// may still roll back and hand the tenant back with its change. The scheduled
// operation stays SCHEDULED and the tenant keeps its change.
func TestSweepLeavesAChangeOfAHeldTenant(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	base := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	id, opID := "held-pending", "op_held_pending"
	tn := &tenant.Tenant{ID: id, Name: id, Plan: tenant.Starter, State: tenant.Deleting, Operation: "op_deletion_running",
		PendingChange: &tenant.PendingChange{Plan: tenant.Free, EffectiveAt: base, OperationID: opID}}
	op := &tenant.Operation{ID: opID, TenantID: id, Kind: tenant.KindDowngrade, Status: tenant.OpScheduled,
		FromPlan: tenant.Starter, ToPlan: tenant.Free, AtPeriodEnd: true, EffectiveAt: &base}
	if err := s.Load(ctx, []*tenant.Tenant{tn}, []*tenant.Operation{op}); err != nil {
		t.Fatal(err)
	}
	r := sweepAt(t, s, base.Add(time.Hour))
	t.Logf("sweep: %+v", r)
	got := st.Tenant(t, s, id)
	sched, err := s.Store().GetOperation(ctx, opID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PendingChange == nil || sched.Status != tenant.OpScheduled {
		t.Fatalf("the change of a held tenant was cleared: pending %+v, operation %s %s (%s)", got.PendingChange, sched.Status, sched.Error, sched.Cause)
	}
}

// TestSweepDecidesOnAFreshRead: 100 due changes of tenants that wait for an operator
// (attention set). Once the sweep has read its page and cleared the first of them,
// operators resolve the others, the last first. A change may only be cleared
// while its tenant still waits: no tenant's audit trail may show the clear after the
// resolve (the sweep decided on the index copy it had read before).
func TestSweepDecidesOnAFreshRead(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	ts := s.Store()
	base := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	const n = 100
	var tenants []*tenant.Tenant
	var ops []*tenant.Operation
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("fresh-%03d", i)
		eff := base.Add(time.Duration(i) * time.Second)
		opID := fmt.Sprintf("op_fresh_%03d", i)
		tenants = append(tenants, &tenant.Tenant{ID: ids[i], Name: ids[i], Plan: tenant.Starter, State: tenant.Active,
			Attention: fmt.Sprintf("op_attention_%03d", i), PendingChange: &tenant.PendingChange{Plan: tenant.Free, EffectiveAt: eff, OperationID: opID}})
		ops = append(ops, &tenant.Operation{ID: opID, TenantID: ids[i], Kind: tenant.KindDowngrade, Status: tenant.OpScheduled,
			FromPlan: tenant.Starter, ToPlan: tenant.Free, AtPeriodEnd: true, EffectiveAt: &eff})
	}
	if err := s.Load(ctx, tenants, ops); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sweepAt(t, s, base.Add(time.Hour))
	}()
	// Wait until the sweep has read its page (the first tenant's change is cleared),
	// then resolve every tenant, the last first.
	deadline := time.Now().Add(60 * time.Second)
	for st.Tenant(t, s, ids[0]).PendingChange != nil {
		if time.Now().After(deadline) {
			t.Fatal("the sweep cleared nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Four operators at once, so they overtake the sweep's eight workers.
	by := store.Actor{Who: "operator", Reason: "resolved by operator: fixed by hand"}
	next := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				for {
					cur, err := ts.GetTenant(ctx, id)
					if err == nil {
						_, err = ts.Update(ctx, id, cur.Version, func(x *tenant.Tenant) { x.Attention = "" }, by)
					}
					var ce *tenant.ConflictError
					if errors.As(err, &ce) {
						continue // the sweep wrote it meanwhile: read again
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					break
				}
			}
		}()
	}
	for i := n - 1; i > 0; i-- {
		next <- ids[i]
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	<-done
	violations, kept := 0, 0
	for _, id := range ids[1:] {
		trail, err := ts.Audit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var resolved, cleared int64
		for _, a := range trail {
			switch {
			case strings.HasPrefix(a.Reason, "resolved by operator"):
				resolved = a.Version
			case a.Who == "system:downgrade-sweep":
				cleared = a.Version
			}
		}
		if cleared > resolved && resolved > 0 {
			violations++
			if violations <= 5 {
				t.Errorf("%s: change cleared (audit v%d) after the tenant was resolved (v%d)", id, cleared, resolved)
			}
		}
		if st.Tenant(t, s, id).PendingChange != nil {
			kept++
		}
	}
	t.Logf("%d tenants: %d changes cleared after their tenant was resolved, %d kept for the next sweep", n, violations, kept)
	if violations > 0 {
		t.Fatalf("%d changes cleared on a stale read", violations)
	}
	if kept == 0 {
		t.Fatal("no tenant was resolved before the sweep reached it: the test did not race")
	}
}
