package meter_test

// TestCostFigures runs every flow once on a fresh tenant of the local stack and
// meters it from outside (internal/localstack/meter): Lambda invocations and
// durations, Step Functions transitions, DynamoDB requests and request units per
// function, EventBridge entries, S3 requests, Stripe calls and log bytes. It checks the
// figures are sane, then compares the counts with the table in docs/cost.md, which
// `go test ./internal/localstack/meter -run TestCostFigures -update` rewrites (with the
// durations, log bytes and costs as measured here, which are never compared).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/meter"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

var update = flag.Bool("update", false, "rewrite the generated tables of docs/cost.md with this run's figures")

// flowRun is one metered flow.
type flowRun struct {
	Name    string
	Entries meter.Entries
	// Machine is the state machine the flow runs ("" for none), Tasks the functions of
	// its default path plus those invoked directly, in order.
	Machine string
	Run     *meter.Run
	// LogLines and LogBytes are what the functions printed (with CloudWatch's 26 bytes
	// per event).
	LogLines int
	LogBytes int64
}

// flowTest holds what the flows of TestCostFigures share.
type flowTest struct {
	t    *testing.T
	s    *stack.Stack
	logs *st.LogCapture
	ctx  context.Context
	runs []*flowRun
	m    *meter.Meter
}

// measure meters do as one flow run: it waits for every execution do started, then
// for the functions' log lines to arrive.
func (f *flowTest) measure(name, machine string, entries meter.Entries, do func()) *flowRun {
	f.t.Helper()
	m, err := meter.Start(f.ctx, f.s)
	if err != nil {
		f.t.Fatal(err)
	}
	f.m = m
	before := len(f.logs.Lines())
	do()
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
	defer cancel()
	run, err := m.Stop(ctx)
	if err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	lines := settled(f.logs)[before:]
	fr := &flowRun{Name: name, Machine: machine, Entries: entries, Run: run}
	for _, l := range lines {
		if l.Function != "" {
			fr.LogLines++
			fr.LogBytes += int64(len(l.Text)) + meter.LogEventOverhead
		}
	}
	f.runs = append(f.runs, fr)
	return fr
}

// settled returns the captured lines once no new one arrived for 200 ms (function
// output reaches the capture through a pipe).
func settled(c *st.LogCapture) []st.LogLine {
	n, quiet := -1, 0
	for quiet < 4 {
		time.Sleep(50 * time.Millisecond)
		if l := len(c.Lines()); l == n {
			quiet++
		} else {
			n, quiet = l, 0
		}
	}
	return c.Lines()
}

// api sends one API Gateway event through the api bootstrap, metered, and decodes
// the answer's body into a map.
func (f *flowTest) api(method, path, route string, params map[string]string, body any, want int) map[string]any {
	f.t.Helper()
	raw := st.Event(f.t, method, path, route, params, body, st.Admin)
	res, err := f.m.Invoke(f.ctx, "ApiFunction", raw)
	if err != nil || res.FunctionError != "" {
		f.t.Fatalf("%s %s: %v %s", method, path, err, res.Payload)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		f.t.Fatal(err)
	}
	if resp.StatusCode != want {
		f.t.Fatalf("%s %s: want %d, got %d: %s", method, path, want, resp.StatusCode, resp.Body)
	}
	out := map[string]any{}
	_ = json.Unmarshal([]byte(resp.Body), &out)
	return out
}

// scheduled delivers one scheduled event at `at` to fn, metered.
func (f *flowTest) scheduled(fn string, at time.Time) map[string]any {
	f.t.Helper()
	raw, _ := json.Marshal(events.CloudWatchEvent{Version: "0", ID: "sched-meter", DetailType: "Scheduled Event", Source: "aws.events",
		AccountID: testenv.AccountID, Time: at, Region: testenv.Region, Detail: json.RawMessage("{}")})
	res, err := f.m.Invoke(f.ctx, fn, raw)
	if err != nil || res.FunctionError != "" {
		f.t.Fatalf("%s: %v %s", fn, err, res.Payload)
	}
	out := map[string]any{}
	_ = json.Unmarshal(res.Payload, &out)
	return out
}

