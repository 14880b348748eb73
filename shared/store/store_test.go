package store_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func newStore(t *testing.T) *store.Store {
	db, names := testenv.Tables(t)
	return store.New(db, names["TenantsTable"], nil)
}

func seed(t *testing.T, s *store.Store, id string, state tenant.State) *tenant.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(context.Background(), &tenant.Tenant{ID: id, Name: "Acme Corp", Plan: tenant.Starter, State: state,
		Usage: tenant.Usage{Users: 2, StorageGB: 0.5, APICallsPerMonth: 5000}}, store.Actor{Who: "test"})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	return tn
}

func TestCreateGetAndNoOverwrite(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	created := seed(t, s, "tenant_acme", tenant.Active)
	if created.Version != 1 {
		t.Fatalf("version %d, want 1", created.Version)
	}
	got, err := s.GetTenant(ctx, "tenant_acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Acme Corp" || got.Plan != tenant.Starter || got.State != tenant.Active || got.Usage.StorageGB != 0.5 {
		t.Fatalf("read back %+v", got)
	}
	_, err = s.CreateTenant(ctx, &tenant.Tenant{ID: "tenant_acme", Name: "Other", Plan: tenant.Free, State: tenant.Active}, store.Actor{Who: "test"})
	var ce *tenant.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("second create: want ConflictError, got %v", err)
	}
	again, _ := s.GetTenant(ctx, "tenant_acme")
	if again.Name != "Acme Corp" {
		t.Fatalf("create overwrote the tenant: %+v", again)
	}
	var nf *tenant.NotFoundError
	if _, err := s.GetTenant(ctx, "nobody"); !errors.As(err, &nf) {
		t.Fatalf("missing tenant: want NotFoundError, got %v", err)
	}
}

func TestTransitionWritesAuditAndBumpsVersion(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tn := seed(t, s, "tenant_techstart", tenant.Active)
	up, err := s.Transition(ctx, tn.ID, tenant.Active, tenant.Upgrading, tn.Version, func(x *tenant.Tenant) { x.Operation = "op-1" }, store.Actor{Who: "alice", OperationID: "op-1", Reason: "upgrade to starter"})
	if err != nil {
		t.Fatal(err)
	}
	if up.State != tenant.Upgrading || up.Version != 2 || up.Operation != "op-1" {
		t.Fatalf("after transition %+v", up)
	}
	if _, err := s.Transition(ctx, tn.ID, tenant.Upgrading, tenant.Active, up.Version, nil, store.Actor{Who: "system", OperationID: "op-1"}); err != nil {
		t.Fatal(err)
	}
	trail, err := s.Audit(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]tenant.State{{"", tenant.Active}, {tenant.Active, tenant.Upgrading}, {tenant.Upgrading, tenant.Active}}
	if len(trail) != len(want) {
		t.Fatalf("audit has %d records, want %d: %+v", len(trail), len(want), trail)
	}
	for i, w := range want {
		if trail[i].From != w[0] || trail[i].To != w[1] {
			t.Errorf("audit[%d] = %s->%s, want %s->%s", i, trail[i].From, trail[i].To, w[0], w[1])
		}
	}
	if trail[1].Who != "alice" || trail[1].OperationID != "op-1" || trail[1].Reason != "upgrade to starter" || trail[1].At.IsZero() {
		t.Errorf("audit record lacks who/op/reason/time: %+v", trail[1])
	}
	if !trail[1].At.Before(trail[2].At) && !trail[1].At.Equal(trail[2].At) {
		t.Errorf("audit not in time order: %v then %v", trail[1].At, trail[2].At)
	}
}

