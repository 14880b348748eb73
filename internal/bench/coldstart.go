package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// ColdStart times the init phase of every function of template.yaml (process start to
// its first Runtime API next call) against two baselines built with the same flags in
// the same run, and sizes every arm64 bootstrap, the architecture deployed.
var ColdStart = Bench{Name: "cold-start", Run: runColdStart}

// Cold-start goals.
const (
	// coldStartRatio bounds a function's median init against the minimal-SDK
	// baseline: the wiring a function adds to "load the AWS config, build a client"
	// must stay a small fraction of it.
	coldStartRatio = 1.1
	// maxBootstrapMB bounds an arm64 bootstrap, in MB of 10^6 bytes: the zip Lambda
	// fetches at a cold start grows with it.
	maxBootstrapMB = 15
	// coldStarts is how many measured starts each binary gets (after one warm-up
	// start, which fills the page cache); the median of 25 shrugs off a few starts
	// that a busy neighbour slowed down.
	coldStarts = 25
)

// Baseline programs (internal/bench/baseline/<name>), never deployed.
const (
	baselineHello  = "hello"
	baselineMinSDK = "minsdk"
)

// buildFlags are the flags of the Makefile's build-% target (what sam build runs),
// so a baseline differs from a function only in its code.
var buildFlags = []string{"build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w"}

// arm is one binary whose starts are timed.
type arm struct {
	name      string
	bootstrap string
	env       []string
	samples   []time.Duration
}

func runColdStart(ctx context.Context, env *Env) (Section, error) {
	sec := Section{Name: "cold-start"}
	tpl, err := env.Template()
	if err != nil {
		return sec, err
	}
	fns, err := tpl.Functions()
	if err != nil {
		return sec, err
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].LogicalID < fns[j].LogicalID })

	// Sizes first: the arm64 builds are cached by source hash like the host builds.
	arm64Dir, err := buildArm64(ctx, env, fns)
	if err != nil {
		return sec, err
	}
	baseDir, err := os.MkdirTemp("", "tenantflow-bench-baseline-")
	if err != nil {
		return sec, err
	}
	defer os.RemoveAll(baseDir)
	for _, arch := range []string{runtime.GOARCH, "arm64"} {
		if err := buildBaselines(ctx, env.Root, arch, filepath.Join(baseDir, arch)); err != nil {
			return sec, err
		}
	}

	hostDir, err := env.Bootstraps(ctx)
	if err != nil {
		return sec, err
	}
	// Functions that read a secret or the tables at init need the stack's moto.
	s, err := env.Stack(ctx)
	if err != nil {
		return sec, err
	}
	arms := []*arm{
		{name: baselineHello, bootstrap: filepath.Join(baseDir, runtime.GOARCH, baselineHello), env: lambdaEnv(s, nil, "BenchHello")},
		{name: baselineMinSDK, bootstrap: filepath.Join(baseDir, runtime.GOARCH, baselineMinSDK), env: lambdaEnv(s, nil, "BenchMinimalSDK")},
	}
	for i := range fns {
		arms = append(arms, &arm{name: fns[i].LogicalID, bootstrap: filepath.Join(hostDir, fns[i].LogicalID, "bootstrap"), env: lambdaEnv(s, &fns[i], "")})
	}
	env.Logf("cold start: %d binaries x %d starts, interleaved", len(arms), coldStarts+1)
	if err := timeStarts(ctx, arms); err != nil {
		return sec, err
	}

	hello, minSDK := Ms(Median(arms[0].samples)), Ms(Median(arms[1].samples))
	sec.Rows = append(sec.Rows,
		NewRow("init p50: baseline hello (aws-lambda-go only)", hello, "ms"),
		NewRow("init p50: baseline minimal SDK (config + DynamoDB client)", minSDK, "ms").Vs(hello))
	missed := []string{}
	for _, a := range arms[2:] {
		row := NewRow("init p50: "+a.name, Ms(Median(a.samples)), "ms").Vs(minSDK).RatioAtMost(coldStartRatio)
		if !*row.Met {
			missed = append(missed, a.name)
		}
		sec.Rows = append(sec.Rows, row)
	}

	baseSize, err := sizeMB(filepath.Join(baseDir, "arm64", baselineMinSDK))
	if err != nil {
		return sec, err
	}
	helloSize, err := sizeMB(filepath.Join(baseDir, "arm64", baselineHello))
	if err != nil {
		return sec, err
	}
	sec.Rows = append(sec.Rows,
		NewRow("arm64 size: baseline hello", helloSize, "MB"),
		NewRow("arm64 size: baseline minimal SDK", baseSize, "MB").Vs(helloSize))
	for _, fn := range fns {
		mb, err := sizeMB(filepath.Join(arm64Dir, fn.LogicalID, "bootstrap"))
		if err != nil {
			return sec, err
		}
		sec.Rows = append(sec.Rows, NewRow("arm64 size: "+fn.LogicalID, mb, "MB").Vs(baseSize).AtMost(maxBootstrapMB, "<= 15 MB"))
	}

	sec.Notes = append(sec.Notes,
		fmt.Sprintf("init = process start to the first GET /2018-06-01/runtime/invocation/next, median of %d starts per binary, "+
			"interleaved in shuffled rounds (one warm-up round discarded); host %s builds, against the stack's moto", coldStarts, runtime.GOARCH),
		"baselines are built in this run with the functions' flags (CGO_ENABLED=0, -tags lambda.norpc -trimpath -ldflags=\"-s -w\"); ratio = function / minimal SDK",
		"functions using Stripe read its key on their first Stripe call, which init does not include; StripeWebhookFunction likewise reads its signing secret on its first delivery (a delivery it cannot verify is answered 503 and redelivered by Stripe), so that round trip is in the first request, not in init",
		"sizes are the arm64 bootstraps `make build-<LogicalId>` builds (as sam build does), in MB of 10^6 bytes; ratio = function / minimal SDK")
	if len(missed) > 0 {
		sec.Notes = append(sec.Notes, "over "+strconv.FormatFloat(coldStartRatio, 'f', -1, 64)+"x the minimal SDK: "+strings.Join(missed, ", "))
	}
	return sec, nil
}

