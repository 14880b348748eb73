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

	"github.com/tenantflow/tenantflow/cmd/devstack/stack"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
	"github.com/tenantflow/tenantflow/shared/testenv"
)

var (
	stk       *stack.Stack
	stkErr    error
	eventsMu  sync.Mutex
	allEvents []stack.Event
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m))
}

// sharedStack starts one stack for the package (building every function once) and
// hands each test that stack freshly reset to the seeded example tenants, so tests
// do not depend on each other's leftovers and `go test -count=N` repeats them.
// Tests in this file do not run in parallel.
func sharedStack(t *testing.T) *stack.Stack {
	t.Helper()
	eventsMu.Lock()
	defer eventsMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if stk == nil && stkErr == nil {
		stk, stkErr = stack.Start(ctx, stack.Options{RetryIntervalsZero: true, Log: &prefixLog{}})
		if stkErr == nil {
			testenv.OnStop(stk.Close)
		}
	}
	if stkErr != nil {
		t.Fatalf("start stack: %v", stkErr)
	}
	if err := stk.Reset(ctx, false); err != nil {
		t.Fatalf("reset stack: %v", err)
	}
	allEvents = nil
	return stk
}

// prefixLog keeps function output out of passing test logs but available on -v.
type prefixLog struct{}

func (prefixLog) Write(p []byte) (int, error) {
	if testing.Verbose() {
		return os.Stderr.Write(p)
	}
	return len(p), nil
}

var admin = map[string]string{"sub": "operator", "scope": "tenants/admin"}

// callAPI sends one HTTP API v2 event through the api bootstrap.
func callAPI(t *testing.T, s *stack.Stack, raw []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	res, err := s.Lambda.Invoke(context.Background(), "ApiFunction", raw)
	if err != nil {
		t.Fatalf("invoke api: %v", err)
	}
	if res.FunctionError != "" {
		t.Fatalf("api function error %s: %s", res.FunctionError, res.Payload)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		t.Fatalf("api response %s: %v", res.Payload, err)
	}
	return resp
}

func apiEvent(t *testing.T, method, path, route string, params map[string]string, body any) []byte {
	t.Helper()
	b, _ := json.Marshal(body)
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + route, RawPath: path, Body: string(b), PathParameters: params,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: method + " " + route, RequestID: "req-" + t.Name(),
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: admin}},
		},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func planChange(t *testing.T, s *stack.Stack, kind, tenantID string, plan tenant.Plan, atPeriodEnd bool) events.APIGatewayV2HTTPResponse {
	body := map[string]any{"plan": plan}
	if kind == tenant.KindDowngrade {
		body["at_period_end"] = atPeriodEnd
	}
	return callAPI(t, s, apiEvent(t, "POST", "/tenants/"+tenantID+"/"+kind, "/tenants/{id}/"+kind, map[string]string{"id": tenantID}, body))
}