func TestCostFigures(t *testing.T) {
	s := st.Shared(t)
	f := &flowTest{t: t, s: s, logs: st.CaptureLogs(t), ctx: context.Background()}
	const id = "tenant_meter"
	// The export's data, loaded outside any run: 100 items of 200 bytes.
	if err := s.LoadData(f.ctx, id, 100, 200); err != nil {
		t.Fatal(err)
	}
	http1, sched1 := meter.Entries{HTTP: 1}, meter.Entries{Scheduled: 1}
	idle := time.Now().UTC()

	storageBefore := storage(t, s)
	f.measure("create", "", http1, func() {
		f.api("POST", "/tenants", "/tenants", nil, map[string]any{"id": id, "name": "Meter Co", "plan": "starter", "email": "billing@meter.example"}, 201)
	})
	f.measure("usage report", "", http1, func() {
		f.api("PUT", "/tenants/"+id+"/usage", "/tenants/{id}/usage", map[string]string{"id": id},
			map[string]any{"users": 2, "storage_gb": 0.5, "api_calls_per_month": 5000}, 200)
	})
	var op string
	f.measure("upgrade", "UpgradeStateMachine", http1, func() {
		op = f.api("POST", "/tenants/"+id+"/upgrade", "/tenants/{id}/upgrade", map[string]string{"id": id}, map[string]any{"plan": "professional"}, 202)["operation_id"].(string)
	})
	f.measure("status read", "", http1, func() {
		if b := f.api("GET", "/operations/"+op, "/operations/{id}", map[string]string{"id": op}, nil, 200); b["status"] != "SUCCEEDED" {
			t.Fatalf("upgrade: %v", b)
		}
	})
	f.measure("downgrade", "DowngradeStateMachine", http1, func() {
		f.api("POST", "/tenants/"+id+"/downgrade", "/tenants/{id}/downgrade", map[string]string{"id": id}, map[string]any{"plan": "starter"}, 202)
	})
	storageTenant := storage(t, s).minus(storageBefore)
	f.measure("downgrade at period end", "DowngradeStateMachine", meter.Entries{HTTP: 1, Scheduled: 1}, func() {
		b := f.api("POST", "/tenants/"+id+"/downgrade", "/tenants/{id}/downgrade", map[string]string{"id": id}, map[string]any{"plan": "free", "at_period_end": true}, 202)
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(b["effective_at"]))
		if err != nil || b["status"] != "SCHEDULED" {
			t.Fatalf("period-end downgrade: %v %v", b, err)
		}
		if out := f.scheduled("DowngradeSweepFunction", at.Add(time.Minute)); len(out["started"].([]any)) != 1 {
			t.Fatalf("downgrade sweep: %v", out)
		}
	})
	f.measure("suspend", "SuspensionStateMachine", http1, func() {
		f.api("POST", "/tenants/"+id+"/suspend", "/tenants/{id}/suspend", map[string]string{"id": id}, map[string]any{"reason": "chargeback review"}, 202)
	})
	// Onto another plan than the one it was suspended on, so that the reactivation
	// changes the subscription's price (onto the same plan Stripe has nothing to write).
	f.measure("reactivate", "ReactivationStateMachine", http1, func() {
		f.api("POST", "/tenants/"+id+"/reactivate", "/tenants/{id}/reactivate", map[string]string{"id": id}, map[string]any{"plan": "starter"}, 202)
	})
	f.measure("webhook (invoice.paid)", "", http1, func() {
		tn := st.Tenant(t, s, id)
		body, err := stack.StripeEvent(testenv.RepoRoot(), stack.StripeEventSpec{Type: "invoice.paid", TenantID: id, SubscriptionID: tn.Billing.SubscriptionID})
		if err != nil {
			t.Fatal(err)
		}
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /webhooks/stripe", RawPath: "/webhooks/stripe", Body: string(body),
			Headers: map[string]string{"content-type": "application/json; charset=utf-8", "stripe-signature": stack.SignStripeEvent(body, stack.StripeWebhookTestSecret, time.Now())},
			RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: "POST /webhooks/stripe", RequestID: "req-meter",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/webhooks/stripe"}}}
		raw, _ := json.Marshal(ev)
		res, err := f.m.Invoke(f.ctx, "StripeWebhookFunction", raw)
		var resp events.APIGatewayV2HTTPResponse
		if err != nil || res.FunctionError != "" || json.Unmarshal(res.Payload, &resp) != nil || resp.StatusCode != 200 {
			t.Fatalf("webhook: %v %s", err, res.Payload)
		}
	})
	f.measure("export (100 items)", "ExportStateMachine", meter.Entries{HTTP: 2}, func() {
		eid := f.api("POST", "/tenants/"+id+"/exports", "/tenants/{id}/exports", map[string]string{"id": id}, nil, 202)["export_id"].(string)
		waitExecution(t, s, "ExportStateMachine", eid)
		// The client's one read of the finished export, and its download (S3 GET).
		b := f.api("GET", "/tenants/"+id+"/exports/"+eid, "/tenants/{id}/exports/{export_id}", map[string]string{"id": id, "export_id": eid}, nil, 200)
		resp, err := http.Get(fmt.Sprint(b["download_url"]))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n == 0 {
			t.Fatalf("download: %d, %d bytes", resp.StatusCode, n)
		}
	})
	f.measure("delete", "DeletionStateMachine", http1, func() {
		f.api("DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil, 202)
	})
	// The retention ends (as if its 30 days had passed): the purge decides by the
	// schedule's time, but never by one later than the clock.
	past := time.Now().UTC().Add(-time.Minute)
	if _, err := s.Store().Change(f.ctx, id, store.Actor{Who: "system:test"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{Mutate: func(x *tenant.Tenant) { x.PurgeAfter = &past }}, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.measure("purge (100 data items)", "PurgeStateMachine", sched1, func() {
		if out := f.scheduled("PurgeSweepFunction", time.Now().UTC()); len(out["started"].([]any)) != 1 {
			t.Fatalf("purge sweep: %v", out)
		}
	})
	if tn := st.Tenant(t, s, id); tn.State != "PURGED" {
		t.Fatalf("after the flows the tenant is %s", tn.State)
	}
	for _, fn := range []string{"DowngradeSweepFunction", "ReconcileFunction", "PurgeSweepFunction"} {
		f.measure("scheduled "+fn+", nothing due", "", sched1, func() { f.scheduled(fn, idle) })
	}

	for _, fr := range f.runs {
		checkRun(t, s, fr)
	}
	figures, measured := renderFigures(f.runs), renderMeasured(t, s, f.runs, storageTenant)
	t.Logf("figures per flow:\n%s\n%s", figures, measured)
	compareDoc(t, figures, measured)
}

// waitExecution waits for the execution name of machine to end, asking Step Functions
// (which the meter does not count) rather than the API.
func waitExecution(t *testing.T, s *stack.Stack, machine, name string) {
	t.Helper()
	arn := flow.ExecutionARN(s.StateMachines[machine], name)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, err := s.SFNClient().DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err == nil && out.Status != sfntypes.ExecutionStatusRunning {
			return
		}
	}
	t.Fatalf("execution %s did not end", arn)
}

// checkRun asserts what must hold of every run: the flow's one execution succeeded
// along its machine's default path (each state entered billed once, no retry), every
// invocation is one of its tasks or of the entry points, every flow wrote to DynamoDB,
// and the counts the flow's steps imply.
func checkRun(t *testing.T, s *stack.Stack, fr *flowRun) {
	t.Helper()
	r := fr.Run
	if r.Invocations() == 0 {
		t.Errorf("%s: no Lambda invocation", fr.Name)
	}
	ddb := r.Service("dynamodb").Total()
	if ddb.Requests == 0 || ddb.RRU+ddb.WRU == 0 {
		t.Errorf("%s: no DynamoDB request units: %+v", fr.Name, ddb)
	}
	if ddb.Errors != 0 {
		t.Errorf("%s: %d DynamoDB requests failed: %+v", fr.Name, ddb.Errors, r.Service("dynamodb"))
	}
	if !strings.HasPrefix(fr.Name, "scheduled") && !strings.HasPrefix(fr.Name, "status") && ddb.WRU == 0 {
		t.Errorf("%s: wrote nothing", fr.Name)
	}
	tasks := 0
	if fr.Machine == "" {
		if len(r.Executions) != 0 {
			t.Errorf("%s: %d executions, want none", fr.Name, len(r.Executions))
		}
	} else {
		sm, err := stateMachine(s, fr.Machine)
		if err != nil || len(r.Executions) != 1 {
			t.Fatalf("%s: machine %s (%v), executions %+v", fr.Name, fr.Machine, err, r.Executions)
		}
		path, err := meter.HappyPath(sm.DefinitionPath)
		if err != nil {
			t.Fatal(err)
		}
		x := r.Executions[0]
		if x.Status != "SUCCEEDED" || !slices.Equal(x.States, path) || x.Retries != 0 || x.Transitions() != len(path) {
			t.Errorf("%s: execution %s entered %v (%d retries), want %v SUCCEEDED", fr.Name, x.Status, x.States, x.Retries, path)
		}
		tasks = countTasks(t, sm.DefinitionPath, path)
	}
	if want := tasks + fr.Entries.HTTP + fr.Entries.Scheduled; r.Invocations() != want {
		t.Errorf("%s: %d invocations, want %d (%d tasks, %+v)", fr.Name, r.Invocations(), want, tasks, fr.Entries)
	}
	events, stripe, s3 := r.Service("events").Total(), r.Stripe, r.S3()
	// Each flow that changes a tenant publishes its lifecycle event and
	// TenantEntitlementsChanged (the app plane's cache update).
	wantEvents := map[string]int{"upgrade": 2, "downgrade": 2, "downgrade at period end": 2, "suspend": 2, "reactivate": 2, "delete": 2, "purge (100 data items)": 2}
	if events.Entries != wantEvents[fr.Name] {
		t.Errorf("%s: %d lifecycle events published, want %d", fr.Name, events.Entries, wantEvents[fr.Name])
	}
	// The purge deletes the Stripe customer and reads it back.
	billing := map[string]bool{"create": true, "upgrade": true, "downgrade": true, "downgrade at period end": true, "reactivate": true, "delete": true,
		"purge (100 data items)": true}
	if billing[fr.Name] != (stripe.Writes > 0) || fr.Name == "suspend" && stripe.Reads+stripe.Writes > 0 ||
		strings.HasPrefix(fr.Name, "purge") && (stripe.Reads != 1 || stripe.Writes != 1) {
		t.Errorf("%s: Stripe %+v", fr.Name, stripe)
	}
	if strings.HasPrefix(fr.Name, "export") && (s3["tier1"] < 3 || s3["tier2"] < 1) {
		t.Errorf("%s: S3 %v: want the multipart upload (3 tier-1 requests at least) and the download", fr.Name, s3)
	}
}

// countTasks counts the Task states of path in the ASL definition at file.
func countTasks(t *testing.T, file string, path []string) int {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var def struct {
		States map[string]struct{ Type string } `json:"States"`
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range path {
		if def.States[name].Type == "Task" {
			n++
		}
	}
	return n
}

// stateMachine returns the template's state machine of that logical id.
func stateMachine(s *stack.Stack, logicalID string) (samtemplate.StateMachine, error) {
	sms, err := s.Template.StateMachines()
	if err != nil {
		return samtemplate.StateMachine{}, err
	}
	for _, sm := range sms {
		if sm.LogicalID == logicalID {
			return sm, nil
		}
	}
	return samtemplate.StateMachine{}, fmt.Errorf("no state machine %s in the template", logicalID)
}
