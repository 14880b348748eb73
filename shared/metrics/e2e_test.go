package metrics_test

// End-to-end tests of the operating metrics: real flows on the local stack (the api
// bootstrap, the real state machines and step bootstraps), and the EMF lines the
// functions printed on their stdout, read back from the captured function logs, as
// CloudWatch Logs would receive them from Lambda.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/metrics"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// TestMetricsOfSucceedingFlows runs an upgrade, a deletion, a win-back reactivation, a
// purge and an export side by side, and reads what each committing step reported.
func TestMetricsOfSucceedingFlows(t *testing.T) {
	s := st.Shared(t)
	logs := st.CaptureLogs(t)
	begin := time.Now()
	now := begin.UTC()
	st.Clone(t, s, "tenant_techstart", "m-up")
	st.Clone(t, s, "tenant_acme", "m-del")
	deletedClone(t, s, "tenant_acme", "m-back", now.AddDate(0, 0, -1))
	deletedClone(t, s, "tenant_acme", "m-purge", now.AddDate(0, 0, -31))

	up := st.OperationID(t, api(t, s, "POST", "/tenants/m-up/upgrade", "/tenants/{id}/upgrade", "m-up", map[string]any{"plan": "starter"}))
	del := st.OperationID(t, api(t, s, "DELETE", "/tenants/m-del", "/tenants/{id}", "m-del", nil))
	back := st.OperationID(t, api(t, s, "POST", "/tenants/m-back/reactivate", "/tenants/{id}/reactivate", "m-back", map[string]any{"plan": "professional"}))
	purgeOp := startPurge(t, s, now)
	exp := startExport(t, s, "tenant_acme")

	for _, op := range []string{up, del, back} {
		if got := st.WaitDone(t, s, op); got["status"] != "SUCCEEDED" {
			t.Fatalf("operation %v", got)
		}
	}
	if op := waitOperation(t, s, purgeOp); op.Status != tenant.OpSucceeded {
		t.Fatalf("purge %+v", op)
	}
	waitExport(t, s, "tenant_acme", exp, "completed")
	elapsed := float64(time.Since(begin).Milliseconds())

	got := emitted(t, logs, "PlanCommitFunction", up)
	expect(t, got, []metric{
		{Name: metrics.TransitionsSucceeded, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "upgrade"}, Sets: [][]string{{"Flow"}}},
		{Name: metrics.OperationDuration, Unit: "Milliseconds", Dims: map[string]string{"Flow": "upgrade", "Plan": "starter"}, Sets: [][]string{{"Flow", "Plan"}}},
	})
	if d := got[1].Value; d <= 0 || d > elapsed {
		t.Errorf("upgrade took %v ms by its metric, the test %v ms", d, elapsed)
	}
	expect(t, emitted(t, logs, "LifecycleFinishFunction", del), []metric{
		{Name: metrics.TransitionsSucceeded, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "deletion"}, Sets: [][]string{{"Flow"}}},
		{Name: metrics.OperationDuration, Unit: "Milliseconds", Dims: map[string]string{"Flow": "deletion", "Plan": "starter"}, Sets: [][]string{{"Flow", "Plan"}}},
	})
	expect(t, emitted(t, logs, "LifecycleFinishFunction", back), []metric{
		{Name: metrics.TransitionsSucceeded, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "reactivation"}, Sets: [][]string{{"Flow"}}},
		{Name: metrics.OperationDuration, Unit: "Milliseconds", Dims: map[string]string{"Flow": "reactivation", "Plan": "professional"}, Sets: [][]string{{"Flow", "Plan"}}},
	})
	expect(t, emitted(t, logs, "PurgeVerifyFunction", purgeOp), []metric{
		{Name: metrics.DeletionVerificationsPassed, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "purge"}, Sets: [][]string{{"Flow"}}},
	})
	expect(t, emitted(t, logs, "PurgeFinishFunction", purgeOp), []metric{
		{Name: metrics.TransitionsSucceeded, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "purge"}, Sets: [][]string{{"Flow"}}},
		{Name: metrics.OperationDuration, Unit: "Milliseconds", Dims: map[string]string{"Flow": "purge", "Plan": "starter"}, Sets: [][]string{{"Flow", "Plan"}}},
	})
	expect(t, emitted(t, logs, "ExportFinalizeFunction", exp), []metric{
		{Name: metrics.ExportsCompleted, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "export"}, Sets: [][]string{{"Flow"}}},
	})
	// Forward steps other than the commit report nothing.
	if got := emitted(t, logs, "PlanProvisionFunction", up); len(got) != 0 {
		t.Errorf("PlanProvisionFunction emitted %+v", got)
	}
}