func operationID(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	if resp.StatusCode != 202 {
		t.Fatalf("want 202, got %d: %s", resp.StatusCode, resp.Body)
	}
	var out struct {
		OperationID string `json:"operation_id"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil || out.OperationID == "" {
		t.Fatalf("no operation_id in %s", resp.Body)
	}
	return out.OperationID
}

// waitDone polls the operation through the API until it has finished.
func waitDone(t *testing.T, s *stack.Stack, opID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp := callAPI(t, s, apiEvent(t, "GET", "/operations/"+opID, "/operations/{id}", map[string]string{"id": opID}, nil))
		var op map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &op)
		if resp.StatusCode == 200 && (op["status"] == "SUCCEEDED" || op["status"] == "FAILED") {
			return op
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("operation %s did not finish in time", opID)
	return nil
}

// cloneTenant creates a copy of an example tenant under a new id so tests stay independent.
func cloneTenant(t *testing.T, s *stack.Stack, exampleID, id string) *tenant.Tenant {
	t.Helper()
	ctx := context.Background()
	src, err := s.Store().GetTenant(ctx, exampleID)
	if err != nil {
		t.Fatal(err)
	}
	c := *src
	c.ID, c.Billing.SubscriptionID, c.Billing.CustomerID = id, "sub_"+id, "cus_"+id
	out, err := s.Store().CreateTenant(ctx, &c, store.Actor{Who: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := provisionInitial(s, id, c.Plan); err != nil {
		t.Fatal(err)
	}
	return out
}

func provisionInitial(s *stack.Stack, id string, plan tenant.Plan) error {
	limits, _ := tenant.DefaultCatalog().Limits(plan)
	_, err := s.Store().PutEntitlements(context.Background(), &tenant.Entitlements{TenantID: id, Plan: plan, Limits: limits, EventPublished: true}, 0)
	return err
}

// tenantEvents returns the lifecycle events captured for one tenant so far.
func tenantEvents(t *testing.T, s *stack.Stack, tenantID string) []string {
	t.Helper()
	eventsMu.Lock()
	defer eventsMu.Unlock()
	evs, err := s.DrainEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	allEvents = append(allEvents, evs...)
	var out []string
	for _, e := range allEvents {
		var d struct {
			TenantID string `json:"tenant_id"`
		}
		_ = json.Unmarshal(e.Detail, &d)
		if d.TenantID == tenantID {
			out = append(out, e.DetailType)
		}
	}
	return out
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

func transitions(t *testing.T, s *stack.Stack, id string) []string {
	t.Helper()
	trail, err := s.Store().Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range trail {
		if a.From != a.To && a.From != "" {
			out = append(out, string(a.From)+"->"+string(a.To))
		}
	}
	return out
}

func mustTenant(t *testing.T, s *stack.Stack, id string) *tenant.Tenant {
	t.Helper()
	tn, err := s.Store().GetTenant(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func mustEntitlements(t *testing.T, s *stack.Stack, id string) *tenant.Entitlements {
	t.Helper()
	e, err := s.Store().GetEntitlements(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
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
	s := sharedStack(t)
	opID := operationID(t, callAPI(t, s, fixture(t, "upgrade-techstart.json")))
	op := waitDone(t, s, opID)
	if op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	tn := mustTenant(t, s, "tenant_techstart")
	if tn.Plan != tenant.Starter || tn.State != tenant.Active || tn.Operation != "" {
		t.Fatalf("tenant after upgrade: plan %s state %s op %q", tn.Plan, tn.State, tn.Operation)
	}
	starter, _ := tenant.DefaultCatalog().Limits(tenant.Starter)
	if e := mustEntitlements(t, s, "tenant_techstart"); e.Plan != tenant.Starter || e.Limits != starter {
		t.Fatalf("entitlements %+v", e)
	}
	if ev := tenantEvents(t, s, "tenant_techstart"); !slices.Equal(ev, []string{"TenantPlanChanged"}) {
		t.Fatalf("events %v, want one TenantPlanChanged", ev)
	}
	if tr := transitions(t, s, "tenant_techstart"); !slices.Equal(tr, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
	if pc := priceChanges(s, "sub_tenant_techstart"); !slices.Equal(pc, []string{"price_starter|" + opID + ":billing"}) {
		t.Fatalf("stripe price changes %v", pc)
	}
}

func TestDowngradeAcmeSucceeds(t *testing.T) {
	s := sharedStack(t)
	opID := operationID(t, callAPI(t, s, fixture(t, "downgrade-acme.json")))
	if op := waitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	tn := mustTenant(t, s, "tenant_acme")
	if tn.Plan != tenant.Free || tn.State != tenant.Active {
		t.Fatalf("tenant after downgrade: %s %s", tn.Plan, tn.State)
	}
	if tr := transitions(t, s, "tenant_acme"); !slices.Equal(tr, []string{"ACTIVE->DOWNGRADING", "DOWNGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
	if pc := priceChanges(s, "sub_tenant_acme"); !slices.Equal(pc, []string{"price_free|" + opID + ":billing"}) {
		t.Fatalf("stripe price changes %v", pc)
	}
}

func TestDowngradeEnterpriseRefusedWithEveryViolation(t *testing.T) {
	s := sharedStack(t)
	resp := callAPI(t, s, fixture(t, "downgrade-enterprise-blocked.json"))
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
	if tn := mustTenant(t, s, "tenant_enterprise"); tn.Plan != tenant.Professional || tn.State != tenant.Active || tn.Version != 1 {
		t.Fatalf("refused downgrade changed the tenant: %+v", tn)
	}
}

// TestFaultMatrix fails provisioning, billing and commit on both flows, always and
// once with a retryable error.
func TestFaultMatrix(t *testing.T) {
	s := sharedStack(t)
	catalog := tenant.DefaultCatalog()
	flows := []struct {
		kind      string
		example   string
		from, to  tenant.Plan
		provFirst bool // provisioning runs before billing
	}{
		{tenant.KindUpgrade, "tenant_techstart", tenant.Free, tenant.Starter, true},
		{tenant.KindDowngrade, "tenant_acme", tenant.Starter, tenant.Free, false},
	}
	steps := []string{"PlanProvisionFunction", "PlanBillingFunction", "PlanCommitFunction"}
	n := 0
	for _, f := range flows {
		for _, step := range steps {
			for _, mode := range []string{"always", "once-retryable"} {
				n++
				id := fmt.Sprintf("fm-%d-%s", n, f.kind)
				t.Run(fmt.Sprintf("%s/%s/%s", f.kind, step, mode), func(t *testing.T) {
					cloneTenant(t, s, f.example, id)
					defer s.Lambda.ClearFaults()
					if mode == "always" {
						if err := s.Lambda.InjectFault(step, -1, "InjectedFault", "injected failure in "+step); err != nil {
							t.Fatal(err)
						}
					} else if err := s.Lambda.InjectFault(step, 1, "Lambda.ServiceException", "injected transient failure"); err != nil {
						t.Fatal(err)
					}
					opID := operationID(t, planChange(t, s, f.kind, id, f.to, false))
					op := waitDone(t, s, opID)
					s.Lambda.ClearFaults()
					tn := mustTenant(t, s, id)
					ent := mustEntitlements(t, s, id)
					evs := tenantEvents(t, s, id)
					pcs := priceChanges(s, "sub_"+id)
					busy := "UPGRADING"
					if f.kind == tenant.KindDowngrade {
						busy = "DOWNGRADING"
					}
					if tr := transitions(t, s, id); !slices.Equal(tr, []string{"ACTIVE->" + busy, busy + "->ACTIVE"}) {
						t.Errorf("audit %v", tr)
					}
					if mode == "once-retryable" {
						toLimits, _ := catalog.Limits(f.to)
						if op["status"] != "SUCCEEDED" || tn.Plan != f.to || tn.State != tenant.Active || ent.Limits != toLimits {
							t.Fatalf("retry did not recover: op %v tenant %s/%s entitlements %+v", op, tn.Plan, tn.State, ent)
						}
						if !slices.Equal(evs, []string{"TenantPlanChanged"}) {
							t.Errorf("events %v, want one TenantPlanChanged", evs)
						}
						if want := []string{"price_" + string(f.to) + "|" + opID + ":billing"}; !slices.Equal(pcs, want) {
							t.Errorf("stripe price changes %v, want %v", pcs, want)
						}
						return
					}
					fromLimits, _ := catalog.Limits(f.from)
					if op["status"] != "FAILED" || op["error"] != "InjectedFault" || !strings.Contains(fmt.Sprint(op["cause"]), "injected failure in "+step) {
						t.Errorf("operation %v, want FAILED with the injected cause", op)
					}
					if tn.Plan != f.from || tn.State != tenant.Active || tn.Operation != "" {
						t.Errorf("tenant %s/%s op %q, want ACTIVE on %s", tn.Plan, tn.State, tn.Operation, f.from)
					}
					if ent.Plan != f.from || ent.Limits != fromLimits {
						t.Errorf("entitlements %+v, want %s limits", ent, f.from)
					}
					// Billing is unchanged, or changed and reverted with its own key.
					billed := step == "PlanCommitFunction" || (step == "PlanProvisionFunction" && !f.provFirst)
					wantPC := []string(nil)
					if billed {
						wantPC = []string{"price_" + string(f.to) + "|" + opID + ":billing", "price_" + string(f.from) + "|" + opID + ":billing-rollback"}
					}
					if !slices.Equal(pcs, wantPC) {
						t.Errorf("stripe price changes %v, want %v", pcs, wantPC)
					}
					provisioned := step == "PlanCommitFunction" || (step == "PlanBillingFunction" && f.provFirst)
					wantEv := []string(nil)
					if provisioned {
						wantEv = []string{"TenantPlanChanged", "TenantPlanChangeReverted"}
					}
					if !slices.Equal(evs, wantEv) {
						t.Errorf("events %v, want %v", evs, wantEv)
					}
				})
			}
		}
	}
}

// TestSameExecutionTwiceRunsOnce starts one operation twice with the same name and input.
func TestSameExecutionTwiceRunsOnce(t *testing.T) {
	s := sharedStack(t)
	ctx := context.Background()
	id := "twice-techstart"
	cloneTenant(t, s, "tenant_techstart", id)
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
	if op := waitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	// Once finished, the same start is ExecutionAlreadyExists, which the starter treats
	// as "already started" and which runs nothing.
	if err := flow.StartExecution(ctx, client, arn, opID, in); err != nil {
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
	if ev := tenantEvents(t, s, id); !slices.Equal(ev, []string{"TenantPlanChanged"}) {
		t.Fatalf("events %v", ev)
	}
	if tr := transitions(t, s, id); !slices.Equal(tr, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
	if pc := priceChanges(s, "sub_"+id); len(pc) != 1 {
		t.Fatalf("stripe price changes %v", pc)
	}
}

// TestPeriodEndDowngradeRunsWhenDue records a period-end downgrade and delivers scheduled
// events before and after its effective time.
func TestPeriodEndDowngradeRunsWhenDue(t *testing.T) {
	s := sharedStack(t)
	id := "periodend-acme"
	cloneTenant(t, s, "tenant_acme", id)
	opID := operationID(t, planChange(t, s, tenant.KindDowngrade, id, tenant.Free, true))
	tn := mustTenant(t, s, id)
	if tn.PendingChange == nil || tn.PendingChange.OperationID != opID || tn.PendingChange.Plan != tenant.Free || tn.Plan != tenant.Starter {
		t.Fatalf("pending change not recorded: %+v", tn)
	}
	due := tn.PendingChange.EffectiveAt
	sweep := func(at time.Time) planchange.SweepResult {
		ev := events.CloudWatchEvent{Version: "0", ID: "sched-" + at.Format("150405"), DetailType: "Scheduled Event", Source: "aws.events",
			AccountID: testenv.AccountID, Time: at, Region: testenv.Region, Resources: []string{"arn:aws:events:us-east-1:123456789012:rule/sweep"}, Detail: json.RawMessage("{}")}
		raw, _ := json.Marshal(ev)
		res, err := s.Lambda.Invoke(context.Background(), "DowngradeSweepFunction", raw)
		if err != nil || res.FunctionError != "" {
			t.Fatalf("sweep: %v %s %s", err, res.FunctionError, res.Payload)
		}
		var out planchange.SweepResult
		if err := json.Unmarshal(res.Payload, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if r := sweep(due.Add(-time.Hour)); slices.Contains(r.Started, opID) {
		t.Fatalf("sweep an hour early started %v", r.Started)
	}
	if tn := mustTenant(t, s, id); tn.Plan != tenant.Starter || tn.PendingChange == nil {
		t.Fatalf("early sweep changed the tenant: %+v", tn)
	}
	if r := sweep(due.Add(time.Minute)); !slices.Contains(r.Started, opID) {
		t.Fatalf("sweep after the period end started %v, want %s", r.Started, opID)
	}
	if op := waitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	tn = mustTenant(t, s, id)
	if tn.Plan != tenant.Free || tn.State != tenant.Active || tn.PendingChange != nil {
		t.Fatalf("after the due sweep: %+v", tn)
	}
	if r := sweep(due.Add(2 * time.Minute)); slices.Contains(r.Started, opID) {
		t.Fatalf("a finished change was started again: %v", r.Started)
	}
}
