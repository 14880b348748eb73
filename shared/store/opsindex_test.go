package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func opIDs(ops []*tenant.Operation) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.ID
	}
	return out
}

// TestOperationListings: the operator's listings read the ByTenant, Open and Due
// indexes: a tenant's operations newest first with filters and cursors, running ones
// and ones waiting for an operator from the Open index (the attention kind follows
// fail, retry and resolve), scheduled ones from the Due index; and the counts.
func TestOperationListings(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db, names := testenv.Tables(t)
	s := store.New(db, names["TenantsTable"], func() time.Time { return clock })
	a := seed(t, s, "ops-a", tenant.Active)
	b := seed(t, s, "ops-b", tenant.Active)
	seed(t, s, "ops-c", tenant.Suspended)

	create := func(id, tenantID string, status tenant.OperationStatus) {
		t.Helper()
		if _, err := s.CreateOperation(ctx, &tenant.Operation{ID: id, TenantID: tenantID, Kind: tenant.KindUpgrade, Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	update := func(u store.OpUpdate) {
		t.Helper()
		if err := s.UpdateOperation(ctx, u); err != nil {
			t.Fatalf("update %+v: %v", u, err)
		}
	}
	create("op_a1", a.ID, tenant.OpRunning)
	update(store.OpUpdate{ID: "op_a1", Status: tenant.OpSucceeded})
	create("op_a2", a.ID, tenant.OpRunning)
	create("op_a3", a.ID, tenant.OpRunning)
	clock = clock.Add(time.Minute)
	update(store.OpUpdate{ID: "op_a3", Status: tenant.OpFailed, Error: "E", Cause: "c", Incomplete: []string{"billing"}})
	create("op_b1", b.ID, tenant.OpScheduled)
	due := clock.Add(48 * time.Hour)
	if _, err := s.Update(ctx, b.ID, b.Version, func(x *tenant.Tenant) {
		x.PendingChange = &tenant.PendingChange{Plan: tenant.Free, EffectiveAt: due, OperationID: "op_b1"}
	}, store.Actor{Who: "t"}); err != nil {
		t.Fatal(err)
	}

	// By tenant, newest first, two per page.
	p1, err := s.TenantOperationsPage(ctx, a.ID, store.OpFilter{}, "", 2)
	if err != nil || !slices.Equal(opIDs(p1.Operations), []string{"op_a3", "op_a2"}) || p1.Next == "" {
		t.Fatalf("first page %v next %q err %v", opIDs(p1.Operations), p1.Next, err)
	}
	p2, err := s.TenantOperationsPage(ctx, a.ID, store.OpFilter{}, p1.Next, 2)
	if err != nil || !slices.Equal(opIDs(p2.Operations), []string{"op_a1"}) || p2.Next != "" {
		t.Fatalf("second page %v next %q err %v", opIDs(p2.Operations), p2.Next, err)
	}
	// A cursor of one tenant's listing is refused for another's, and garbage too.
	var ve *tenant.ValidationError
	for _, c := range []string{"x", "e30", p1.Next + "A"} {
		if _, err := s.TenantOperationsPage(ctx, b.ID, store.OpFilter{}, c, 2); !errors.As(err, &ve) {
			t.Errorf("cursor %q: want ValidationError, got %v", c, err)
		}
	}
	if _, err := s.TenantOperationsPage(ctx, b.ID, store.OpFilter{}, p1.Next, 2); !errors.As(err, &ve) {
		t.Errorf("another tenant's cursor: want ValidationError, got %v", err)
	}
	if _, err := s.OpenOperationsPage(ctx, store.OpenOperation, p1.Next, 2); !errors.As(err, &ve) {
		t.Errorf("a tenant cursor on the running list: want ValidationError, got %v", err)
	}
	// Filters, with a limit of 1 so that non-matching operations fill Query pages.
	for f, want := range map[store.OpFilter][]string{
		{Status: tenant.OpRunning}:   {"op_a2"},
		{Status: tenant.OpSucceeded}: {"op_a1"},
		{NeedsAttention: true}:       {"op_a3"},
		{Status: tenant.OpScheduled}: nil,
	} {
		var got []string
		cursor := ""
		for range 10 {
			p, err := s.TenantOperationsPage(ctx, a.ID, f, cursor, 1)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, opIDs(p.Operations)...)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("filter %+v: %v, want %v", f, got, want)
		}
	}

	open := func(kind string) []string {
		t.Helper()
		p, err := s.OpenOperationsPage(ctx, kind, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		return opIDs(p.Operations)
	}
	if got := open(store.OpenOperation); !slices.Equal(got, []string{"op_a2"}) {
		t.Errorf("running %v", got)
	}
	if got := open(store.OpenAttention); !slices.Equal(got, []string{"op_a3"}) {
		t.Errorf("needs attention %v", got)
	}
	// An operator retry takes it out of the attention list while it runs; resolving
	// is refused meanwhile.
	update(store.OpUpdate{ID: "op_a3", Status: tenant.OpRunning, Reopen: true, Attempt: 1})
	if got, running := open(store.OpenAttention), open(store.OpenOperation); len(got) != 0 || !slices.Equal(running, []string{"op_a2", "op_a3"}) {
		t.Errorf("during the retry: attention %v running %v", got, running)
	}
	op3, _ := s.GetOperation(ctx, "op_a3")
	var ce *tenant.ConflictError
	if err := s.ResolveOperation(ctx, op3, "fixed", store.Actor{Who: "op"}); !errors.As(err, &ce) {
		t.Errorf("resolve while the retry runs: want ConflictError, got %v", err)
	}
	// The retry fails again: back in the list, from then; resolved: out of it.
	clock = clock.Add(time.Minute)
	update(store.OpUpdate{ID: "op_a3", Status: tenant.OpFailed, Error: "E", Cause: "c", Incomplete: []string{"billing"}})
	if got := open(store.OpenAttention); !slices.Equal(got, []string{"op_a3"}) {
		t.Errorf("after the failed retry: %v", got)
	}
	if n, err := s.CountOpen(ctx, store.OpenAttention); err != nil || n != 1 {
		t.Errorf("count attention %d %v", n, err)
	}
	op3, _ = s.GetOperation(ctx, "op_a3")
	if err := s.ResolveOperation(ctx, op3, "fixed by hand", store.Actor{Who: "op"}); err != nil {
		t.Fatal(err)
	}
	if got := open(store.OpenAttention); len(got) != 0 {
		t.Errorf("after resolve: %v", got)
	}
	if got, _ := s.GetOperation(ctx, "op_a3"); got.NeedsAttention || got.Resolution != "fixed by hand" {
		t.Errorf("resolved %+v", got)
	}

	sched, err := s.ScheduledOperationsPage(ctx, "", 10)
	if err != nil || !slices.Equal(opIDs(sched.Operations), []string{"op_b1"}) || sched.Next != "" {
		t.Errorf("scheduled %v %q %v", opIDs(sched.Operations), sched.Next, err)
	}
	next, err := s.NextDue(ctx, store.DueChange, 20)
	if err != nil || len(next) != 1 || next[0].ID != b.ID || !next[0].PendingChange.EffectiveAt.Equal(due) {
		t.Errorf("next due %+v %v", next, err)
	}
	for _, c := range []struct {
		state tenant.State
		n     int64
	}{{tenant.Active, 2}, {tenant.Suspended, 1}, {tenant.Deleted, 0}} {
		if n, err := s.CountByState(ctx, c.state); err != nil || n != c.n {
			t.Errorf("count %s: %d %v, want %d", c.state, n, err, c.n)
		}
	}
	if n, err := s.CountOpen(ctx, store.OpenOperation); err != nil || n != 1 {
		t.Errorf("count running %d %v", n, err)
	}
	if n, err := s.CountDue(ctx, store.DueChange); err != nil || n != 1 {
		t.Errorf("count scheduled %d %v", n, err)
	}
}