func TestTransitionRefusals(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tn := seed(t, s, "tenant_suspended", tenant.Suspended)
	var it *tenant.InvalidTransitionError
	if _, err := s.Transition(ctx, tn.ID, tenant.Suspended, tenant.Upgrading, tn.Version, nil, store.Actor{Who: "t"}); !errors.As(err, &it) {
		t.Fatalf("SUSPENDED->UPGRADING: want InvalidTransitionError, got %v", err)
	}
	var ce *tenant.ConflictError
	if _, err := s.Transition(ctx, tn.ID, tenant.Suspended, tenant.Reactivating, tn.Version+1, nil, store.Actor{Who: "t"}); !errors.As(err, &ce) {
		t.Fatalf("stale version: want ConflictError, got %v", err)
	}
	if _, err := s.Transition(ctx, tn.ID, tenant.Active, tenant.Suspended, tn.Version, nil, store.Actor{Who: "t"}); !errors.As(err, &ce) {
		t.Fatalf("wrong from state: want ConflictError, got %v", err)
	}
	trail, _ := s.Audit(ctx, tn.ID)
	if len(trail) != 1 {
		t.Fatalf("refused transitions wrote audit: %+v", trail)
	}
}

// TestTransitionRace: 32 writers, same tenant, same expected version, same transition.
// Exactly one wins, 31 get Conflict, and there is exactly one audit record of it.
func TestTransitionRace(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tn := seed(t, s, "tenant_race", tenant.Active)
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Transition(ctx, tn.ID, tenant.Active, tenant.Suspended, tn.Version, nil, store.Actor{Who: "racer"})
		}()
	}
	close(start)
	wg.Wait()
	wins, conflicts := 0, 0
	for _, err := range errs {
		var ce *tenant.ConflictError
		switch {
		case err == nil:
			wins++
		case errors.As(err, &ce):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 || conflicts != n-1 {
		t.Fatalf("wins=%d conflicts=%d, want 1 and %d", wins, conflicts, n-1)
	}
	trail, err := s.Audit(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	suspends := 0
	for _, a := range trail {
		if a.To == tenant.Suspended {
			suspends++
		}
	}
	if suspends != 1 {
		t.Fatalf("%d audit records of the transition, want 1: %+v", suspends, trail)
	}
	got, _ := s.GetTenant(ctx, tn.ID)
	if got.State != tenant.Suspended || got.Version != tn.Version+1 {
		t.Fatalf("final tenant %+v", got)
	}
	t.Logf("%d writers: %d succeeded, %d got Conflict, %d audit record of the transition", n, wins, conflicts, suspends)
}

func TestListByStatePaginates(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ids := []string{"t-a", "t-b", "t-c", "t-d", "t-e"}
	for _, id := range ids {
		seed(t, s, id, tenant.Active)
	}
	seed(t, s, "t-s", tenant.Suspended)
	var got []string
	cursor, pages := "", 0
	for {
		p, err := s.ListByState(ctx, tenant.Active, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tn := range p.Tenants {
			got = append(got, tn.ID)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if len(got) != len(ids) || pages < 3 {
		t.Fatalf("listed %v in %d pages", got, pages)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("order %v, want %v", got, ids)
		}
	}
	var ve *tenant.ValidationError
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"pk":"TENANT#x","sk":"TENANT"}`))
	otherState := base64.RawURLEncoding.EncodeToString([]byte(`{"pk":"TENANT#t-b","sk":"TENANT","state":"SUSPENDED","tenant_id":"t-b"}`))
	for _, c := range []string{"garbage!", forged, otherState} {
		if _, err := s.ListByState(ctx, tenant.Active, c, 2); !errors.As(err, &ve) {
			t.Fatalf("cursor %q: want ValidationError, got %v", c, err)
		}
	}
}

func TestUpdateUsage(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tn := seed(t, s, "tenant_usage", tenant.Active)
	up, err := s.UpdateUsage(ctx, tn.ID, tenant.Usage{Users: 7, StorageGB: 2.5, APICallsPerMonth: 1234})
	if err != nil {
		t.Fatal(err)
	}
	if up.Usage.Users != 7 || up.Usage.StorageGB != 2.5 || up.Version != tn.Version+1 || up.State != tenant.Active {
		t.Fatalf("after usage update %+v", up)
	}
	var nf *tenant.NotFoundError
	if _, err := s.UpdateUsage(ctx, "nobody", tenant.Usage{}); !errors.As(err, &nf) {
		t.Fatalf("usage of missing tenant: want NotFoundError, got %v", err)
	}
	if _, err := s.GetTenant(ctx, "nobody"); !errors.As(err, &nf) {
		t.Fatal("usage update created a tenant")
	}
}

func TestDueIndexIsSparseAndTimeBounded(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seed(t, s, "no-pending", tenant.Active)
	for id, at := range map[string]time.Time{"due-early": now.Add(-time.Hour), "due-later": now.Add(time.Hour)} {
		tn := seed(t, s, id, tenant.Active)
		if _, err := s.Update(ctx, tn.ID, tn.Version, func(x *tenant.Tenant) {
			x.PendingChange = &tenant.PendingChange{Plan: tenant.Free, EffectiveAt: at, OperationID: "op-" + id}
		}, store.Actor{Who: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	due, next, err := s.Due(ctx, store.DueChange, now, nil, 100)
	if err != nil || next != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != "due-early" || due[0].PendingChange.OperationID != "op-due-early" {
		t.Fatalf("due at %v: %+v", now, due)
	}
	later, _, _ := s.Due(ctx, store.DueChange, now.Add(2*time.Hour), nil, 100)
	if len(later) != 2 {
		t.Fatalf("due later: %d tenants", len(later))
	}
	// Pages are exact: a limit of 1 returns one tenant and a cursor to the next.
	first, cur, err := s.Due(ctx, store.DueChange, now.Add(2*time.Hour), nil, 1)
	if err != nil || len(first) != 1 || first[0].ID != "due-early" || cur == nil {
		t.Fatalf("first page %v %v %v", first, cur, err)
	}
	second, _, err := s.Due(ctx, store.DueChange, now.Add(2*time.Hour), cur, 1)
	if err != nil || len(second) != 1 || second[0].ID != "due-later" {
		t.Fatalf("second page %v %v", second, err)
	}
}

func TestOperationsFinishOnce(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	op, err := s.CreateOperation(ctx, &tenant.Operation{ID: "op-1", TenantID: "t1", Kind: tenant.KindUpgrade, Status: tenant.OpRunning, FromPlan: tenant.Free, ToPlan: tenant.Starter})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOperation(ctx, op); err == nil {
		t.Fatal("duplicate operation accepted")
	}
	if err := s.SetOperationStatus(ctx, "op-1", tenant.OpFailed, "ProvisionError", "boom"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOperationStatus(ctx, "op-1", tenant.OpFailed, "ProvisionError", "boom"); err != nil {
		t.Fatalf("repeating the final status: %v", err)
	}
	var ce *tenant.ConflictError
	if err := s.SetOperationStatus(ctx, "op-1", tenant.OpSucceeded, "", ""); !errors.As(err, &ce) {
		t.Fatalf("FAILED -> SUCCEEDED: want ConflictError, got %v", err)
	}
	got, _ := s.GetOperation(ctx, "op-1")
	if got.Status != tenant.OpFailed || got.Error != "ProvisionError" || got.Cause != "boom" {
		t.Fatalf("operation %+v", got)
	}
}

func TestEntitlementsVersioned(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	e, err := s.PutEntitlements(ctx, &tenant.Entitlements{TenantID: "t1", Plan: tenant.Free, Limits: tenant.Limits{Users: 3}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutEntitlements(ctx, e, 0); err == nil {
		t.Fatal("second create of entitlements accepted")
	}
	e2, err := s.PutEntitlements(ctx, &tenant.Entitlements{TenantID: "t1", Plan: tenant.Starter, Limits: tenant.Limits{Users: 10}, Previous: &tenant.PlanLimits{Plan: tenant.Free, Limits: e.Limits}}, e.Version)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetEntitlements(ctx, "t1")
	if got.Plan != tenant.Starter || got.Version != e2.Version || got.Previous == nil || got.Previous.Limits.Users != 3 {
		t.Fatalf("entitlements %+v", got)
	}
}

// TestChangeSurvivesUnrelatedWrites interleaves usage reports with a guarded change:
// the change re-reads and still applies, and keeps the reported usage.
func TestChangeSurvivesUnrelatedWrites(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tn := seed(t, s, "busy-1", tenant.Active)
	if _, err := s.CreateOperation(ctx, &tenant.Operation{ID: "op-c", TenantID: tn.ID, Kind: tenant.KindUpgrade, Status: tenant.OpRunning}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	got, err := s.Change(ctx, tn.ID, store.Actor{Who: "t", OperationID: "op-c"}, func(cur *tenant.Tenant) (store.Write, error) {
		calls++
		if calls <= 2 {
			// Another writer lands between this read and the write.
			if _, err := s.UpdateUsage(ctx, tn.ID, tenant.Usage{Users: int64(calls)}); err != nil {
				t.Fatal(err)
			}
		}
		if cur.State != tenant.Active {
			return store.Write{}, &tenant.ConflictError{TenantID: cur.ID, Reason: "not active"}
		}
		return store.Write{To: tenant.Upgrading, Mutate: func(x *tenant.Tenant) { x.Operation = "op-c" },
			Op: &store.OpUpdate{ID: "op-c", Status: tenant.OpRunning}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || got.State != tenant.Upgrading || got.Operation != "op-c" || got.Usage.Users != 2 {
		t.Fatalf("after %d decisions: %+v", calls, got)
	}
	// ErrUnchanged writes nothing.
	again, err := s.Change(ctx, tn.ID, store.Actor{Who: "t"}, func(*tenant.Tenant) (store.Write, error) { return store.Write{}, store.ErrUnchanged })
	if err != nil || again.Version != got.Version {
		t.Fatalf("unchanged: %+v %v", again, err)
	}
	// Finishing the operation in the same transaction; a second finish with another
	// status is refused and leaves the tenant as it was.
	done, err := s.Change(ctx, tn.ID, store.Actor{Who: "t"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{To: tenant.Active, Mutate: func(x *tenant.Tenant) { x.Operation = "" },
			Op: &store.OpUpdate{ID: "op-c", Status: tenant.OpSucceeded}}, nil
	})
	if err != nil || done.State != tenant.Active {
		t.Fatalf("finish: %+v %v", done, err)
	}
	var ce *tenant.ConflictError
	_, err = s.Change(ctx, tn.ID, store.Actor{Who: "t"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{Reason: "late failure", Op: &store.OpUpdate{ID: "op-c", Status: tenant.OpFailed, Error: "X"}}, nil
	})
	if !errors.As(err, &ce) {
		t.Fatalf("failing a succeeded operation: want ConflictError, got %v", err)
	}
	if cur, _ := s.GetTenant(ctx, tn.ID); cur.Version != done.Version {
		t.Fatalf("refused transaction changed the tenant: %+v", cur)
	}
	if op, _ := s.GetOperation(ctx, "op-c"); op.Status != tenant.OpSucceeded {
		t.Fatalf("operation %+v", op)
	}
	// A decision error is returned as it is.
	if _, err := s.Change(ctx, tn.ID, store.Actor{Who: "t"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{}, &tenant.ConflictError{TenantID: tn.ID, Reason: "mine"}
	}); !errors.As(err, &ce) || ce.Reason != "mine" {
		t.Fatalf("decision error %v", err)
	}
}

// TestMarksAndAttention covers marks, the failed-with-attention update, reopening for a
// retry (once per attempt number) and resolving by an operator.
func TestMarksAndAttention(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tn := seed(t, s, "attn-1", tenant.Active)
	if _, err := s.CreateOperation(ctx, &tenant.Operation{ID: "op-a", TenantID: tn.ID, Kind: tenant.KindUpgrade, Status: tenant.OpRunning}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Mark(ctx, "op-a", "billing"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Mark(ctx, "op-missing", "billing"); err == nil {
		t.Fatal("mark of a missing operation accepted")
	}
	if _, err := s.Change(ctx, tn.ID, store.Actor{Who: "t"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{Reason: "released", Mutate: func(x *tenant.Tenant) { x.Attention = "op-a" },
			Op: &store.OpUpdate{ID: "op-a", Status: tenant.OpFailed, Error: "E", Incomplete: []string{"billing"}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	op, _ := s.GetOperation(ctx, "op-a")
	if !slices.Equal(op.Marks, []string{"billing"}) || !op.NeedsAttention || !slices.Equal(op.CompensationIncomplete, []string{"billing"}) || op.Status != tenant.OpFailed {
		t.Fatalf("operation %+v", op)
	}
	if err := s.UpdateOperation(ctx, store.OpUpdate{ID: "op-a", Status: tenant.OpRunning, Reopen: true, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	var ce *tenant.ConflictError
	if err := s.UpdateOperation(ctx, store.OpUpdate{ID: "op-a", Status: tenant.OpRunning, Reopen: true, Attempt: 1}); !errors.As(err, &ce) {
		t.Fatalf("second reopen of attempt 1: %v", err)
	}
	if err := s.UpdateOperation(ctx, store.OpUpdate{ID: "op-a", Status: tenant.OpFailed, Error: "E", Incomplete: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	op, _ = s.GetOperation(ctx, "op-a")
	if op.Attempt != 1 || op.ExecutionName() != "op-a-retry-1" {
		t.Fatalf("attempt %d name %s", op.Attempt, op.ExecutionName())
	}
	if err := s.ResolveOperation(ctx, op, "refunded by hand", store.Actor{Who: "operator"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveOperation(ctx, op, "again", store.Actor{Who: "operator"}); !errors.As(err, &ce) {
		t.Fatalf("second resolve: %v", err)
	}
	op, _ = s.GetOperation(ctx, "op-a")
	cur, _ := s.GetTenant(ctx, tn.ID)
	if op.NeedsAttention || op.Resolution != "refunded by hand" || cur.Attention != "" {
		t.Fatalf("after resolve: op %+v tenant attention %q", op, cur.Attention)
	}
}

// TestChangeFromAStaleCopy: a change that starts from an out-of-date copy (an index
// page read before a usage report) loses one race, reads the item and still applies,
// keeping the newer usage.
func TestChangeFromAStaleCopy(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	stale := seed(t, s, "stale-1", tenant.Active)
	if _, err := s.UpdateUsage(ctx, stale.ID, tenant.Usage{Users: 9}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	got, err := s.ChangeFrom(ctx, stale.ID, stale, store.Actor{Who: "t"}, func(cur *tenant.Tenant) (store.Write, error) {
		calls++
		return store.Write{Reason: "note", Mutate: func(x *tenant.Tenant) { x.SuspendReason = "x" }}, nil
	})
	if err != nil || calls != 2 || got.Usage.Users != 9 || got.SuspendReason != "x" || got.Version != stale.Version+2 {
		t.Fatalf("after %d decisions: %+v %v", calls, got, err)
	}
}

// TestOpenIndexFollowsTheStatus: an operation is in the Open index exactly while it is
// RUNNING, from the write that makes it RUNNING to the one that ends it; a reopened
// one is open anew; a SCHEDULED one is not open.
func TestOpenIndexFollowsTheStatus(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db, names := testenv.Tables(t)
	s := store.New(db, names["TenantsTable"], func() time.Time { return clock })
	open := func() map[string]time.Time {
		t.Helper()
		got := map[string]time.Time{}
		var cur store.OpenCursor
		for {
			page, next, err := s.OpenOperations(ctx, clock.Add(time.Hour), cur, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page {
				got[o.ID] = o.OpenedAt
			}
			if next == nil {
				return got
			}
			cur = next
		}
	}
	tn := seed(t, s, "open-t", tenant.Active)
	// Recorded RUNNING together with the tenant's reservation, in one transaction.
	if _, err := s.Change(ctx, tn.ID, store.Actor{Who: "t"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{Create: &tenant.Operation{ID: "op-run", TenantID: tn.ID, Kind: tenant.KindUpgrade, Status: tenant.OpRunning},
			Mutate: func(x *tenant.Tenant) { x.Operation = "op-run" }}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetTenant(ctx, tn.ID); got.Operation != "op-run" || got.State != tenant.Active {
		t.Fatalf("reserved tenant %+v", got)
	}
	if _, err := s.CreateOperation(ctx, &tenant.Operation{ID: "op-sched", TenantID: tn.ID, Kind: tenant.KindDowngrade, Status: tenant.OpScheduled}); err != nil {
		t.Fatal(err)
	}
	opened := clock
	if got := open(); len(got) != 1 || !got["op-run"].Equal(opened) {
		t.Fatalf("open after create: %v", got)
	}
	// A second operation of the same id is refused and writes nothing.
	var ce *tenant.ConflictError
	if _, err := s.Change(ctx, tn.ID, store.Actor{Who: "t"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{Create: &tenant.Operation{ID: "op-run", TenantID: tn.ID, Kind: tenant.KindUpgrade, Status: tenant.OpRunning},
			Mutate: func(x *tenant.Tenant) { x.Operation = "other" }}, nil
	}); !errors.As(err, &ce) {
		t.Fatalf("recreating op-run: want ConflictError, got %v", err)
	}
	// Staying RUNNING (the claim) keeps the time it opened; ending it removes it.
	clock = clock.Add(time.Minute)
	if err := s.UpdateOperation(ctx, store.OpUpdate{ID: "op-run", Status: tenant.OpRunning, PreviousState: tenant.Active}); err != nil {
		t.Fatal(err)
	}
	if got := open(); !got["op-run"].Equal(opened) {
		t.Fatalf("open after the claim: %v", got)
	}
	if err := s.UpdateOperation(ctx, store.OpUpdate{ID: "op-run", Status: tenant.OpFailed, Error: "E", Cause: "c", Incomplete: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	if got := open(); len(got) != 0 {
		t.Fatalf("open after FAILED: %v", got)
	}
	// Reopened for an operator retry: open again, from the reopening.
	clock = clock.Add(time.Minute)
	if err := s.UpdateOperation(ctx, store.OpUpdate{ID: "op-run", Status: tenant.OpRunning, Reopen: true, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if got := open(); len(got) != 1 || !got["op-run"].Equal(clock) {
		t.Fatalf("open after reopening: %v", got)
	}
	// The sweep's start makes a SCHEDULED operation RUNNING: open from then; only
	// operations opened at or before the given time are listed.
	clock = clock.Add(2 * time.Hour)
	if err := s.UpdateOperation(ctx, store.OpUpdate{ID: "op-sched", Status: tenant.OpRunning}); err != nil {
		t.Fatal(err)
	}
	if early, _, err := s.OpenOperations(ctx, clock.Add(-time.Hour), nil, 10); err != nil || len(early) != 1 || early[0].ID != "op-run" {
		t.Fatalf("open at or before an hour ago: %+v %v", early, err)
	}
	all, _, err := s.OpenOperations(ctx, clock, nil, 10)
	if err != nil || len(all) != 2 || all[0].ID != "op-run" || all[1].ID != "op-sched" {
		t.Fatalf("open, oldest first: %+v %v", all, err)
	}
}
