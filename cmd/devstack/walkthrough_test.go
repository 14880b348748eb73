package main

// The README's walkthrough, run as written: the block after the marker comment in
// README.md, line by line, against a fresh devstack. tenantctl lines run the real
// command in-process (internal/tenantctl) with no endpoint or token given, so they
// find the stack the way they find `make dev` (its state directory); `go run
// ./cmd/devstack ...` lines run this command's subcommands against the same state
// directory. Each line's exit code and output are checked against walkthroughSteps,
// and the README's lines must be exactly those steps, so neither can drift.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/internal/tenantctl"
)

const walkthroughMarker = "<!-- cmd/devstack/walkthrough_test.go runs the next block"

// stepResult is what one line did.
type stepResult struct {
	code           int
	stdout, stderr string
}

type walkStep struct {
	line  string
	code  int
	check func(t *testing.T, r stepResult, vars map[string]string, dir string)
}

func contains(parts ...string) func(*testing.T, stepResult, map[string]string, string) {
	return func(t *testing.T, r stepResult, _ map[string]string, _ string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(r.stdout+r.stderr, p) {
				t.Errorf("output lacks %q", p)
			}
		}
	}
}

func matches(name, re string) func(*testing.T, stepResult, map[string]string, string) {
	return func(t *testing.T, _ stepResult, vars map[string]string, _ string) {
		t.Helper()
		if !regexp.MustCompile(re).MatchString(vars[name]) {
			t.Errorf("$%s = %q, want %s", name, vars[name], re)
		}
	}
}

var walkthroughSteps = []walkStep{
	{"tenantctl tenants show tenant_acme", 0, contains("tenant_acme", "ACTIVE", "starter")},
	{"tenantctl upgrade tenant_techstart --plan starter --wait", 0, contains("upgrade tenant_techstart: SUCCEEDED", "free → starter")},
	{"tenantctl tenants audit tenant_techstart", 0, contains("UPGRADING")},
	{"tenantctl entitlements tenant_techstart", 0, contains("starter", "ACTIVE")},
	{"tenantctl downgrade tenant_enterprise --plan starter", 1, contains("422", "users 45 > 10")},
	{"OP=$(tenantctl downgrade tenant_acme --plan free --at-period-end --quiet)", 0, matches("OP", `^op_[a-z0-9_]+$`)},
	{"go run ./cmd/devstack fire DowngradeSweepFunction --time 2099-01-01T00:00:00Z", 0, nil},
	{"tenantctl operations wait $OP", 0, contains("SUCCEEDED", "starter → free")},
	{"tenantctl operations steps $OP", 0, contains("execution SUCCEEDED", "STEP")},
	{"ACME=$(go run ./cmd/devstack token --tenant tenant_acme)", 0, matches("ACME", `^ey[\w-]+\.[\w-]+\.[\w-]+$`)},
	{"tenantctl --token $ACME tenants show tenant_enterprise", 1, contains("403")},
	{`tenantctl suspend tenant_enterprise --reason "chargeback review" --wait`, 0, contains("suspension tenant_enterprise: SUCCEEDED")},
	{"tenantctl reactivate tenant_enterprise --plan professional --wait", 0, contains("tenant_enterprise: SUCCEEDED")},
	{"tenantctl delete tenant_techstart --wait", 0, contains("retention 30 days", "SUCCEEDED")},
	{"tenantctl tenants show tenant_techstart", 0, contains("DELETED", "purge after")},
	{"TECH=$(go run ./cmd/devstack token --tenant tenant_techstart)", 0, nil},
	{"tenantctl --token $TECH reactivate tenant_techstart --plan starter --wait", 0, contains("SUCCEEDED")},
	{"tenantctl delete tenant_techstart --retention-days 30 --wait", 0, contains("SUCCEEDED")},
	{"go run ./cmd/devstack end-retention --tenant tenant_techstart", 0, nil},
	{"go run ./cmd/devstack fire PurgeSweepFunction", 0, nil},
	{"tenantctl tenants wait tenant_techstart --state PURGED", 0, contains("PURGED")},
	{"tenantctl certificate tenant_techstart", 0, contains("SOURCE", "sha256", "remains:")},
	{"tenantctl reactivate tenant_techstart --plan starter", 1, contains("409", "etention")},
	{"go run ./cmd/devstack fire ReconcileFunction", 0, nil},
	{"go run ./cmd/devstack stripe-event customer.subscription.updated --status unpaid --tenant tenant_acme", 0, nil},
	{"tenantctl tenants wait tenant_acme --state SUSPENDED", 0, contains("nonpayment")},
	{"go run ./cmd/devstack stripe-event invoice.paid --tenant tenant_acme", 0, nil},
	{"tenantctl tenants wait tenant_acme --state ACTIVE", 0, contains("ACTIVE")},
	{"EX=$(tenantctl exports start tenant_acme --quiet)", 0, matches("EX", `^exp_[a-z0-9_]+$`)},
	{"tenantctl exports wait tenant_acme $EX", 0, contains("completed", "sha256")},
	{"tenantctl exports download tenant_acme $EX --file acme.ndjson.gz", 0, func(t *testing.T, r stepResult, _ map[string]string, dir string) {
		data, err := os.ReadFile(filepath.Join(dir, "acme.ndjson.gz"))
		if err != nil {
			t.Fatalf("the download left no file: %v", err)
		}
		sum := sha256.Sum256(data)
		if !strings.Contains(r.stdout, hex.EncodeToString(sum[:])+" verified") || len(data) < 20 || data[0] != 0x1f || data[1] != 0x8b {
			t.Errorf("acme.ndjson.gz (%d bytes, sha256 %x) is not the gzip the output verified: %s", len(data), sum, r.stdout)
		}
	}},
}

