package purge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestPurgeAtScale: of N tenants, Due are due, one of them with Items data items. The
// purge of the big tenant is killed midway (its delete step fails for good after two
// chunks); the next sweep reads exactly the due tenants (not N), skips nothing, and
// purges them all, the big one certified with what existed before the first attempt;
// a sweep while they run skips them; a neighbour's sources are unchanged.
// TENANTFLOW_PURGE_SCALE=full runs the figures.
func TestPurgeAtScale(t *testing.T) {
	sc := purgeScale()
	s := st.SharedWith(t, stackOptions())
	ctx := context.Background()
	now := time.Now().UTC()
	seedStart := time.Now()

	big := newSample(t, s, "scale-big", now.Add(-3*time.Hour), sc.Items, 25)
	due := []*sample{big}
	for i := 1; i < sc.Due; i++ {
		due = append(due, newSample(t, s, fmt.Sprintf("scale-due-%02d", i), now.Add(-time.Hour-time.Duration(i)*time.Minute), 20, 1))
	}
	neighbour := newSample(t, s, "scale-neighbour", now.Add(5*24*time.Hour), 50, 2)
	rest := sc.Tenants - len(due) - 1 - len(stack.Examples)
	seedTenants(t, s, rest, now)
	before := map[string]counts{}
	for _, sm := range due {
		before[sm.ID] = sourceCounts(t, s, sm)
	}
	neighbourBefore := sourceCounts(t, s, neighbour)
	t.Logf("seeded %d tenants (%d due, big tenant %d data items) in %s", sc.Tenants, sc.Due, sc.Items, time.Since(seedStart).Round(time.Second))

	// Kill the big tenant's purge midway: its first two delete chunks pass, every
	// later delete call fails, the retries run out and the purge is released.
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "PurgeDeleteFunction", Skip: 2, Count: -1, ErrorType: "InjectedFault", Message: "purge killed midway"}); err != nil {
		t.Fatal(err)
	}
	r := sweep(t, s, now.Add(-2*time.Hour))
	if r.Read != 1 || len(r.Started) != 1 {
		t.Fatalf("kill-phase sweep %+v, want the big tenant only", r)
	}
	if st := waitExecution(t, s, r.Started[0], 5*time.Minute); st != sfntypes.ExecutionStatusFailed {
		t.Fatalf("killed purge ended %s", st)
	}
	s.Lambda.ClearFaults()
	t.Logf("kill phase done after %s", time.Since(seedStart).Round(time.Second))
	left := sourceCounts(t, s, big)
	if want := int64(sc.Items - 2*sc.Chunk); left[tenant.SourceTenantData] != want {
		t.Fatalf("after the kill the big tenant holds %v, want %d data items", left, want)
	}
	if tn, _ := s.Store().GetTenant(ctx, big.ID); tn.State != tenant.Deleted || tn.Operation != "" || tn.PurgeInventory == nil {
		t.Fatalf("killed purge left %+v", tn)
	}

	start := time.Now()
	r = sweep(t, s, now)
	sweepTook := time.Since(start)
	if r.Read != sc.Due || len(r.Started) != sc.Due || len(r.Failed) != 0 || len(r.Skipped) != 0 {
		t.Fatalf("sweep %+v, want %d read and started", r, sc.Due)
	}
	// While they run, a sweep leaves every claimed tenant alone.
	claimed := waitClaimed(t, s, due)
	if again := sweep(t, s, now); len(again.Started) != 0 || len(again.Failed) != 0 || len(again.Skipped) != again.Read ||
		(claimed[big.ID] && !slices.Contains(again.Skipped, big.ID)) {
		t.Errorf("sweep during the purges %+v, want every due tenant skipped", again)
	}
	byTenant := map[string]string{}
	for _, opID := range r.Started {
		op, err := s.Store().GetOperation(ctx, opID)
		if err != nil {
			t.Fatal(err)
		}
		byTenant[op.TenantID] = opID
	}
	for _, sm := range due {
		if st := waitExecution(t, s, byTenant[sm.ID], 10*time.Minute); st != sfntypes.ExecutionStatusSucceeded {
			t.Fatalf("purge of %s ended %s", sm.ID, st)
		}
	}
	took := time.Since(start)
	var deleted int64
	for _, sm := range due {
		c := checkPurged(t, s, sm, byTenant[sm.ID], before[sm.ID])
		for _, src := range tenant.Sources {
			deleted += c.Sources[src].ItemsDeleted
		}
		if sm == big && c.Sources[tenant.SourceTenantData].ItemsDeleted != int64(sc.Items) {
			t.Errorf("big tenant certified %d data items, had %d before the first attempt", c.Sources[tenant.SourceTenantData].ItemsDeleted, sc.Items)
		}
	}
	if got := sourceCounts(t, s, neighbour); !sameCounts(got, neighbourBefore) {
		t.Errorf("neighbour %v, was %v", got, neighbourBefore)
	}
	msg := fmt.Sprintf("purge scale: %d tenants, %d due, sweep read %d (in %s), big tenant %d items (chunk %d, killed after %d, %d left), %d items deleted and certified across the due tenants, all purged in %s",
		sc.Tenants, sc.Due, r.Read, sweepTook.Round(time.Millisecond), sc.Items, sc.Chunk, 2*sc.Chunk, left[tenant.SourceTenantData], deleted, took.Round(time.Millisecond))
	t.Log(msg)
	fmt.Println(msg)
}

// seedTenants writes n tenants that are not due: half DELETED with a retention end in
// the future (so they are in the Due index, just not due yet), half ACTIVE.
func seedTenants(t *testing.T, s *stack.Stack, n int, now time.Time) {
	t.Helper()
	st := s.Store()
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				tn := &tenant.Tenant{ID: fmt.Sprintf("bulk-%05d", i), Name: fmt.Sprintf("Bulk %d", i), Plan: tenant.Free, State: tenant.Active}
				if i%2 == 0 {
					deleted, after := now.AddDate(0, 0, -10), now.AddDate(0, 0, 20+i%40)
					tn.State, tn.DeletedAt, tn.PurgeAfter, tn.RetentionDays = tenant.Deleted, &deleted, &after, 30
				}
				if _, err := st.CreateTenant(context.Background(), tn, store.Actor{Who: "system:seed"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed: %v", err)
	}
}

// waitClaimed waits until each due tenant is claimed by its purge or already purged,
// and reports which were claimed (still running) when it looked.
func waitClaimed(t *testing.T, s *stack.Stack, due []*sample) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		claimed, settled := map[string]bool{}, 0
		for _, sm := range due {
			tn, err := s.Store().GetTenant(context.Background(), sm.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tn.State == tenant.Purged:
				settled++
			case tn.Operation != "":
				claimed[sm.ID] = true
				settled++
			}
		}
		if settled == len(due) {
			return claimed
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the due tenants were not claimed in time")
	return nil
}
