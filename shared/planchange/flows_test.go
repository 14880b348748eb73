package planchange_test

// End-to-end tests of the upgrade and downgrade flows as they run in AWS: an API
// Gateway v2 event goes through the real api bootstrap, which starts the real
// statemachines/*.asl.json on the local Step Functions service, whose Lambda tasks run
// the real step bootstraps against moto and stripe-mock. Faults are injected from
// outside, through the local Lambda service.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/flow/sfnexec"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m))
}

func planChange(t *testing.T, s *stack.Stack, kind, tenantID string, plan tenant.Plan, atPeriodEnd bool) events.APIGatewayV2HTTPResponse {
	body := map[string]any{"plan": plan}
	if kind == tenant.KindDowngrade {
		body["at_period_end"] = atPeriodEnd
	}
	return st.Call(t, s, st.Event(t, "POST", "/tenants/"+tenantID+"/"+kind, "/tenants/{id}/"+kind, map[string]string{"id": tenantID}, body, st.Admin))
}

// priceChanges returns the subscription updates Stripe received for a subscription, as
// "price|idempotency-key".
func priceChanges(s *stack.Stack, subID string) []string {
	var out []string
	for _, r := range s.Stripe.RequestsTo("POST /v1/subscriptions/" + subID) {
		out = append(out, r.Form.Get("items[0][price]")+"|"+r.IdempotencyKey)
	}
	return out
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "api", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUpgradeTechstartThroughFixture(t *testing.T) {
	s := st.Shared(t)
	opID := st.OperationID(t, st.Call(t, s, fixture(t, "upgrade-techstart.json")))
	op := st.WaitDone(t, s, opID)
	if op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	tn := st.Tenant(t, s, "tenant_techstart")
	if tn.Plan != tenant.Starter || tn.State != tenant.Active || tn.Operation != "" {
		t.Fatalf("tenant after upgrade: plan %s state %s op %q", tn.Plan, tn.State, tn.Operation)
	}
	starter, _ := tenant.DefaultCatalog().Limits(tenant.Starter)
	if e := st.Entitlements(t, s, "tenant_techstart"); e.Plan != tenant.Starter || e.Limits != starter {
		t.Fatalf("entitlements %+v", e)
	}
	if ev := st.Events(t, s, "tenant_techstart"); !slices.Equal(ev, []string{"TenantPlanChanged", "TenantEntitlementsChanged"}) {
		t.Fatalf("events %v, want one TenantPlanChanged", ev)
	}
	if tr := st.Transitions(t, s, "tenant_techstart"); !slices.Equal(tr, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
	if pc := priceChanges(s, "sub_tenant_techstart"); !slices.Equal(pc, []string{"price_starter|" + opID + ":0:billing"}) {
		t.Fatalf("stripe price changes %v", pc)
	}
}

func TestDowngradeAcmeSucceeds(t *testing.T) {
	s := st.Shared(t)
	opID := st.OperationID(t, st.Call(t, s, fixture(t, "downgrade-acme.json")))
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	tn := st.Tenant(t, s, "tenant_acme")
	if tn.Plan != tenant.Free || tn.State != tenant.Active {
		t.Fatalf("tenant after downgrade: %s %s", tn.Plan, tn.State)
	}
	if tr := st.Transitions(t, s, "tenant_acme"); !slices.Equal(tr, []string{"ACTIVE->DOWNGRADING", "DOWNGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
	if pc := priceChanges(s, "sub_tenant_acme"); !slices.Equal(pc, []string{"price_free|" + opID + ":0:billing"}) {
		t.Fatalf("stripe price changes %v", pc)
	}
}

func TestDowngradeEnterpriseRefusedWithEveryViolation(t *testing.T) {
	s := st.Shared(t)
	resp := st.Call(t, s, fixture(t, "downgrade-enterprise-blocked.json"))
	if resp.StatusCode != 422 || !strings.HasPrefix(resp.Headers["Content-Type"]+resp.Headers["content-type"], "application/problem+json") {
		t.Fatalf("want 422 problem, got %d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	var p struct {
		Violations []tenant.Violation `json:"violations"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatal(err)
	}
	want := []tenant.Violation{{Limit: "users", Usage: 45, Max: 10}, {Limit: "storage_gb", Usage: 80, Max: 10}, {Limit: "api_calls_per_month", Usage: 600000, Max: 100000}}
	if !slices.Equal(p.Violations, want) {
		t.Fatalf("violations %+v, want %+v", p.Violations, want)
	}
	if tn := st.Tenant(t, s, "tenant_enterprise"); tn.Plan != tenant.Professional || tn.State != tenant.Active || tn.Version != 1 {
		t.Fatalf("refused downgrade changed the tenant: %+v", tn)
	}
}

// effectivePrice is the price the subscription is on after the recorded Stripe
// requests: Stripe applies each idempotency key once, so repeats of a key count once;
// with no change at all it is the initial plan's price.
func effectivePrice(s *stack.Stack, subID string, initial tenant.Plan) string {
	price, seen := "price_"+string(initial), map[string]bool{}
	for _, r := range s.Stripe.RequestsTo("POST /v1/subscriptions/" + subID) {
		if seen[r.IdempotencyKey] {
			continue
		}
		seen[r.IdempotencyKey] = true
		if p := r.Form.Get("items[0][price]"); p != "" {
			price = p
		}
	}
	return price
}

// fault is one cell of the fault matrix.
type fault struct {
	name string
	spec lambdasvc.FaultSpec
	// recovers says the flow still succeeds (the retry policy absorbs the fault).
	recovers bool
}

// faultModes are {fail before, fail after the handler} x {once, always}. "Once" uses
// errors the ASL retries; "before, always" a final error; "after, always" a timeout on
// every attempt, so the side effects happen each time and the retries run out.
func faultModes(step string) []fault {
	return []fault{
		{"before-once", lambdasvc.FaultSpec{Function: step, Count: 1, ErrorType: "Lambda.ServiceException", Message: "injected before " + step}, true},
		{"before-always", lambdasvc.FaultSpec{Function: step, Count: -1, ErrorType: "InjectedFault", Message: "injected before " + step}, false},
		{"after-once", lambdasvc.FaultSpec{Function: step, After: true, Count: 1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + step}, true},
		{"after-always", lambdasvc.FaultSpec{Function: step, After: true, Count: -1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + step}, false},
	}
}

type planFlow struct {
	kind     string
	example  string
	from, to tenant.Plan
}

var planFlows = []planFlow{
	{tenant.KindUpgrade, "tenant_techstart", tenant.Free, tenant.Starter},
	{tenant.KindDowngrade, "tenant_acme", tenant.Starter, tenant.Free},
}

// checkSettled asserts what must hold whenever an execution has ended: the tenant is
// ACTIVE and held by nobody, and plan = entitlements = effective Stripe price.
func checkSettled(t *testing.T, s *stack.Stack, id string, initial tenant.Plan) *tenant.Tenant {
	t.Helper()
	tn := st.Tenant(t, s, id)
	ent := st.Entitlements(t, s, id)
	limits, _ := tenant.DefaultCatalog().Limits(tn.Plan)
	if tn.State != tenant.Active || tn.Operation != "" {
		t.Errorf("tenant left %s held by %q", tn.State, tn.Operation)
	}
	if ent.Plan != tn.Plan || ent.Limits != limits {
		t.Errorf("entitlements on %s, tenant on %s", ent.Plan, tn.Plan)
	}
	if p := effectivePrice(s, "sub_"+id, initial); p != "price_"+string(tn.Plan) {
		t.Errorf("stripe price %s, tenant on %s", p, tn.Plan)
	}
	return tn
}

// TestFaultMatrix runs every step of upgrade and downgrade under each fault mode and
// checks, after the execution ended, that nothing is half-changed and the operation
// says what really happened: a fault absorbed by retries ends SUCCEEDED; a commit whose
// answer was lost ends SUCCEEDED (never rolled back); any other final failure ends
// FAILED with the tenant back on its plan, entitlements and price reverted.
func TestFaultMatrix(t *testing.T) {
	s := st.Shared(t)
	steps := []string{"PlanValidateFunction", "PlanProvisionFunction", "PlanBillingFunction", "PlanCommitFunction"}
	run, passed := 0, 0
	for _, f := range planFlows {
		for _, step := range steps {
			for _, m := range faultModes(step) {
				run++
				id := fmt.Sprintf("fm-%d-%s", run, f.kind)
				ok := t.Run(fmt.Sprintf("%s/%s/%s", f.kind, step, m.name), func(t *testing.T) {
					st.Clone(t, s, f.example, id)
					defer s.Lambda.ClearFaults()
					if err := s.Lambda.Inject(m.spec); err != nil {
						t.Fatal(err)
					}
					opID := st.OperationID(t, planChange(t, s, f.kind, id, f.to, false))
					op := st.WaitDone(t, s, opID)
					s.Lambda.ClearFaults()
					tn := checkSettled(t, s, id, f.from)
					succeeds := m.recovers || (step == "PlanCommitFunction" && m.spec.After)
					want, plan := "FAILED", f.from
					if succeeds {
						want, plan = "SUCCEEDED", f.to
					}
					if op["status"] != want || tn.Plan != plan {
						t.Errorf("operation %v, tenant on %s; want %s on %s", op["status"], tn.Plan, want, plan)
					}
					if !succeeds && (op["error"] != m.spec.ErrorType || !strings.Contains(fmt.Sprint(op["cause"]), m.spec.Message)) {
						t.Errorf("operation error %v / %v, want %s with the injected cause", op["error"], op["cause"], m.spec.ErrorType)
					}
					if op["needs_attention"] == true || tn.Attention != "" {
						t.Errorf("needs attention after a complete compensation: %v", op)
					}
					busy := "UPGRADING"
					if f.kind == tenant.KindDowngrade {
						busy = "DOWNGRADING"
					}
					claimed := step != "PlanValidateFunction" || m.spec.After || m.recovers
					wantTr := []string(nil)
					if claimed {
						wantTr = []string{"ACTIVE->" + busy, busy + "->ACTIVE"}
					}
					if tr := st.Transitions(t, s, id); !slices.Equal(tr, wantTr) {
						t.Errorf("audit %v, want %v", tr, wantTr)
					}
				})
				if ok {
					passed++
				}
			}
		}
	}
	t.Logf("fault matrix: %d cases run, %d passed", run, passed)
}

// TestCompensationFailingAlways makes the forward step and every compensation step
// fail for good: the tenant is still released (ACTIVE, not busy), the operation says
// FAILED with compensation_incomplete and needs_attention, and no other flow may start
// on the tenant. Once the faults are gone, the operator retry finishes the
// compensation and everything agrees again.
func TestCompensationFailingAlways(t *testing.T) {
	s := st.Shared(t)
	for i, f := range planFlows {
		t.Run(f.kind, func(t *testing.T) {
			id := fmt.Sprintf("compfail-%d", i)
			st.Clone(t, s, f.example, id)
			defer s.Lambda.ClearFaults()
			for _, fn := range []string{"PlanCommitFunction", "PlanRollbackBillingFunction", "PlanRollbackProvisionFunction"} {
				if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault", Message: "injected in " + fn}); err != nil {
					t.Fatal(err)
				}
			}
			opID := st.OperationID(t, planChange(t, s, f.kind, id, f.to, false))
			op := st.WaitDone(t, s, opID)
			tn := st.Tenant(t, s, id)
			if op["status"] != "FAILED" || op["needs_attention"] != true || !slices.Equal(anyStrings(op["compensation_incomplete"]), []string{"billing", "entitlements"}) {
				t.Fatalf("operation %v", op)
			}
			if tn.State != tenant.Active || tn.Operation != "" || tn.Attention != opID || tn.Plan != f.from {
				t.Fatalf("tenant %s held by %q attention %q plan %s", tn.State, tn.Operation, tn.Attention, tn.Plan)
			}
			// Nothing else starts on top of it.
			if resp := planChange(t, s, f.kind, id, f.to, false); resp.StatusCode != 409 {
				t.Fatalf("new change while attention is needed: %d %s", resp.StatusCode, resp.Body)
			}
			s.Lambda.ClearFaults()
			resp := st.Call(t, s, st.Event(t, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil, st.Admin))
			if resp.StatusCode != 202 {
				t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
			}
			op = st.WaitDone(t, s, opID)
			if op["status"] != "FAILED" || op["needs_attention"] == true || op["compensation_incomplete"] != nil || op["attempt"] != float64(1) {
				t.Fatalf("after retry: %v", op)
			}
			if tn := checkSettled(t, s, id, f.from); tn.Plan != f.from || tn.Attention != "" {
				t.Fatalf("after retry: plan %s attention %q", tn.Plan, tn.Attention)
			}
			// A second retry has nothing to do.
			if resp := st.Call(t, s, st.Event(t, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil, st.Admin)); resp.StatusCode != 409 {
				t.Fatalf("second retry: %d %s", resp.StatusCode, resp.Body)
			}
		})
	}
}

// TestReleaseFailingAlwaysIsReconciled: when the compensation and even the release
// step keep failing, the execution ends with the tenant still busy; the scheduled
// reconciler releases it and records what was left undone.
func TestReleaseFailingAlwaysIsReconciled(t *testing.T) {
	s := st.Shared(t)
	id := "relfail"
	st.Clone(t, s, "tenant_techstart", id)
	defer s.Lambda.ClearFaults()
	for _, fn := range []string{"PlanBillingFunction", "PlanRollbackProvisionFunction", "PlanReleaseFunction"} {
		if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault", Message: "injected in " + fn}); err != nil {
			t.Fatal(err)
		}
	}
	opID := st.OperationID(t, planChange(t, s, tenant.KindUpgrade, id, tenant.Starter, false))
	if op := st.WaitDone(t, s, opID); op["status"] != "FAILED" {
		t.Fatalf("operation %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Upgrading {
		t.Fatalf("the test needs a stranded tenant; got %s", tn.State)
	}
	s.Lambda.ClearFaults()
	res := reconcile(t, s)
	if !slices.Contains(res.Released, id) {
		t.Fatalf("reconcile %+v did not release %s", res, id)
	}
	tn := st.Tenant(t, s, id)
	op, _ := s.Store().GetOperation(context.Background(), opID)
	if tn.State != tenant.Active || tn.Operation != "" || tn.Plan != tenant.Free || op.Status != tenant.OpFailed || op.Error != "ExecutionEnded" ||
		!slices.Equal(op.CompensationIncomplete, []string{"entitlements"}) || !op.NeedsAttention || tn.Attention != opID {
		t.Fatalf("after reconcile: tenant %s/%s attention %q, operation %+v", tn.State, tn.Plan, tn.Attention, op)
	}
	if again := reconcile(t, s); slices.Contains(again.Released, id) {
		t.Fatalf("released twice: %+v", again)
	}
}

func reconcile(t *testing.T, s *stack.Stack) flow.ReconcileResult {
	t.Helper()
	var out flow.ReconcileResult
	st.Scheduled(t, s, "ReconcileFunction", time.Now().UTC(), &out)
	return out
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// TestUsageReportsNeverRollBackAChange reports usage in a loop while 20 upgrades run:
// a usage report bumps the tenant's version, and no step may fail because of it.
func TestUsageReportsNeverRollBackAChange(t *testing.T) {
	s := st.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("usage-loop-%d", i)
		st.Clone(t, s, "tenant_techstart", ids[i])
	}
	var reports sync.WaitGroup
	var reported int64
	var mu sync.Mutex
	reports.Add(1)
	go func() {
		defer reports.Done()
		ts := s.Store()
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := ts.UpdateUsage(ctx, ids[i%n], tenant.Usage{Users: int64(1 + i%3), StorageGB: 0.1, APICallsPerMonth: int64(i)}); err == nil {
				mu.Lock()
				reported++
				mu.Unlock()
			}
		}
	}()
	ops := make([]string, n)
	for i, id := range ids {
		ops[i] = st.OperationID(t, planChange(t, s, tenant.KindUpgrade, id, tenant.Starter, false))
	}
	rolledBack := 0
	for i, opID := range ops {
		if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
			rolledBack++
			t.Errorf("%s: %v", ids[i], op)
		}
	}
	cancel()
	reports.Wait()
	for _, id := range ids {
		if tn := st.Tenant(t, s, id); tn.Plan != tenant.Starter || tn.State != tenant.Active {
			t.Errorf("%s: %s on %s", id, tn.State, tn.Plan)
		}
	}
	t.Logf("%d upgrades with %d concurrent usage reports: %d rolled back", n, reported, rolledBack)
	if reported < n {
		t.Errorf("only %d usage reports landed during the upgrades; the test did not interleave", reported)
	}
}

// TestSameExecutionTwiceRunsOnce starts one operation twice with the same name and input.
func TestSameExecutionTwiceRunsOnce(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	id := "twice-techstart"
	st.Clone(t, s, "tenant_techstart", id)
	opID := flow.NewOperationID()
	if _, err := s.Store().CreateOperation(ctx, &tenant.Operation{ID: opID, TenantID: id, Kind: tenant.KindUpgrade, Status: tenant.OpRunning, FromPlan: tenant.Free, ToPlan: tenant.Starter}); err != nil {
		t.Fatal(err)
	}
	in := planchange.Input{Ref: flow.Ref{OperationID: opID, TenantID: id, Kind: tenant.KindUpgrade}, FromPlan: tenant.Free, ToPlan: tenant.Starter}
	body, _ := json.Marshal(in)
	client := s.SFNClient()
	arn := s.StateMachines["UpgradeStateMachine"]
	var arns []string
	for range 2 {
		out, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String(opID), Input: aws.String(string(body))})
		if err != nil {
			t.Fatalf("StartExecution: %v", err)
		}
		arns = append(arns, aws.ToString(out.ExecutionArn))
	}
	if arns[0] != arns[1] {
		t.Fatalf("two executions: %v", arns)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	// Once finished, the same start is ExecutionAlreadyExists, which the starter treats
	// as "already started" and which runs nothing.
	if err := flow.StartExecution(ctx, sfnexec.New(client), arn, opID, in); err != nil {
		t.Fatalf("restart of a finished operation: %v", err)
	}
	list, err := client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, e := range list.Executions {
		if aws.ToString(e.Name) == opID {
			runs++
		}
	}
	if runs != 1 {
		t.Fatalf("%d executions named %s", runs, opID)
	}
	if ev := st.Events(t, s, id); !slices.Equal(ev, []string{"TenantPlanChanged", "TenantEntitlementsChanged"}) {
		t.Fatalf("events %v", ev)
	}
	if tr := st.Transitions(t, s, id); !slices.Equal(tr, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
	if pc := priceChanges(s, "sub_"+id); len(pc) != 1 {
		t.Fatalf("stripe price changes %v", pc)
	}
}

// TestPeriodEndDowngradeRunsWhenDue records a period-end downgrade and delivers scheduled
// events before and after its effective time.
func TestPeriodEndDowngradeRunsWhenDue(t *testing.T) {
	s := st.Shared(t)
	id := "periodend-acme"
	st.Clone(t, s, "tenant_acme", id)
	opID := st.OperationID(t, planChange(t, s, tenant.KindDowngrade, id, tenant.Free, true))
	tn := st.Tenant(t, s, id)
	if tn.PendingChange == nil || tn.PendingChange.OperationID != opID || tn.PendingChange.Plan != tenant.Free || tn.Plan != tenant.Starter {
		t.Fatalf("pending change not recorded: %+v", tn)
	}
	due := tn.PendingChange.EffectiveAt
	if r := sweepAt(t, s, due.Add(-time.Hour)); slices.Contains(r.Started, opID) {
		t.Fatalf("sweep an hour early started %v", r.Started)
	}
	if tn := st.Tenant(t, s, id); tn.Plan != tenant.Starter || tn.PendingChange == nil {
		t.Fatalf("early sweep changed the tenant: %+v", tn)
	}
	if r := sweepAt(t, s, due.Add(time.Minute)); !slices.Contains(r.Started, opID) {
		t.Fatalf("sweep after the period end started %v, want %s", r.Started, opID)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	tn = st.Tenant(t, s, id)
	if tn.Plan != tenant.Free || tn.State != tenant.Active || tn.PendingChange != nil {
		t.Fatalf("after the due sweep: %+v", tn)
	}
	if r := sweepAt(t, s, due.Add(2*time.Minute)); slices.Contains(r.Started, opID) {
		t.Fatalf("a finished change was started again: %v", r.Started)
	}
}

// TestDowngradeFitsThroughOverrides: enterprise's usage (45 users, 80 GB, 600k calls)
// exceeds starter, so its downgrade is refused, until an operator overrides those
// limits; the real flow then checks again when it claims the tenant and succeeds. The
// app plane hears both changes, each document newer than the one before, and the
// overrides survive the plan change.
func TestDowngradeFitsThroughOverrides(t *testing.T) {
	s := st.Shared(t)
	const id = "tenant_enterprise"
	if r := planChange(t, s, tenant.KindDowngrade, id, tenant.Starter, false); r.StatusCode != 422 {
		t.Fatalf("downgrade before the overrides: %d %s", r.StatusCode, r.Body)
	}
	body := map[string]any{"limits": map[string]any{"users": 50, "storage_gb": 100, "api_calls_per_month": "unlimited"}, "reason": "migration deal"}
	r := st.Call(t, s, st.Event(t, "PUT", "/tenants/"+id+"/overrides", "/tenants/{id}/overrides", map[string]string{"id": id}, body, st.Admin))
	if r.StatusCode != 200 {
		t.Fatalf("overrides: %d %s", r.StatusCode, r.Body)
	}
	resp := planChange(t, s, tenant.KindDowngrade, id, tenant.Starter, false)
	if resp.StatusCode != 202 {
		t.Fatalf("downgrade with the overrides: %d %s", resp.StatusCode, resp.Body)
	}
	if op := st.WaitDone(t, s, st.OperationID(t, resp)); op["status"] != "SUCCEEDED" {
		t.Fatalf("downgrade %v", op)
	}
	var docs []tenant.EntitlementsDocument
	for _, e := range st.Published(t, s, id) {
		var d tenant.EntitlementsDocument
		if e.DetailType == "TenantEntitlementsChanged" && json.Unmarshal(e.Detail, &d) == nil {
			docs = append(docs, d)
		}
	}
	if len(docs) != 2 || docs[0].Plan != tenant.Professional || docs[1].Plan != tenant.Starter || docs[1].Version <= docs[0].Version {
		t.Fatalf("documents %+v, want the override's (professional) then the downgrade's (starter)", docs)
	}
	last := docs[1]
	if *last.Limits.Users != 50 || *last.Limits.StorageGB != 100 || last.Limits.APICallsPerMonth != nil || !last.Features["custom_domain"] || last.Features["sso"] {
		t.Fatalf("starter with the overrides: %+v", last)
	}
	get := st.Call(t, s, st.Event(t, "GET", "/tenants/"+id+"/entitlements", "/tenants/{id}/entitlements", map[string]string{"id": id}, nil,
		map[string]string{"sub": "svc_app", "scope": "tenants/entitlements"}))
	if get.StatusCode != 200 || get.Headers["ETag"] != last.ETag() {
		t.Fatalf("GET %d %s (ETag %s, the event's %s)", get.StatusCode, get.Body, get.Headers["ETag"], last.ETag())
	}
}