// readmeWalkthrough returns the commands of the README's walkthrough block: comments
// and blank lines dropped, continuation lines joined.
func readmeWalkthrough(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), walkthroughMarker)
	if !ok {
		t.Fatalf("README.md has no %q marker", walkthroughMarker)
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// words splits a line like a shell: spaces separate, double quotes group, $NAME is
// replaced by its value.
func words(line string, vars map[string]string) []string {
	line = regexp.MustCompile(`\$[A-Z]+`).ReplaceAllStringFunc(line, func(v string) string { return vars[v[1:]] })
	var out []string
	var cur strings.Builder
	inQuote, started := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, started = !inQuote, true
		case r == ' ' && !inQuote:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

func TestREADMEWalkthroughWithTenantctl(t *testing.T) {
	// First the cheap check: the README's block is the steps below.
	readme := readmeWalkthrough(t)
	var want []string
	for _, s := range walkthroughSteps {
		want = append(want, s.line)
	}
	if strings.Join(readme, "\n") != strings.Join(want, "\n") {
		t.Fatalf("README.md's walkthrough and walkthroughSteps differ; README:\n%s\n\nsteps:\n%s", strings.Join(readme, "\n"), strings.Join(want, "\n"))
	}

	stateDir, workDir := t.TempDir(), t.TempDir()
	logs := &testLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r, err := Serve(ctx, ServeOptions{StateDir: stateDir, Port: 0, RetryIntervalsZero: true, NoSchedules: true, Out: logs})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	defer func() {
		r.Close()
		if t.Failed() && !testing.Verbose() {
			t.Logf("devstack output:\n%s", logs.String())
		}
	}()
	// Nothing but the state directory: no endpoint, no token (the stack is on a random
	// port, which tenantctl learns from endpoints.json).
	env := tenantctl.Env{Dir: workDir, Getenv: func(k string) string {
		if k == "TENANTFLOW_DEVSTACK_DIR" {
			return stateDir
		}
		return ""
	}}

	vars := map[string]string{}
	for i, step := range walkthroughSteps {
		line := step.line
		assign := ""
		if m := regexp.MustCompile(`^([A-Z]+)=\$\((.*)\)$`).FindStringSubmatch(line); m != nil {
			assign, line = m[1], m[2]
		}
		args := words(line, vars)
		var out, errOut bytes.Buffer
		var res stepResult
		begin := time.Now()
		switch {
		case args[0] == "tenantctl":
			sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
			res.code = tenantctl.Main(sctx, args[1:], env, &out, &errOut)
			scancel()
		case len(args) > 2 && args[0] == "go" && args[1] == "run" && args[2] == "./cmd/devstack":
			res.code = run(append(args[3:], "--state-dir", stateDir), &out, &errOut)
		default:
			t.Fatalf("step %d: %q is neither tenantctl nor go run ./cmd/devstack", i+1, step.line)
		}
		res.stdout, res.stderr = out.String(), errOut.String()
		if assign != "" {
			vars[assign] = strings.TrimSpace(res.stdout)
		}
		t.Logf("$ %s   (exit %d, %v)\n%s%s", step.line, res.code, time.Since(begin).Round(time.Millisecond), indent(res.stderr), indent(res.stdout))
		ok := t.Run(fmt.Sprintf("%02d", i+1), func(t *testing.T) {
			if res.code != step.code {
				t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", step.line, res.code, step.code, res.stdout, res.stderr)
			}
			if step.check != nil {
				step.check(t, res, vars, workDir)
			}
		})
		if !ok {
			t.Fatalf("step %d (%s) failed; the rest depends on it", i+1, step.line)
		}
	}

	// The end state the walkthrough promises, read through the API as JSON.
	var out bytes.Buffer
	if code := tenantctl.Main(ctx, []string{"tenants", "show", "tenant_techstart", "-o", "json"}, env, &out, &out); code != 0 {
		t.Fatalf("show techstart: %d %s", code, out.String())
	}
	var tech struct{ State, Name string }
	if err := json.Unmarshal(out.Bytes(), &tech); err != nil || tech.State != "PURGED" {
		t.Errorf("techstart at the end = %+v (%v), want PURGED", tech, err)
	}
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
