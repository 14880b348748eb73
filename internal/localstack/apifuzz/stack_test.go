package apifuzz

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// Environment of a longer run (make fuzz-api): requests per operation, the seed,
// and a time budget.
const (
	envPerOp  = "TENANTFLOW_APIFUZZ_PER_OP"
	envSeed   = "TENANTFLOW_APIFUZZ_SEED"
	envBudget = "TENANTFLOW_APIFUZZ_BUDGET"
)

// authority mints the tokens the local API Gateway's JWT authorizer accepts.
type authority struct{ a *jwtauth.Authority }

func (a authority) Admin() (string, error)           { return a.a.OperatorToken() }
func (a authority) Tenant(id string) (string, error) { return a.a.TenantToken(id) }
func (a authority) Metering() (string, error) {
	return a.a.Mint(jwtauth.Claims{"sub": "svc_metering", "scope": "tenants/usage"})
}

type invoker struct{ s *stack.Stack }

func (i invoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, string, error) {
	res, err := i.s.Lambda.Invoke(ctx, function, payload)
	if err != nil {
		return nil, "", err
	}
	return res.Payload, res.FunctionError, nil
}

// TestGeneratedRequests sends generated requests for every operation of openapi.yaml
// through the local API Gateway (the template's routes and JWT authorizer) and the
// real API and webhook functions on a seeded local stack, and fails on any answer
// that breaks the spec (see the package comment). The seed is fixed, so a failure
// repeats; TENANTFLOW_APIFUZZ_SEED, _PER_OP and _BUDGET make longer or other runs.
func TestGeneratedRequests(t *testing.T) {
	doc := loadSpec(t)
	s := st.Shared(t)
	routes, err := stack.HTTPRoutes(s.Template)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.New(jwtauth.Config{Issuer: stack.LocalParams["JwtIssuer"], Audience: []string{stack.LocalParams["JwtAudience"]}})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Routes: routes, Invoker: invoker{s}, Authorizer: auth})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	cfg := Config{
		Spec: doc, BaseURL: "http://" + ln.Addr().String(), Tokens: authority{auth},
		Seed: 20260101, PerOperation: 40, Deadline: time.Now().Add(60 * time.Second),
		Known: map[string][]string{"operation_id": {stack.ExampleOperation.ID}},
	}
	for _, ex := range stack.Examples {
		cfg.Known["tenant_id"] = append(cfg.Known["tenant_id"], ex.ID)
	}
	if n, err := strconv.Atoi(os.Getenv(envPerOp)); err == nil && n > 0 {
		cfg.PerOperation = n
	}
	if n, err := strconv.ParseUint(os.Getenv(envSeed), 10, 64); err == nil {
		cfg.Seed = n
	}
	if d, err := time.ParseDuration(os.Getenv(envBudget)); err == nil && d > 0 {
		cfg.Deadline = time.Now().Add(d)
	}
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: %d requests in %v\n%s", cfg.Seed, rep.Sent, time.Since(start).Round(time.Millisecond), rep.Summary())
	for _, sk := range rep.Skipped {
		t.Logf("no case: %s", sk)
	}
	if rep.Sent < len(operations(doc)) {
		t.Errorf("only %d requests for %d operations", rep.Sent, len(operations(doc)))
	}
	// Every operation was reached, and the ones a plain request can succeed on did.
	for _, o := range operations(doc) {
		if len(rep.Statuses[o.key]) == 0 {
			t.Errorf("%s: no request sent", o.key)
		}
	}
	for _, key := range []string{"GET /tenants", "GET /tenants/{id}", "GET /tenants/{id}/audit", "POST /tenants"} {
		ok := false
		for stc := range rep.Statuses[key] {
			ok = ok || strings.HasPrefix(stc, "2")
		}
		if !ok {
			t.Errorf("%s: no 2xx among %v: the positive cases do not reach the API's success path", key, rep.Statuses[key])
		}
	}
	shown := map[string]int{}
	for _, f := range rep.Failures {
		k := f.Case.Op + " " + f.Check
		if shown[k]++; shown[k] > 2 {
			continue
		}
		t.Errorf("%s", f)
	}
	if len(rep.Failures) > 0 {
		t.Logf("%d failing answers of %d (seed %d)", len(rep.Failures), rep.Sent, cfg.Seed)
	}
}
