// Package stacktest holds what the end-to-end tests of every flow share: one local
// stack per test binary (reset to the seeded example tenants for each test), API
// Gateway events sent through the real api bootstrap, and readers of what a flow left
// behind (tenant, entitlements, audit transitions, lifecycle events, Stripe requests).
package stacktest

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

var (
	mu        sync.Mutex
	shared    *stack.Stack
	sharedErr error
	allEvents []stack.Event
)

// Shared starts one stack for the test binary (building every function once) and
// hands each test that stack freshly reset to the seeded example tenants, so tests do
// not depend on each other's leftovers. Tests that use it do not run in parallel.
// The stack stops when testenv.Run's TestMain ends.
func Shared(t *testing.T) *stack.Stack {
	t.Helper()
	return SharedWith(t, Options{})
}

// Options are what one test binary's stack differs in; the zero value is Shared's.
type Options struct {
	// Params override the template's local parameters. Only the first call of the
	// binary starts the stack, so every call of one binary passes the same options.
	Params map[string]string
	// Timeout bounds the start and each reset (default 5 minutes).
	Timeout time.Duration
	// LogEnv, when set, names an environment variable that must be set too for -v to
	// show the functions' output.
	LogEnv string
}

// SharedWith is Shared with the binary's stack started with o.
func SharedWith(t *testing.T, o Options) *stack.Stack {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = stack.Start(ctx, stack.Options{RetryIntervalsZero: true, Log: quietLog{env: o.LogEnv}, Params: o.Params})
		if sharedErr == nil {
			testenv.OnStop(shared.Close)
		}
	}
	if sharedErr != nil {
		t.Fatalf("start stack: %v", sharedErr)
	}
	if err := shared.Reset(ctx, false); err != nil {
		t.Fatalf("reset stack: %v", err)
	}
	allEvents = nil
	return shared
}

// quietLog keeps function output out of passing test logs but shows it with -v (and,
// when env is set, only when that environment variable is set). Tests that asked for
// it get the output through CaptureLogs.
type quietLog struct{ env string }

func (l quietLog) Write(p []byte) (int, error) {
	capture(p)
	if testing.Verbose() && (l.env == "" || os.Getenv(l.env) != "") {
		return os.Stderr.Write(p)
	}
	return len(p), nil
}

// Admin are the claims of an operator token.
var Admin = map[string]string{"sub": "operator", "scope": "tenants/admin"}

// TenantToken are the claims of a token of tenant id's own users.
func TenantToken(id string) map[string]string {
	return map[string]string{"sub": "user_" + id, "tenant_id": id, "scope": "openid"}
}

// Event builds the API Gateway HTTP API (payload v2) event of one request, with the
// claims the JWT authorizer would pass on (nil: no token).
func Event(t *testing.T, method, path, route string, params map[string]string, body any, claims map[string]string) []byte {
	t.Helper()
	return EventWithHeaders(t, method, path, route, params, body, claims, nil)
}

// EventWithHeaders is Event with extra request headers (e.g. Idempotency-Key), their
// names lower-cased as API Gateway passes them.
func EventWithHeaders(t *testing.T, method, path, route string, params map[string]string, body any, claims, headers map[string]string) []byte {
	t.Helper()
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + route, RawPath: path, PathParameters: params,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: method + " " + route, RequestID: "req-" + t.Name(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
	for k, v := range headers {
		ev.Headers[strings.ToLower(k)] = v
	}
	if body != nil {
		b, _ := json.Marshal(body)
		ev.Body = string(b)
	}
	if claims != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims}}
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Call sends one API event through the api bootstrap.
func Call(t *testing.T, s *stack.Stack, raw []byte) events.APIGatewayV2HTTPResponse {
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

// Body decodes a JSON response body.
func Body(t *testing.T, resp events.APIGatewayV2HTTPResponse) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	return m
}

// OperationID returns the operation id of a 202 answer.
func OperationID(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	if resp.StatusCode != 202 {
		t.Fatalf("want 202, got %d: %s", resp.StatusCode, resp.Body)
	}
	id, _ := Body(t, resp)["operation_id"].(string)
	if id == "" {
		t.Fatalf("no operation_id in %s", resp.Body)
	}
	return id
}

// WaitDone polls the operation through the API until it has finished.
func WaitDone(t *testing.T, s *stack.Stack, opID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp := Call(t, s, Event(t, "GET", "/operations/"+opID, "/operations/{id}", map[string]string{"id": opID}, nil, Admin))
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

// Clone creates a copy of an example tenant under a new id (own subscription id
// sub_<id>) with its entitlements, so tests stay independent.
func Clone(t *testing.T, s *stack.Stack, exampleID, id string) *tenant.Tenant {
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
	limits, _ := tenant.DefaultCatalog().Limits(c.Plan)
	if _, err := s.Store().PutEntitlements(ctx, &tenant.Entitlements{TenantID: id, Plan: c.Plan, Limits: limits, EventPublished: true}, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

// Tenant reads a tenant.
func Tenant(t *testing.T, s *stack.Stack, id string) *tenant.Tenant {
	t.Helper()
	tn, err := s.Store().GetTenant(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// Entitlements reads a tenant's entitlements.
func Entitlements(t *testing.T, s *stack.Stack, id string) *tenant.Entitlements {
	t.Helper()
	e, err := s.Store().GetEntitlements(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Transitions lists a tenant's audited state changes as "FROM->TO".
func Transitions(t *testing.T, s *stack.Stack, id string) []string {
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

// Events returns the detail types of the lifecycle events published for one tenant
// since the test's reset.
func Events(t *testing.T, s *stack.Stack, tenantID string) []string {
	t.Helper()
	var out []string
	for _, e := range Published(t, s, tenantID) {
		out = append(out, e.DetailType)
	}
	return out
}

// Published returns the lifecycle events published for one tenant (detail tenant_id)
// since the test's reset.
func Published(t *testing.T, s *stack.Stack, tenantID string) []stack.Event {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	evs, err := s.DrainEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	allEvents = append(allEvents, evs...)
	var out []stack.Event
	for _, e := range allEvents {
		var d struct {
			TenantID string `json:"tenant_id"`
		}
		_ = json.Unmarshal(e.Detail, &d)
		if d.TenantID == tenantID {
			out = append(out, e)
		}
	}
	return out
}

// Scheduled invokes a scheduled function with the scheduled event of time at and
// decodes its result into out.
func Scheduled(t *testing.T, s *stack.Stack, function string, at time.Time, out any) {
	t.Helper()
	raw, _ := json.Marshal(events.CloudWatchEvent{Version: "0", ID: "sched-" + at.Format("150405.000"), DetailType: "Scheduled Event", Source: "aws.events",
		AccountID: testenv.AccountID, Time: at, Region: testenv.Region, Detail: json.RawMessage("{}")})
	res, err := s.Lambda.Invoke(context.Background(), function, raw)
	if err != nil || res.FunctionError != "" {
		t.Fatalf("%s: %v %s %s", function, err, res.FunctionError, res.Payload)
	}
	if err := json.Unmarshal(res.Payload, out); err != nil {
		t.Fatalf("%s result %s: %v", function, res.Payload, err)
	}
}

// LogicalID maps a step fixture's folder events/<kebab-name> to the template's
// <CamelName>Function (events/plan-validate → PlanValidateFunction).
func LogicalID(dir string) string {
	var b strings.Builder
	for _, part := range strings.Split(dir, "-") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String() + "Function"
}