// TestMetricsOfFailingFlows fails an upgrade, a reactivation, a suspension (whose
// compensation cannot finish: needs attention), a purge whose sources never verify
// empty and an export, and reads what each release step reported.
func TestMetricsOfFailingFlows(t *testing.T) {
	s := st.Shared(t)
	logs := st.CaptureLogs(t)
	now := time.Now().UTC()
	defer s.Lambda.ClearFaults()
	for _, f := range []lambdasvc.FaultSpec{
		{Function: "PlanBillingFunction", Count: -1, ErrorType: "InjectedFault", Message: "injected"},
		{Function: "LifecycleAccessFunction", Count: -1, ErrorType: "InjectedFault", Message: "injected"},
		{Function: "PurgeVerifyFunction", Count: -1, ErrorType: "NotEmptyError", Message: "tenant_data still holds 1 item"},
		{Function: "ExportChunkFunction", Count: -1, ErrorType: "InjectedFault", Message: "injected"},
	} {
		if err := s.Lambda.Inject(f); err != nil {
			t.Fatal(err)
		}
	}
	st.Clone(t, s, "tenant_techstart", "m-up-fail")
	st.Clone(t, s, "tenant_acme", "m-susp")
	deletedClone(t, s, "tenant_acme", "m-back-fail", now.AddDate(0, 0, -1))
	deletedClone(t, s, "tenant_acme", "m-purge-fail", now.AddDate(0, 0, -31))

	up := st.OperationID(t, api(t, s, "POST", "/tenants/m-up-fail/upgrade", "/tenants/{id}/upgrade", "m-up-fail", map[string]any{"plan": "starter"}))
	back := st.OperationID(t, api(t, s, "POST", "/tenants/m-back-fail/reactivate", "/tenants/{id}/reactivate", "m-back-fail", map[string]any{"plan": "starter"}))
	susp := st.OperationID(t, api(t, s, "POST", "/tenants/m-susp/suspend", "/tenants/{id}/suspend", "m-susp", map[string]any{"reason": "chargeback"}))
	purgeOp := startPurge(t, s, now)
	exp := startExport(t, s, "tenant_techstart")

	for _, op := range []string{up, back, susp} {
		if got := st.WaitDone(t, s, op); got["status"] != "FAILED" || (got["needs_attention"] == true) != (op == susp) {
			t.Fatalf("operation %v", got)
		}
	}
	if op := waitOperation(t, s, purgeOp); op.Status != tenant.OpFailed || op.Error != "NotEmptyError" {
		t.Fatalf("purge %+v", op)
	}
	waitExport(t, s, "tenant_techstart", exp, "failed")

	failed := func(flow string) metric {
		return metric{Name: metrics.TransitionsFailed, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": flow}, Sets: [][]string{{"Flow"}, {}}}
	}
	expect(t, emitted(t, logs, "PlanReleaseFunction", up), []metric{failed("upgrade")})
	expect(t, emitted(t, logs, "LifecycleReleaseFunction", back), []metric{failed("reactivation")})
	got := emitted(t, logs, "LifecycleReleaseFunction", susp)
	expect(t, got, []metric{failed("suspension"),
		{Name: metrics.TenantsNeedingAttention, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "suspension"}, Sets: [][]string{{"Flow"}, {}}}})
	if p := got[1].Root; p["compensation_incomplete"] != "entitlements" || p["error"] != "InjectedFault" || p["tenant_id"] != "m-susp" {
		t.Errorf("needs-attention line without its context: %v", p)
	}
	expect(t, emitted(t, logs, "PurgeReleaseFunction", purgeOp), []metric{failed("purge"),
		{Name: metrics.DeletionVerificationsFailed, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "purge"}, Sets: [][]string{{"Flow"}}}})
	expect(t, emitted(t, logs, "ExportReleaseFunction", exp), []metric{
		{Name: metrics.ExportsFailed, Unit: "Count", Value: 1, Dims: map[string]string{"Flow": "export"}, Sets: [][]string{{"Flow"}}}})
}

// metric is one EMF line as CloudWatch would extract it.
type metric struct {
	Namespace string
	Name      string
	Unit      string
	Value     float64 // not compared for durations (expect leaves 0 alone)
	Dims      map[string]string
	Sets      [][]string
	Root      map[string]any
}

