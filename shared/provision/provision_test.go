package provision_test

// The provisioner runs against the real store on moto; the publisher is a recorder
// (the EventBridge adapter has its own test against moto in shared/events) that can be
// told to fail, which is how a Lambda crash between "entitlements written" and "event
// sent" is reproduced.

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

type sent struct {
	detailType string
	detail     provision.PlanChangedEvent
	document   tenant.EntitlementsDocument
}

type recorder struct {
	mu       sync.Mutex
	events   []sent
	failNext int
}

func (r *recorder) Publish(_ context.Context, detailType string, detail any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 {
		r.failNext--
		return errors.New("eventbridge unavailable")
	}
	switch d := detail.(type) {
	case provision.PlanChangedEvent:
		r.events = append(r.events, sent{detailType: detailType, detail: d})
	case tenant.EntitlementsDocument:
		r.events = append(r.events, sent{detailType: detailType, document: d})
	default:
		panic("unexpected event detail " + detailType)
	}
	return nil
}

// documents returns the TenantEntitlementsChanged documents sent, in order.
func (r *recorder) documents() []tenant.EntitlementsDocument {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []tenant.EntitlementsDocument
	for _, e := range r.events {
		if e.detailType == events.TenantEntitlementsChanged {
			out = append(out, e.document)
		}
	}
	return out
}

func (r *recorder) count(detailType string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.detailType == detailType {
			n++
		}
	}
	return n
}

func setup(t *testing.T) (*provision.Provisioner, *store.Store, *recorder) {
	t.Helper()
	db, names := testenv.Tables(t)
	s := store.New(db, names["TenantsTable"], nil)
	rec := &recorder{}
	return provision.New(s, rec, tenant.DefaultCatalog()), s, rec
}

func entitlements(t *testing.T, s *store.Store, id string) *tenant.Entitlements {
	t.Helper()
	e, err := s.GetEntitlements(context.Background(), id)
	if err != nil {
		t.Fatalf("entitlements of %s: %v", id, err)
	}
	return e
}

func limits(p tenant.Plan) tenant.Limits {
	l, _ := tenant.DefaultCatalog().Limits(p)
	return l
}

func TestApplyTwiceChangesNothingMore(t *testing.T) {
	ctx := context.Background()
	p, s, rec := setup(t)
	if err := p.Initial(ctx, "t1", tenant.Free); err != nil {
		t.Fatal(err)
	}
	if err := p.Initial(ctx, "t1", tenant.Starter); err != nil {
		t.Fatalf("a repeated Initial must be a no-op, got %v", err)
	}
	if e := entitlements(t, s, "t1"); e.Plan != tenant.Free || e.Limits != limits(tenant.Free) {
		t.Fatalf("a repeated Initial overwrote the entitlements: %+v", e)
	}
	if rec.count(events.TenantPlanChanged) != 0 {
		t.Fatal("Initial published a plan change")
	}

	for i := 0; i < 2; i++ {
		if err := p.Apply(ctx, "t1", "op-1", tenant.Starter); err != nil {
			t.Fatalf("apply #%d: %v", i+1, err)
		}
	}
	e := entitlements(t, s, "t1")
	if e.Plan != tenant.Starter || e.Limits != limits(tenant.Starter) || e.OperationID != "op-1" {
		t.Fatalf("entitlements after apply: %+v", e)
	}
	if e.Previous == nil || e.Previous.Plan != tenant.Free || e.Previous.Limits != limits(tenant.Free) {
		t.Fatalf("apply kept %+v as the previous plan, want free", e.Previous)
	}
	if n := rec.count(events.TenantPlanChanged); n != 1 {
		t.Fatalf("%d TenantPlanChanged events for two applies, want 1", n)
	}
	got := rec.events[0].detail
	if docs := rec.documents(); len(docs) != 1 || docs[0].Plan != tenant.Starter || docs[0].State != tenant.Active || docs[0].Version != 2 ||
		*docs[0].Limits.Users != 10 || !docs[0].Features["custom_domain"] || docs[0].CatalogVersion != tenant.DefaultCatalog().Version() {
		t.Fatalf("TenantEntitlementsChanged documents %+v, want one of starter at version 2", docs)
	}
	if got.TenantID != "t1" || got.OperationID != "op-1" || got.FromPlan != tenant.Free || got.ToPlan != tenant.Starter {
		t.Fatalf("event detail %+v", got)
	}
	if e2 := entitlements(t, s, "t1"); e2.Version != e.Version {
		t.Fatalf("a third read sees version %d, the second apply wrote (was %d)", e2.Version, e.Version)
	}
}

