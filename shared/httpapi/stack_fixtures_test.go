//go:build samlocal

package httpapi_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// inProcessOnly are the fixtures whose checks read what only TestFixtures' in-process
// handler has: its fake flow starter and billing, or its own seeds. On the stack the
// real flows and stripe-mock run instead, so these are judged by status, shape and the
// OpenAPI contract only; TestFixtures runs their checks.
var inProcessOnly = map[string]string{
	"create-tenant.json":             "the fake billing's idempotency keys and subscription ids",
	"list-tenants.json":              "follows the cursor through the in-process handler",
	"upgrade-techstart.json":         "the fake flow starter's calls",
	"upgrade-bad-plan.json":          "the fake flow starter's calls",
	"downgrade-acme.json":            "the fake flow starter's calls",
	"downgrade-acme-period-end.json": "the fake billing's period end",
	"get-audit.json":                 "the in-process seeds' actor (seed, not system:seed)",
	"create-export.json":             "the fake export flow starter's executions",
	// The stack's seeded operation has no execution (NOT_FOUND, no steps).
	"get-operation-steps.json":              "the fake execution history of the seeded operation",
	"get-operation-steps-tenant-token.json": "the fake execution history of the seeded operation",
}

// TestFixturesOnStack plays every events/api fixture through the real api bootstrap on
// a freshly seeded local stack, and judges it with the expectations of the fixtures
// table: what `sam local invoke ApiFunction -e events/api/<fixture>` must answer. With
// TENANTFLOW_FIXTURE_INVOKER=sam-local (make sam-local) the invocation is the real SAM
// CLI's; with any other value (or none) the local Lambda service's. It is built only
// with -tags samlocal (make sam-local): TestFixtures already covers the handler in
// `make test`, and a stack per lane costs seconds there.
func TestFixturesOnStack(t *testing.T) {
	lanes := 3
	if n, err := strconv.Atoi(os.Getenv("TENANTFLOW_FIXTURE_LANES")); err == nil && n > 0 {
		lanes = n
	}
	pool := st.NewPool(t, lanes, st.Options{})
	cat := tenant.DefaultCatalog()
	for _, name := range fixtureNames(t) {
		want, ok := fixtures[name]
		if !ok {
			continue // reported by TestEveryFixtureHasExpectation
		}
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			t.Parallel()
			s := pool.Get(t)
			raw := readFixture(t, name)
			expected := fmt.Sprintf("HTTP %d", want.status)
			if want.check != nil && inProcessOnly[name] == "" {
				expected += " + checks"
			}
			res := st.Fixture(t, s, "ApiFunction", "api/"+name, raw, expected)
			if res.FunctionError != "" {
				t.Fatalf("function error: %s", res.Payload)
			}
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(res.Payload, &resp); err != nil {
				t.Fatalf("not an API Gateway answer: %s (%v)", res.Payload, err)
			}
			validateAgainstSpec(t, raw, resp)
			if resp.StatusCode != want.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, want.status, resp.Body)
			}
			if resp.StatusCode >= 400 {
				problem(t, resp)
			} else if ct := resp.Headers["Content-Type"]; ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if want.check != nil && inProcessOnly[name] == "" {
				store := s.Store()
				checkOnStack(t, want.check, &env{st: store, plans: newFakePlans(store, cat), subs: &fakeSubs{}, catalog: cat}, resp)
			}
		})
	}
}

// checkOnStack runs a fixture's check, turning a panic (a check reaching for an
// in-process fake the stack env lacks) into a failure of that fixture alone.
func checkOnStack(t *testing.T, check func(*testing.T, *env, events.APIGatewayV2HTTPResponse), e *env, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("check panicked on the stack (%v); if it reads the in-process fakes, list the fixture in inProcessOnly", r)
		}
	}()
	check(t, e, resp)
}