// emitted returns the metric lines function fn printed for operation opID. It waits
// for the step's "step done" line for that operation (flow.Handler prints it after
// the handler returned), so every line the step printed is in.
func emitted(t *testing.T, logs *st.LogCapture, fn, opID string) []metric {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []metric
		done := false
		for _, l := range logs.Lines() {
			if l.Function != fn || !strings.Contains(l.Text, opID) {
				continue
			}
			var root map[string]any
			if json.Unmarshal([]byte(l.Text), &root) != nil || root["operation_id"] != opID {
				continue
			}
			if root["msg"] == "step done" {
				done = true
			}
			if _, ok := root["_aws"]; ok {
				out = append(out, parse(t, l.Text, root))
			}
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no \"step done\" for %s", fn, opID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parse reads one EMF document the way CloudWatch Logs does: the directive names the
// metric and its dimension sets, and the values are members of the root.
func parse(t *testing.T, line string, root map[string]any) metric {
	t.Helper()
	var doc struct {
		AWS struct {
			Timestamp         int64 `json:"Timestamp"`
			CloudWatchMetrics []struct {
				Namespace  string     `json:"Namespace"`
				Dimensions [][]string `json:"Dimensions"`
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal([]byte(line), &doc); err != nil || len(doc.AWS.CloudWatchMetrics) != 1 || len(doc.AWS.CloudWatchMetrics[0].Metrics) != 1 {
		t.Fatalf("not one metric in %s: %v", line, err)
	}
	if age := time.Since(time.UnixMilli(doc.AWS.Timestamp)); age < 0 || age > 5*time.Minute {
		t.Errorf("Timestamp %d is not the time of the event: %s", doc.AWS.Timestamp, line)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	m := metric{Namespace: d.Namespace, Name: d.Metrics[0].Name, Unit: d.Metrics[0].Unit, Sets: d.Dimensions, Dims: map[string]string{}, Root: root}
	v, ok := root[m.Name].(float64)
	if !ok {
		t.Fatalf("metric %s has no numeric value: %s", m.Name, line)
	}
	m.Value = v
	for _, set := range d.Dimensions {
		for _, k := range set {
			s, ok := root[k].(string)
			if !ok || s == "" {
				t.Fatalf("dimension %s has no string value: %s", k, line)
			}
			m.Dims[k] = s
		}
	}
	return m
}

// expect compares what a step emitted with want, in order: names, units, values
// (except durations), dimensions and dimension sets, and the namespace of the stage.
func expect(t *testing.T, got, want []metric) {
	t.Helper()
	names := func(ms []metric) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	if !slices.Equal(names(got), names(want)) {
		t.Fatalf("emitted %v, want %v", names(got), names(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Namespace != metrics.NamespaceFor("dev") || g.Unit != w.Unit || !reflect.DeepEqual(g.Dims, w.Dims) || !reflect.DeepEqual(g.Sets, w.Sets) ||
			(w.Unit != "Milliseconds" && g.Value != w.Value) {
			t.Errorf("%s: got %s %v %s dims %v sets %v, want %v %s dims %v sets %v", w.Name, g.Namespace, g.Value, g.Unit, g.Dims, g.Sets, w.Value, w.Unit, w.Dims, w.Sets)
		}
	}
}

// api sends one admin request through the api bootstrap.
func api(t *testing.T, s *stack.Stack, method, path, route, id string, body any) events.APIGatewayV2HTTPResponse {
	t.Helper()
	return st.Call(t, s, st.Event(t, method, path, route, map[string]string{"id": id}, body, st.Admin))
}

// deletedClone is a copy of an example tenant soft-deleted at deletedAt with a 30-day
// retention: DELETED, entitlements revoked.
func deletedClone(t *testing.T, s *stack.Stack, example, id string, deletedAt time.Time) {
	t.Helper()
	c := *st.Tenant(t, s, example)
	after := deletedAt.AddDate(0, 0, 30)
	c.ID, c.State, c.DeletedAt, c.PurgeAfter, c.RetentionDays = id, tenant.Deleted, &deletedAt, &after, 30
	c.Billing.SubscriptionID, c.Billing.CustomerID = "sub_"+id, "cus_"+id
	ctx := context.Background()
	if _, err := s.Store().CreateTenant(ctx, &c, store.Actor{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store().PutEntitlements(ctx, &tenant.Entitlements{TenantID: id, Plan: c.Plan, Access: tenant.AccessRevoked, EventPublished: true}, 0); err != nil {
		t.Fatal(err)
	}
}

// startPurge delivers the purge sweep's scheduled event at now and returns the one
// purge it started.
func startPurge(t *testing.T, s *stack.Stack, now time.Time) string {
	t.Helper()
	var res purge.SweepResult
	st.Scheduled(t, s, "PurgeSweepFunction", now, &res)
	if len(res.Started) != 1 {
		t.Fatalf("purge sweep %+v, want one purge", res)
	}
	return res.Started[0]
}

// waitOperation polls an operation record until it has finished.
func waitOperation(t *testing.T, s *stack.Stack, id string) *tenant.Operation {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		op, err := s.Store().GetOperation(context.Background(), id)
		if err == nil && op.Done() {
			return op
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("operation %s did not finish in time", id)
	return nil
}

// startExport requests an export of the tenant and returns its id.
func startExport(t *testing.T, s *stack.Stack, id string) string {
	t.Helper()
	resp := api(t, s, "POST", "/tenants/"+id+"/exports", "/tenants/{id}/exports", id, nil)
	exp, _ := st.Body(t, resp)["export_id"].(string)
	if resp.StatusCode != 202 || exp == "" {
		t.Fatalf("POST exports: %d %s", resp.StatusCode, resp.Body)
	}
	return exp
}

// waitExport polls the export until it reaches status (completed or failed).
func waitExport(t *testing.T, s *stack.Stack, id, exp, status string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp := st.Call(t, s, st.Event(t, "GET", "/tenants/"+id+"/exports/"+exp, "/tenants/{id}/exports/{export_id}",
			map[string]string{"id": id, "export_id": exp}, nil, st.Admin))
		switch got := st.Body(t, resp)["status"]; got {
		case status:
			return
		case "completed", "failed":
			t.Fatalf("export %s is %s, want %s", exp, got, status)
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("export %s did not end in time", exp)
}

// recorded keeps the events a kit emits, in order.
type recorded struct {
	mu     sync.Mutex
	events []metrics.Event
}

func (r *recorded) Emit(e metrics.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorded) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Name)
	}
	return out
}

// TestRepeatsCountOnce: Step Functions may run Finish or Release again after their
// write (the answer was lost); the repeat answers the same and counts nothing, so an
// operation is one commit or one failure in the metrics.
func TestRepeatsCountOnce(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	st.Clone(t, s, "tenant_techstart", "m-repeat")
	rec := &recorded{}
	kit := &flow.Kit{Store: s.Store(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: rec}
	claim := func() flow.Ref {
		t.Helper()
		ref := flow.Ref{OperationID: flow.NewOperationID(), TenantID: "m-repeat", Kind: tenant.KindUpgrade}
		if _, err := kit.Ensure(ctx, &tenant.Operation{ID: ref.OperationID, TenantID: ref.TenantID, Kind: ref.Kind, Status: tenant.OpRunning,
			FromPlan: tenant.Free, ToPlan: tenant.Starter}); err != nil {
			t.Fatal(err)
		}
		if _, err := kit.Claim(ctx, ref, flow.Claim{From: []tenant.State{tenant.Active}, Busy: tenant.Upgrading}); err != nil {
			t.Fatal(err)
		}
		return ref
	}

	ref := claim()
	for range 2 {
		if err := kit.Finish(ctx, ref, tenant.Upgrading, tenant.Active, func(x *tenant.Tenant) { x.Plan = tenant.Starter }, "test commit"); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.names(); !slices.Equal(got, []string{metrics.TransitionsSucceeded, metrics.OperationDuration}) {
		t.Fatalf("Finish twice emitted %v", got)
	}
	if p := rec.events[1].Dimensions[metrics.Plan]; p != "starter" {
		t.Errorf("duration by plan %q, want the plan the commit set", p)
	}

	rec.events = nil
	ref = claim()
	def := &flow.Definition{Kind: tenant.KindUpgrade, Busy: tenant.Upgrading,
		Settle: func(context.Context, *tenant.Tenant, *tenant.Operation) (flow.Settlement, error) {
			return flow.Settlement{To: tenant.Active, Incomplete: []string{"billing"}}, nil
		}}
	caught := &flow.CaughtError{Error: "InjectedFault", Cause: "test"}
	first, err := kit.Release(ctx, def, ref, caught)
	if err != nil {
		t.Fatal(err)
	}
	again, err := kit.Release(ctx, def, ref, caught)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Released || again.Released || again.Status != tenant.OpFailed {
		t.Errorf("outcomes %+v then %+v, want Released only the first time", first, again)
	}
	if got := rec.names(); !slices.Equal(got, []string{metrics.TransitionsFailed, metrics.TenantsNeedingAttention}) {
		t.Fatalf("Release twice emitted %v", got)
	}
	if p := rec.events[0].Properties; p["operation_id"] != ref.OperationID || p["tenant_id"] != "m-repeat" || p["error"] != "InjectedFault" {
		t.Errorf("properties %v", p)
	}
}
