package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// seeds are the example tenants the local stack seeds (README, "Try it").
var seeds = []tenant.Tenant{
	{ID: "tenant_acme", Name: "Acme Corp", Email: "billing@acme.example", Plan: tenant.Starter, State: tenant.Active,
		Usage: tenant.Usage{Users: 2, StorageGB: 0.5, APICallsPerMonth: 5000}},
	{ID: "tenant_techstart", Name: "TechStart Inc", Plan: tenant.Free, State: tenant.Active,
		Usage: tenant.Usage{Users: 1, StorageGB: 0.2, APICallsPerMonth: 800}},
	{ID: "tenant_enterprise", Name: "Enterprise Solutions", Plan: tenant.Professional, State: tenant.Active,
		Usage: tenant.Usage{Users: 45, StorageGB: 80, APICallsPerMonth: 600_000}},
	{ID: "tenant_suspended", Name: "Suspended Co", Plan: tenant.Starter, State: tenant.Suspended, SuspendCause: tenant.CauseNonpayment, SuspendReason: "nonpayment",
		Usage: tenant.Usage{Users: 5, StorageGB: 3, APICallsPerMonth: 20_000}},
}

// knownOpID is the operation get-operation.json reads; it belongs to tenant_acme.
const knownOpID = "op_19b7c5e2a00_3f2a9c1d7e6b5a40"

// periodEnd is what the fake returns for period-end downgrades and new subscriptions.
var periodEnd = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

// env is one handler on fresh tables with the four seeds.
type env struct {
	exports *fakeExecutions
	jobs    *export.Jobs
	h       *httpapi.Handler
	db      store.DynamoDB
	st      *store.Store
	plans   *fakePlans
	subs    *fakeSubs
	logs    *syncBuffer
	catalog *tenant.Catalog
}

type envOption func(*httpapi.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	db, names := testenv.Tables(t)
	st := store.New(db, names["TenantsTable"], nil)
	ctx := context.Background()
	for _, s := range seeds {
		s := s
		if _, err := st.CreateTenant(ctx, &s, store.Actor{Who: "seed"}); err != nil {
			t.Fatalf("seed %s: %v", s.ID, err)
		}
	}
	// The operation get-operation.json reads is in the store too, as the local stack
	// seeds it, so that the listings find it (the fake flows answer GET for it).
	known := knownOperation()
	if _, err := st.CreateOperation(ctx, &known); err != nil {
		t.Fatalf("seed %s: %v", known.ID, err)
	}
	cat := tenant.DefaultCatalog()
	plans := newFakePlans(st, cat)
	subs := &fakeSubs{}
	logs := &syncBuffer{}
	cfg := httpapi.Config{
		Store: st, Provisioner: provision.New(st, nopPublisher{}, cat), PlanChanges: plans, Operations: plans, Subscriptions: subs,
		Lifecycle: lifecycle.NewStarter(st, plans, cat, tenant.DefaultRetentionDays),
		Catalog:   cat, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Idempotency: st,
		Steps:       flow.NewStepReader(knownHistories, &flow.Definition{Kind: tenant.KindUpgrade, StateMachineARN: upgradeMachine}),
	}
	// Exports are the real shared/export service on the same table; only the start of
	// the export flow is recorded instead of run (the export's own tests run it).
	execs, jobs := &fakeExecutions{}, &export.Jobs{DB: db, Table: names["TenantsTable"]}
	cfg.Exports = &export.Service{Jobs: jobs, Tenants: st, SFN: execs,
		StateMachineARN: "arn:aws:states:us-east-1:123456789012:stateMachine:export", Bucket: "exports"}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{h: h, db: db, st: st, plans: plans, subs: subs, logs: logs, catalog: cat, exports: execs, jobs: jobs}
}

// invoke sends raw event JSON through the real aws-lambda-go handler path (JSON
// decoding of the event, the handler, JSON encoding of the response).
func invoke(t *testing.T, h *httpapi.Handler, raw []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	out, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatalf("Invoke returned an error (Handle must always answer): %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response is not an APIGatewayV2HTTPResponse: %v\n%s", err, out)
	}
	return resp
}

// invokeEvent marshals ev and invokes it.
func invokeEvent(t *testing.T, h *httpapi.Handler, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return invoke(t, h, raw)
}

// claims builds an authorizer for a request; nil claims means none at all.
func authz(claims map[string]string, scopes ...string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	if claims == nil {
		return nil
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims, Scopes: scopes}}
}

var (
	adminClaims = map[string]string{"sub": "admin", "scope": "tenants/admin"}
	acmeClaims  = map[string]string{"sub": "alice", "tenant_id": "tenant_acme"}
	// meteringClaims is the platform's metering service, the one reporter of usage.
	meteringClaims = map[string]string{"sub": "svc_metering", "scope": "tenants/usage"}
)