func TestRevertRestoresThePreviousPlanOnce(t *testing.T) {
	ctx := context.Background()
	p, s, rec := setup(t)
	if err := p.Initial(ctx, "t2", tenant.Starter); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, "t2", "op-2", tenant.Professional); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := p.Revert(ctx, "t2", "op-2", tenant.Starter); err != nil {
			t.Fatalf("revert #%d: %v", i+1, err)
		}
	}
	e := entitlements(t, s, "t2")
	if e.Plan != tenant.Starter || e.Limits != limits(tenant.Starter) {
		t.Fatalf("after revert: %+v, want starter", e)
	}
	if n := rec.count(events.TenantPlanReverted); n != 1 {
		t.Fatalf("%d revert events for two reverts, want 1", n)
	}
	if n := rec.count(events.TenantPlanChanged); n != 1 {
		t.Fatalf("%d change events, want 1", n)
	}
	// A later retry of the original Apply must not undo the revert's outcome silently:
	// the operation is over, Revert of another op is a no-op.
	if err := p.Revert(ctx, "t2", "op-other", tenant.Starter); err != nil {
		t.Fatal(err)
	}
	if e2 := entitlements(t, s, "t2"); e2.Version != e.Version {
		t.Fatalf("revert of an operation that changed nothing wrote version %d (was %d)", e2.Version, e.Version)
	}
}

func TestRevertBeforeApplyIsANoOp(t *testing.T) {
	ctx := context.Background()
	p, s, rec := setup(t)
	if err := p.Revert(ctx, "t3", "op-3", tenant.Free); err != nil {
		t.Fatalf("revert with no entitlements at all: %v", err)
	}
	if err := p.Initial(ctx, "t3", tenant.Free); err != nil {
		t.Fatal(err)
	}
	before := entitlements(t, s, "t3")
	if err := p.Revert(ctx, "t3", "op-3", tenant.Free); err != nil {
		t.Fatal(err)
	}
	after := entitlements(t, s, "t3")
	if after.Version != before.Version || after.Plan != tenant.Free {
		t.Fatalf("revert of a never-applied op changed %+v into %+v", before, after)
	}
	if len(rec.events) != 0 {
		t.Fatalf("events %+v, want none", rec.events)
	}
}

// A failure after the entitlements were written but before the event went out: the
// retry publishes exactly once and does not write the entitlements again.
func TestApplyRetryAfterPublishFailure(t *testing.T) {
	ctx := context.Background()
	p, s, rec := setup(t)
	if err := p.Initial(ctx, "t4", tenant.Free); err != nil {
		t.Fatal(err)
	}
	rec.failNext = 1
	if err := p.Apply(ctx, "t4", "op-4", tenant.Starter); err == nil {
		t.Fatal("apply with a failing publisher succeeded")
	}
	if e := entitlements(t, s, "t4"); e.Plan != tenant.Starter || e.EventPublished {
		t.Fatalf("after the failed publish: %+v (want starter, event not yet published)", e)
	}
	if err := p.Apply(ctx, "t4", "op-4", tenant.Starter); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := p.Apply(ctx, "t4", "op-4", tenant.Starter); err != nil {
		t.Fatalf("second retry: %v", err)
	}
	if n := rec.count(events.TenantPlanChanged); n != 1 {
		t.Fatalf("%d TenantPlanChanged events, want 1", n)
	}
	if e := entitlements(t, s, "t4"); e.Previous == nil || e.Previous.Plan != tenant.Free {
		t.Fatalf("the retry lost the previous plan: %+v", e)
	}
}

// A revert of a change whose event never went out needs no compensating event.
func TestRevertOfAnUnannouncedChangeIsSilent(t *testing.T) {
	ctx := context.Background()
	p, s, rec := setup(t)
	if err := p.Initial(ctx, "t5", tenant.Free); err != nil {
		t.Fatal(err)
	}
	rec.failNext = 1
	if err := p.Apply(ctx, "t5", "op-5", tenant.Starter); err == nil {
		t.Fatal("apply with a failing publisher succeeded")
	}
	if err := p.Revert(ctx, "t5", "op-5", tenant.Free); err != nil {
		t.Fatal(err)
	}
	if e := entitlements(t, s, "t5"); e.Plan != tenant.Free {
		t.Fatalf("after revert: %+v, want free", e)
	}
	if n := rec.count(events.TenantPlanChanged) + rec.count(events.TenantPlanReverted); n != 0 {
		t.Fatalf("%d plan events, want none: nobody heard of the change", n)
	}
	// The entitlements document changed twice all the same (a service may have read
	// the starter one): the revert's document goes out, with a higher version.
	docs := rec.documents()
	if len(docs) != 1 || docs[0].Plan != tenant.Free || docs[0].Version != 3 {
		t.Fatalf("documents %+v, want one of free at version 3", docs)
	}
}