// timeStarts fills every arm's samples: one warm-up round, then coldStarts rounds,
// each starting every binary once in a new random order, one at a time. Interleaving
// spreads a noisy moment over all binaries instead of landing on one.
func timeStarts(ctx context.Context, arms []*arm) error {
	order := make([]*arm, len(arms))
	copy(order, arms)
	var failed []error
	for round := 0; round <= coldStarts; round++ {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, a := range order {
			d, err := measureInit(ctx, a.bootstrap, a.env)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// One failure is enough to know: the binary drops out of later rounds.
				failed = append(failed, fmt.Errorf("%s: %w", a.name, err))
				order = without(order, a)
				continue
			}
			if round > 0 {
				a.samples = append(a.samples, d)
			}
		}
	}
	return errors.Join(failed...)
}

func without(arms []*arm, a *arm) []*arm {
	out := make([]*arm, 0, len(arms))
	for _, x := range arms {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

// lambdaEnv is the environment the local Lambda service gives a function (the
// template's variables, Lambda's own, and the stack's endpoints and dummy
// credentials), so a function inits here exactly as it does in the stack. fn is nil
// for a baseline, which gets the same minus the template's variables.
func lambdaEnv(s *stack.Stack, fn *samtemplate.Function, name string) []string {
	memory := samtemplate.DefaultMemorySize
	vars := map[string]string{}
	if fn != nil {
		name = fn.Name
		if name == "" {
			name = fn.LogicalID
		}
		if fn.MemorySize > 0 {
			memory = fn.MemorySize
		}
		for k, v := range fn.Environment {
			vars[k] = v
		}
	}
	base := map[string]string{
		"PATH": os.Getenv("PATH"), "TZ": ":UTC", "LANG": "en_US.UTF-8",
		"AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(memory),
		"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + name,
		"AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
		"AWS_ENDPOINT_URL_SFN": s.SFN.Endpoint(), "STRIPE_API_BASE": s.Stripe.URL,
	}
	for k, v := range base {
		vars[k] = v
	}
	for _, kv := range testenv.AWSEnv(s.Moto.Endpoint) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	// Each function signs as its own IAM user where the stack enforces IAM.
	creds := s.Moto.Admin
	if fn != nil {
		creds = principal(s, fn.LogicalID)
	}
	vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"] = creds.AccessKeyID, creds.SecretAccessKey
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// buildArm64 builds every function for arm64 as sam build does, cached by source hash
// in a cache of its own (beside the host builds, so neither evicts the other).
func buildArm64(ctx context.Context, env *Env, fns []samtemplate.Function) (string, error) {
	cache, err := lambdasvc.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	start := time.Now()
	dir, err := lambdasvc.Builder{Root: env.Root, GOARCH: "arm64", Log: env.Log}.BuildCached(ctx, fns, cache+"-arm64")
	if err != nil {
		return "", err
	}
	env.Logf("arm64 bootstraps ready in %s", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

// buildBaselines builds both baseline programs for goarch into dir.
func buildBaselines(ctx context.Context, root, goarch, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{baselineHello, baselineMinSDK} {
		args := append(append([]string{}, buildFlags...), "-o", filepath.Join(dir, name), "./internal/bench/baseline/"+name)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build baseline %s (%s): %w\n%s", name, goarch, err, out.String())
		}
	}
	return nil
}

func sizeMB(path string) (float64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return float64(fi.Size()) / 1e6, nil
}
