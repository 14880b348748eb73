package planchange_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// recorder stands in for EventBridge and Stripe in these in-process step tests (the
// real adapters are exercised end to end in flows_test.go). The billing side dedupes on
// the idempotency key the way Stripe does.
type recorder struct {
	mu     sync.Mutex
	events []string
	keys   map[string]bool
	prices []string
}

func (r *recorder) Publish(_ context.Context, detailType string, _ any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, detailType)
	return nil
}

func (r *recorder) ChangePrice(_ context.Context, sub string, plan tenant.Plan, key string, _ bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = map[string]bool{}
	}
	if !r.keys[key] {
		r.keys[key] = true
		r.prices = append(r.prices, sub+":"+string(plan))
	}
	return nil
}

type stepEnv struct {
	st    *store.Store
	rec   *recorder
	steps *planchange.Steps
}

func newStepEnv(t *testing.T, id string, plan tenant.Plan, usage tenant.Usage) stepEnv {
	t.Helper()
	db, names := testenv.Tables(t)
	st := store.New(db, names["TenantsTable"], nil)
	rec := &recorder{}
	cat := tenant.DefaultCatalog()
	prov := provision.New(st, rec, cat)
	ctx := context.Background()
	if _, err := st.CreateTenant(ctx, &tenant.Tenant{ID: id, Name: id, Plan: plan, State: tenant.Active, Usage: usage,
		Billing: tenant.BillingRef{SubscriptionID: "sub_" + id}}, store.Actor{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := prov.Initial(ctx, id, plan); err != nil {
		t.Fatal(err)
	}
	return stepEnv{st: st, rec: rec, steps: planchange.NewSteps(&flow.Kit{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, st, prov, rec, cat)}
}

type step func(context.Context, planchange.Input) (planchange.Input, error)

func runTwice(t *testing.T, name string, f step, in planchange.Input) {
	t.Helper()
	for i := range 2 {
		if _, err := f(context.Background(), in); err != nil {
			t.Fatalf("%s (run %d): %v", name, i+1, err)
		}
	}
}

func auditPairs(t *testing.T, st *store.Store, id string) []string {
	t.Helper()
	trail, err := st.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range trail[1:] {
		if a.From != a.To {
			out = append(out, string(a.From)+"->"+string(a.To))
		}
	}
	return out
}

// TestEveryStepTwiceHasOneEffect runs each forward step twice, as a Step Functions retry
// after a lost response would: one event, one billing change, one audit line each way.
// The operation record does not exist beforehand: Validate creates it.
func TestEveryStepTwiceHasOneEffect(t *testing.T) {
	e := newStepEnv(t, "twice", tenant.Free, tenant.Usage{Users: 1})
	in := planchange.Input{Ref: flow.Ref{OperationID: "op_twice", TenantID: "twice", Kind: tenant.KindUpgrade}, FromPlan: tenant.Free, ToPlan: tenant.Starter}
	runTwice(t, "validate", e.steps.Validate, in)
	runTwice(t, "provision", e.steps.Provision, in)
	runTwice(t, "billing", e.steps.Billing, in)
	runTwice(t, "commit", e.steps.Commit, in)
	ctx := context.Background()
	tn, _ := e.st.GetTenant(ctx, "twice")
	if tn.Plan != tenant.Starter || tn.State != tenant.Active || tn.Operation != "" {
		t.Fatalf("tenant %+v", tn)
	}
	if !slices.Equal(e.rec.events, []string{"TenantPlanChanged", "TenantEntitlementsChanged"}) || !slices.Equal(e.rec.prices, []string{"sub_twice:starter"}) {
		t.Fatalf("events %v prices %v", e.rec.events, e.rec.prices)
	}
	if got := auditPairs(t, e.st, "twice"); !slices.Equal(got, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", got)
	}
	if op, err := e.st.GetOperation(ctx, "op_twice"); err != nil || op.Status != tenant.OpSucceeded {
		t.Fatalf("operation %+v %v", op, err)
	}
}

// TestCompensationTwiceRestoresOnce runs every compensating step twice after provision
// and billing happened.
func TestCompensationTwiceRestoresOnce(t *testing.T) {
	e := newStepEnv(t, "comp", tenant.Free, tenant.Usage{Users: 1})
	in := planchange.Input{Ref: flow.Ref{OperationID: "op_comp", TenantID: "comp", Kind: tenant.KindUpgrade}, FromPlan: tenant.Free, ToPlan: tenant.Starter}
	ctx := context.Background()
	for _, f := range []step{e.steps.Validate, e.steps.Provision, e.steps.Billing} {
		if _, err := f(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	in.Error = &flow.CaughtError{Error: "InjectedFault", Cause: `{"errorType":"InjectedFault","errorMessage":"commit exploded"}`}
	runTwice(t, "rollback-billing", e.steps.RollbackBilling, in)
	runTwice(t, "rollback-provision", e.steps.RollbackProvision, in)
	for range 2 {
		if out, err := e.steps.Release(ctx, in); err != nil || out.Status != tenant.OpFailed || len(out.CompensationIncomplete) != 0 {
			t.Fatalf("release: %+v %v", out, err)
		}
	}
	tn, _ := e.st.GetTenant(ctx, "comp")
	ent, _ := e.st.GetEntitlements(ctx, "comp")
	free, _ := tenant.DefaultCatalog().Limits(tenant.Free)
	if tn.Plan != tenant.Free || tn.State != tenant.Active || ent.Plan != tenant.Free || ent.Limits != free {
		t.Fatalf("tenant %+v entitlements %+v", tn, ent)
	}
	if !slices.Equal(e.rec.events, []string{"TenantPlanChanged", "TenantEntitlementsChanged", "TenantPlanChangeReverted", "TenantEntitlementsChanged"}) {
		t.Fatalf("events %v", e.rec.events)
	}
	if !slices.Equal(e.rec.prices, []string{"sub_comp:starter", "sub_comp:free"}) {
		t.Fatalf("prices %v", e.rec.prices)
	}
	op, _ := e.st.GetOperation(ctx, "op_comp")
	if op.Status != tenant.OpFailed || op.Error != "InjectedFault" || op.Cause != "commit exploded" {
		t.Fatalf("operation %+v", op)
	}
	if got := auditPairs(t, e.st, "comp"); !slices.Equal(got, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", got)
	}
}

// TestRollbackWithoutChangesIsANoop: a failure in validation leaves nothing to undo.
func TestRollbackWithoutChangesIsANoop(t *testing.T) {
	e := newStepEnv(t, "noop", tenant.Free, tenant.Usage{Users: 1})
	ctx := context.Background()
	in := planchange.Input{Ref: flow.Ref{OperationID: "op_noop", TenantID: "noop", Kind: tenant.KindUpgrade}, FromPlan: tenant.Free, ToPlan: tenant.Starter}
	if _, err := e.st.CreateOperation(ctx, &tenant.Operation{ID: in.OperationID, TenantID: "noop", Kind: in.Kind, Status: tenant.OpRunning}); err != nil {
		t.Fatal(err)
	}
	in.Error = &flow.CaughtError{Error: "States.Timeout", Cause: "timed out"}
	for _, f := range []step{e.steps.RollbackBilling, e.steps.RollbackProvision} {
		if _, err := f(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := e.steps.Release(ctx, in); err != nil || out.Status != tenant.OpFailed {
		t.Fatalf("release: %+v %v", out, err)
	}
	if len(e.rec.events) != 0 || len(e.rec.prices) != 0 {
		t.Fatalf("side effects without a change: %v %v", e.rec.events, e.rec.prices)
	}
	if tn, _ := e.st.GetTenant(ctx, "noop"); tn.Version != 1 {
		t.Fatalf("tenant written: %+v", tn)
	}
}

// TestTypedErrorsKeepTheirNames: the ASL matches on the error type name aws-lambda-go
// reports, so steps must return the typed errors unwrapped.
func TestTypedErrorsKeepTheirNames(t *testing.T) {
	e := newStepEnv(t, "big", tenant.Professional, tenant.Usage{Users: 45, StorageGB: 80, APICallsPerMonth: 600_000})
	ctx := context.Background()
	cases := []struct {
		in   planchange.Input
		want string
	}{
		{planchange.Input{Ref: flow.Ref{OperationID: "op_d", TenantID: "big", Kind: tenant.KindDowngrade}, FromPlan: tenant.Professional, ToPlan: tenant.Starter}, "UsageExceedsLimitError"},
		{planchange.Input{Ref: flow.Ref{OperationID: "op_u", TenantID: "big", Kind: tenant.KindUpgrade}, FromPlan: tenant.Professional, ToPlan: tenant.Free}, "ValidationError"},
		{planchange.Input{Ref: flow.Ref{OperationID: "op_p", TenantID: "big", Kind: tenant.KindUpgrade}, FromPlan: tenant.Free, ToPlan: tenant.Enterprise}, "ConflictError"},
		{planchange.Input{Ref: flow.Ref{OperationID: "op_x", TenantID: "missing", Kind: tenant.KindUpgrade}, FromPlan: tenant.Free, ToPlan: tenant.Starter}, "NotFoundError"},
	}
	for _, c := range cases {
		_, err := e.steps.Validate(ctx, c.in)
		if err == nil {
			t.Fatalf("%s: no error", c.want)
		}
		if got := reflect.TypeOf(err).Elem().Name(); got != c.want {
			t.Errorf("error type %s (%v), want %s", got, err, c.want)
		}
	}
	var ue *tenant.UsageExceedsLimitError
	_, err := e.steps.Validate(ctx, cases[0].in)
	if !errors.As(err, &ue) || len(ue.Violations) != 3 {
		t.Fatalf("violations: %v", err)
	}
	if tn, _ := e.st.GetTenant(ctx, "big"); tn.State != tenant.Active || tn.Version != 1 {
		t.Fatalf("refused validation changed the tenant: %+v", tn)
	}
	// A step never touches a tenant another operation holds.
	if _, err := e.steps.Provision(ctx, cases[0].in); reflect.TypeOf(err).Elem().Name() != "ConflictError" {
		t.Fatalf("provision of an unclaimed tenant: %v", err)
	}
}