// req builds an event for routeKey with path parameter id (may be "") and body.
func req(routeKey, id string, a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription, body string) events.APIGatewayV2HTTPRequest {
	method, path, _ := strings.Cut(routeKey, " ")
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: routeKey, Body: body}
	if id != "" {
		ev.PathParameters = map[string]string{"id": id}
		path = strings.Replace(path, "{id}", id, 1)
	}
	ev.RawPath = path
	ev.RequestContext = events.APIGatewayV2HTTPRequestContext{RouteKey: routeKey, Stage: "$default", RequestID: "req-1", Authorizer: a,
		HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}
	return ev
}

// problem decodes and checks the invariants of an error response.
func problem(t *testing.T, resp events.APIGatewayV2HTTPResponse) httpapi.Problem {
	t.Helper()
	if ct := resp.Headers["Content-Type"]; ct != httpapi.ContentTypeProblem {
		t.Fatalf("status %d with Content-Type %q, want %s; body %s", resp.StatusCode, ct, httpapi.ContentTypeProblem, resp.Body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("problem body: %v\n%s", err, resp.Body)
	}
	if p.Status != resp.StatusCode || p.Detail == "" || p.Title == "" || !strings.HasPrefix(p.Type, "urn:tenantflow:problem:") {
		t.Fatalf("incomplete problem for status %d: %+v", resp.StatusCode, p)
	}
	return p
}

func bodyMap(t *testing.T, resp events.APIGatewayV2HTTPResponse) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, resp.Body)
	}
	return m
}

// fakePlans stands in for shared/planchange (tested end to end elsewhere). It asks the
// real lifecycle policy, so the HTTP mapping of each refusal is real.
// fakeExecutions records the executions the export service starts.
type fakeExecutions struct {
	mu      sync.Mutex
	started []string // execution names
}

func (f *fakeExecutions) Start(_ context.Context, _, name, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, name)
	return nil
}

// Describe answers RUNNING for an execution Start has started (they never end here)
// and ErrNoExecution for any other.
func (f *fakeExecutions) Describe(_ context.Context, arn string) (flow.Execution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range f.started {
		if strings.HasSuffix(arn, ":"+name) {
			return flow.Execution{Status: flow.ExecutionRunning}, nil
		}
	}
	return flow.Execution{}, fmt.Errorf("%w: %s (fakeExecutions)", flow.ErrNoExecution, arn)
}

func (f *fakeExecutions) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.started...)
}

type fakePlans struct {
	st      *store.Store
	catalog *tenant.Catalog

	mu    sync.Mutex
	ops   map[string]*tenant.Operation
	calls []string
	// err and panicMsg, when set, replace every answer (error and panic mapping tests).
	err      error
	panicMsg string
}

// knownOperation is the operation get-operation.json reads.
func knownOperation() tenant.Operation {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return tenant.Operation{ID: knownOpID, TenantID: "tenant_acme", Kind: tenant.KindUpgrade, Status: tenant.OpSucceeded,
		FromPlan: tenant.Free, ToPlan: tenant.Starter, RequestedBy: "alice", CreatedAt: now, UpdatedAt: now}
}

func newFakePlans(st *store.Store, c *tenant.Catalog) *fakePlans {
	known := knownOperation()
	return &fakePlans{st: st, catalog: c, ops: map[string]*tenant.Operation{knownOpID: &known}}
}

// upgradeMachine is the state machine of the upgrade flow the step reader follows.
const upgradeMachine = "arn:aws:states:us-east-1:123456789012:stateMachine:upgrade"

// fakeHistories holds execution histories by execution ARN; others do not exist.
type fakeHistories map[string][]flow.HistoryEvent

func (f fakeHistories) History(_ context.Context, arn string) ([]flow.HistoryEvent, error) {
	evs, ok := f[arn]
	if !ok {
		return nil, fmt.Errorf("%w: %s (fakeHistories)", flow.ErrNoExecution, arn)
	}
	return evs, nil
}

// knownHistories has the execution of knownOpID: an upgrade whose Provision step was
// retried once after a service error.
var knownHistories = func() fakeHistories {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []flow.HistoryEvent
	add := func(typ, state, errName string) {
		e := flow.HistoryEvent{ID: int64(len(evs) + 1), PreviousID: int64(len(evs)), Type: typ, State: state, Error: errName,
			Time: t0.Add(time.Duration(len(evs)) * 250 * time.Millisecond)}
		if errName != "" {
			e.Cause = `{"errorType":"` + errName + `","errorMessage":"internal detail"}`
		}
		evs = append(evs, e)
	}
	add("ExecutionStarted", "", "")
	add("ChoiceStateEntered", "Start", "")
	add("ChoiceStateExited", "Start", "")
	for _, st := range []string{"Validate", "Provision", "Billing", "Commit"} {
		add("TaskStateEntered", st, "")
		if st == "Provision" {
			add("LambdaFunctionScheduled", "", "")
			add("LambdaFunctionFailed", "", "Lambda.ServiceException")
		}
		add("LambdaFunctionScheduled", "", "")
		add("LambdaFunctionSucceeded", "", "")
		add("TaskStateExited", st, "")
	}
	add("SucceedStateEntered", "Done", "")
	add("SucceedStateExited", "Done", "")
	add("ExecutionSucceeded", "", "")
	return fakeHistories{flow.ExecutionARN(upgradeMachine, knownOpID): evs}
}()

