package stacktest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/samlocal"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// invokers holds one `sam local invoke` runner per stack (only in sam-local mode).
var invokers = map[*stack.Stack]*samlocal.Invoker{}

// Fixture invokes function fn with payload, the content of (or an event built from)
// the fixture events/<fixture>, and returns the function's result. It is the one place
// where fixture tests play fixtures: by default through the stack's local Lambda
// service; with TENANTFLOW_FIXTURE_INVOKER=sam-local through `sam local invoke fn -e
// <fixture>` in a container against the same emulators, so the caller's checks judge
// the real SAM CLI's result. expected says in a few words what the caller checks; with
// TENANTFLOW_SAM_LOCAL_REPORT set, a row (fixture, function, expected, got, match) is
// appended there when t ends, match being whether t passed.
func Fixture(t *testing.T, s *stack.Stack, fn, fixture string, payload []byte, expected string) lambdasvc.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	row := samlocal.Row{Fixture: fixture, Function: fn, Expected: expected, Invoker: samlocal.InvokerLambda}
	var res lambdasvc.Result
	var err error
	start := time.Now()
	if samlocal.Enabled() {
		row.Invoker = samlocal.InvokerSAM
		var inv *samlocal.Invoker
		if inv, err = samInvoker(ctx, s); err == nil {
			path := filepath.Join(testenv.RepoRoot(), "events", fixture)
			if raw, readErr := os.ReadFile(path); readErr == nil && bytes.Equal(raw, payload) {
				res, err = inv.Invoke(ctx, fn, path)
			} else {
				res, err = inv.InvokePayload(ctx, fn, payload)
			}
			row.Via = inv.Via()
		}
	} else {
		res, err = s.Lambda.Invoke(ctx, fn, payload)
	}
	row.Seconds = time.Since(start).Seconds()
	if report := os.Getenv(samlocal.ReportEnv); report != "" {
		t.Cleanup(func() {
			row.Match = !t.Failed()
			if appendErr := samlocal.AppendRow(report, row); appendErr != nil {
				t.Errorf("report: %v", appendErr)
			}
		})
	}
	if err != nil {
		row.Error = err.Error()
		t.Fatalf("invoke %s with events/%s (%s): %v", fn, fixture, row.Invoker, err)
	}
	row.Got = samlocal.Summary(res)
	return res
}

// samInvoker returns the stack's `sam local invoke` runner, preparing it on first use:
// the bootstraps the local Lambda service runs (already built for this machine, so
// the cached build is reused) become the functions' code, and SAM's containers reach
// the stack's emulators through relays on the Docker bridge.
func samInvoker(ctx context.Context, s *stack.Stack) (*samlocal.Invoker, error) {
	mu.Lock()
	defer mu.Unlock()
	if inv := invokers[s]; inv != nil {
		return inv, nil
	}
	root := testenv.RepoRoot()
	fns, err := s.Template.Functions()
	if err != nil {
		return nil, err
	}
	cacheDir, err := lambdasvc.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	buildDir, err := lambdasvc.BuildCached(ctx, root, fns, cacheDir)
	if err != nil {
		return nil, err
	}
	// Region and credentials are not template variables: sam sets them from its own
	// environment (samlocal.Config.Credentials).
	inv, err := samlocal.New(ctx, samlocal.Config{
		Root: root, Functions: fns, BuildDir: buildDir, Params: stack.LocalParams,
		Credentials: s.Principals, STSEndpoint: s.Moto.Endpoint,
		Endpoints: map[string]string{
			"AWS_ENDPOINT_URL":     s.Moto.Endpoint,
			"AWS_ENDPOINT_URL_SFN": s.SFN.Endpoint(),
			"STRIPE_API_BASE":      s.Stripe.URL,
		},
		Log: quietLog{},
	})
	if err != nil {
		return nil, err
	}
	invokers[s] = inv
	testenv.OnStop(func() {
		mu.Lock()
		defer mu.Unlock()
		inv.Close()
		delete(invokers, s)
	})
	return inv, nil
}

// CheckListed fails t for every fixture matching events/<glob> that is neither in
// listed (paths relative to events/) nor owned by another package's test (owned may
// be nil), so a fixture cannot be added without an expectation.
func CheckListed(t *testing.T, glob string, listed []string, owned func(rel string) bool) {
	t.Helper()
	events := filepath.Join(testenv.RepoRoot(), "events")
	files, _ := filepath.Glob(filepath.Join(events, glob))
	for _, f := range files {
		rel, _ := filepath.Rel(events, f)
		rel = filepath.ToSlash(rel)
		if !slices.Contains(listed, rel) && (owned == nil || !owned(rel)) {
			t.Errorf("fixture events/%s has no expectation in stepFixtures", rel)
		}
	}
}

// PlaySteps plays step fixtures (paths relative to events/; the directory names the
// function) in order on s, one subtest each so that `make sam-local` reports each
// one's verdict. A function error fails the subtest; otherwise check judges the
// answer of fixture i.
func PlaySteps(t *testing.T, s *stack.Stack, files []string, check func(t *testing.T, i int, payload []byte)) {
	t.Helper()
	for i, file := range files {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", file))
		if err != nil {
			t.Fatal(err)
		}
		fn := LogicalID(filepath.Dir(file))
		if _, err := s.Template.Function(fn); err != nil {
			t.Fatalf("events/%s: no function %s in template.yaml", file, fn)
		}
		t.Run(file, func(t *testing.T) {
			res := Fixture(t, s, fn, file, raw, "no error, step checks")
			if res.FunctionError != "" {
				t.Fatalf("%s: %s %s", file, res.FunctionError, res.Payload)
			}
			check(t, i, res.Payload)
		})
	}
}