func TestApplyUnknownPlan(t *testing.T) {
	p, s, _ := setup(t)
	if err := p.Apply(context.Background(), "t6", "op-6", tenant.Plan("platinum")); err == nil {
		t.Fatal("apply of an unknown plan succeeded")
	}
	var nf *tenant.NotFoundError
	if _, err := s.GetEntitlements(context.Background(), "t6"); !errors.As(err, &nf) {
		t.Fatalf("an unknown plan wrote entitlements: %v", err)
	}
}

// TestRevertWithoutPreviousEntitlements covers a tenant that had no entitlements item
// before the operation: the revert restores the previous plan's limits from the catalog
// instead of failing (which used to leave the tenant stuck in its busy state).
func TestRevertWithoutPreviousEntitlements(t *testing.T) {
	ctx := context.Background()
	p, s, rec := setup(t)
	if err := p.Apply(ctx, "t6", "op-6", tenant.Professional); err != nil {
		t.Fatal(err)
	}
	if err := p.Revert(ctx, "t6", "op-6", tenant.Starter); err != nil {
		t.Fatal(err)
	}
	if e := entitlements(t, s, "t6"); e.Plan != tenant.Starter || e.Limits != limits(tenant.Starter) {
		t.Fatalf("after revert: %+v, want starter", e)
	}
	if n := rec.count(events.TenantPlanReverted); n != 1 {
		t.Fatalf("%d revert events, want 1", n)
	}
}

// TestEntitlementsDocumentsFollowEveryChange: suspension, reactivation, deletion and a
// rollback each send the new document once, with versions that only grow, and the
// overrides written on the item survive the flows' writes.
func TestEntitlementsDocumentsFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	p, s, rec := setup(t)
	if err := p.Initial(ctx, "t7", tenant.Starter); err != nil {
		t.Fatal(err)
	}
	e := entitlements(t, s, "t7")
	e.Overrides = &tenant.Overrides{Limits: map[string]float64{tenant.LimitUsers: 400}, Features: map[string]bool{"sso": true}, Reason: "deal"}
	e.Revision++
	e.ChangePending = true
	if _, err := s.PutEntitlements(ctx, e, e.Version); err != nil {
		t.Fatal(err)
	}
	rec.failNext = 1
	if err := p.PublishChange(ctx, "t7"); err == nil {
		t.Fatal("PublishChange with a failing publisher succeeded")
	}
	for range 2 {
		if err := p.PublishChange(ctx, "t7"); err != nil {
			t.Fatal(err)
		}
	}
	steps := []func() error{
		func() error { return p.Restrict(ctx, "t7", "op-s", tenant.AccessSuspended, events.TenantSuspended) },
		func() error { return p.ApplyAs(ctx, "t7", "op-r", tenant.Starter, events.TenantReactivated) },
		func() error { return p.Restrict(ctx, "t7", "op-d", tenant.AccessRevoked, events.TenantDeleted) },
		func() error { return p.RevertAs(ctx, "t7", "op-d", tenant.Starter, events.TenantRestored) },
	}
	for i, step := range steps {
		for range 2 { // each step runs at least once
			if err := step(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
	}
	docs := rec.documents()
	var states []tenant.State
	for i, d := range docs {
		states = append(states, d.State)
		if i > 0 && d.Version <= docs[i-1].Version {
			t.Fatalf("version %d after %d", d.Version, docs[i-1].Version)
		}
	}
	want := []tenant.State{tenant.Active, tenant.Suspended, tenant.Active, tenant.Deleted, tenant.Active}
	if len(states) != len(want) {
		t.Fatalf("document states %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("document states %v, want %v", states, want)
		}
	}
	first, suspended, last := docs[0], docs[1], docs[len(docs)-1]
	if *first.Limits.Users != 400 || !first.Features["sso"] || first.Overrides.Limits[tenant.LimitUsers] != 400 {
		t.Fatalf("override document %+v", first)
	}
	if *suspended.Limits.Users != 0 || suspended.Features["api_access"] {
		t.Fatalf("a suspended tenant keeps limits or features: %+v", suspended)
	}
	if *last.Limits.Users != 400 || !last.Features["sso"] {
		t.Fatalf("the overrides did not survive the flows: %+v", last)
	}
	if e := entitlements(t, s, "t7"); e.ChangePending || e.Revision != last.Version {
		t.Fatalf("entitlements %+v after every event went out (last version %d)", e, last.Version)
	}
}