func (f *fakePlans) record(call string) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return f.err
}

func (f *fakePlans) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakePlans) start(ctx context.Context, kind, tenantID string, plan tenant.Plan, atPeriodEnd bool, by store.Actor) (*tenant.Operation, error) {
	if f.st == nil {
		return &tenant.Operation{ID: "op_" + kind, TenantID: tenantID, Kind: kind, Status: tenant.OpRunning}, nil
	}
	t, err := f.st.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	// The lifecycle policy, as planchange.Starter asks it.
	act := tenant.ActUpgrade
	switch {
	case kind == tenant.KindDowngrade && atPeriodEnd:
		act = tenant.ActDowngradeAtPeriodEnd
	case kind == tenant.KindDowngrade:
		act = tenant.ActDowngrade
	}
	if _, err := tenant.Decide(tenant.Query{Action: act, Actor: by.As, Tenant: t, Plan: plan, Catalog: f.catalog}); err != nil {
		return nil, err
	}
	op := &tenant.Operation{ID: "op_" + kind + "_" + tenantID, TenantID: tenantID, Kind: kind, Status: tenant.OpRunning,
		FromPlan: t.Plan, ToPlan: plan, AtPeriodEnd: atPeriodEnd, RequestedBy: by.Who}
	if atPeriodEnd {
		op.Status, op.EffectiveAt = tenant.OpScheduled, &periodEnd
	}
	f.mu.Lock()
	f.ops[op.ID] = op
	f.mu.Unlock()
	return op, nil
}

func (f *fakePlans) Upgrade(ctx context.Context, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	if err := f.record("upgrade " + tenantID + " " + string(plan) + " by " + by.Who); err != nil {
		return nil, err
	}
	return f.start(ctx, tenant.KindUpgrade, tenantID, plan, false, by)
}

func (f *fakePlans) Downgrade(ctx context.Context, tenantID string, plan tenant.Plan, atPeriodEnd bool, by store.Actor) (*tenant.Operation, error) {
	call := "downgrade " + tenantID + " " + string(plan) + " by " + by.Who
	if atPeriodEnd {
		call += " at period end"
	}
	if err := f.record(call); err != nil {
		return nil, err
	}
	return f.start(ctx, tenant.KindDowngrade, tenantID, plan, atPeriodEnd, by)
}

func (f *fakePlans) Get(_ context.Context, id string) (*tenant.Operation, error) {
	if err := f.record("operation " + id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[id]
	if !ok {
		return nil, &tenant.NotFoundError{Kind: "operation", ID: id}
	}
	c := *op
	return &c, nil
}

// Start records a lifecycle operation as flow.Operations does, without running it:
// the real lifecycle.Starter decides what is refused.
func (f *fakePlans) Start(_ context.Context, op *tenant.Operation, _ any) (*tenant.Operation, error) {
	if err := f.record("start " + op.Kind + " " + op.TenantID); err != nil {
		return nil, err
	}
	c := *op
	c.Status = tenant.OpRunning
	f.mu.Lock()
	f.ops[c.ID] = &c
	f.mu.Unlock()
	return &c, nil
}

// Retry reopens a failed operation that needs attention, as flow.Operations does.
func (f *fakePlans) Retry(_ context.Context, id string, _ store.Actor) (*tenant.Operation, error) {
	if err := f.record("retry " + id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[id]
	if !ok {
		return nil, &tenant.NotFoundError{Kind: "operation", ID: id}
	}
	if !op.NeedsAttention {
		return nil, &tenant.ConflictError{TenantID: op.TenantID, Reason: "operation " + id + " does not need attention"}
	}
	op.Attempt++
	op.Status, op.NeedsAttention = tenant.OpRunning, false
	c := *op
	return &c, nil
}

// Resolve records the operator's note on a failed operation that needs attention.
func (f *fakePlans) Resolve(_ context.Context, id, note string, _ store.Actor) (*tenant.Operation, error) {
	if err := f.record("resolve " + id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[id]
	if !ok {
		return nil, &tenant.NotFoundError{Kind: "operation", ID: id}
	}
	if !op.NeedsAttention {
		return nil, &tenant.ConflictError{TenantID: op.TenantID, Reason: "operation " + id + " does not need attention"}
	}
	op.NeedsAttention, op.Resolution = false, note
	c := *op
	return &c, nil
}

// fakeSubs records subscription creates; the first failures calls fail.
type fakeSubs struct {
	mu       sync.Mutex
	keys     []string
	failures int
}

func (f *fakeSubs) CreateSubscription(_ context.Context, tenantID, _, _ string, _ tenant.Plan, key string) (string, string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, key)
	if f.failures > 0 {
		f.failures--
		return "", "", time.Time{}, errors.New("stripe: 500 from api.stripe.com (req_123)")
	}
	return "cus_" + tenantID, "sub_" + tenantID, periodEnd, nil
}

func (f *fakeSubs) Keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, any) error { return nil }

// syncBuffer collects log output from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Lines returns the decoded JSON log lines.
func (b *syncBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}
