// Command samlocal is `make sam-local`: it runs the fixture tests with every fixture
// invocation going through the real `sam local invoke` (TENANTFLOW_FIXTURE_INVOKER=
// sam-local) and prints, per fixture of events/, what the Go tests expect, what SAM's
// container answered, and whether the tests' checks passed.
//
// The Docker daemon and the base image are tools/sam-local-docker.sh's business; this
// command expects DOCKER_HOST and SAM_LOCAL_IMAGE to name them.
//
// Each test binary's sam runs in a preloaded SAM CLI fork server
// (tools/sam_forkserver.py) unless TENANTFLOW_SAM_FORKSERVER=0, which execs sam per
// invocation (samlocal.ForkServerEnv); the last line says which it was.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/samlocal"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// packages hold the fixture tests; tests names them.
var (
	packages = []string{"./shared/httpapi", "./shared/planchange", "./shared/lifecycle", "./shared/purge", "./shared/webhook", "./shared/export"}
	tests    = "^(TestFixturesOnStack|TestStepFixtures|TestStripeFixtures)$"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("samlocal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lanes := fs.Int("lanes", 3, "stacks the API fixtures are played on at once")
	procs := fs.Int("p", 3, "test packages run at once (go test -p); each starts its own stack")
	since := fs.Int64("since", 0, "unix time the run started (make passes it so the time includes Docker's start); default now")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	start := time.Now()
	if *since > 0 {
		start = time.Unix(*since, 0)
	}
	if os.Getenv("DOCKER_HOST") == "" {
		log.Error("DOCKER_HOST is not set; run make sam-local (tools/sam-local-docker.sh start prints it)")
		return 1
	}
	image := os.Getenv("SAM_LOCAL_IMAGE")
	if image == "" {
		image = samlocal.DefaultImage
	}
	root := testenv.RepoRoot()
	dir := filepath.Join(testenv.ToolsDir(), "sam-local")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Error("cache dir", "err", err)
		return 1
	}
	report := filepath.Join(dir, "report.jsonl")
	logPath := filepath.Join(dir, "go-test.log")
	_ = os.Remove(report)
	logFile, err := os.Create(logPath)
	if err != nil {
		log.Error("log file", "err", err)
		return 1
	}
	defer logFile.Close()

	fmt.Fprintf(stdout, "==> sam local invoke of every fixture of events/ (image %s, DOCKER_HOST %s)\n", image, os.Getenv("DOCKER_HOST"))
	fmt.Fprintf(stdout, "    go test %s (output: %s)\n", strings.Join(packages, " "), logPath)
	goArgs := append([]string{"test", "-tags", "samlocal", "-count=1", "-timeout", "60m", "-p", strconv.Itoa(*procs),
		"-parallel", strconv.Itoa(*lanes), "-run", tests}, packages...)
	cmd := exec.Command("go", goArgs...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		samlocal.InvokerEnv+"=sam-local", samlocal.ReportEnv+"="+report,
		"TENANTFLOW_FIXTURE_LANES="+strconv.Itoa(*lanes), "SAM_LOCAL_IMAGE="+image)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	testErr := cmd.Run()

	rows, err := samlocal.ReadRows(report)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Error("read report", "err", err)
		return 1
	}
	rows = append(rows, missing(root, rows)...)
	fmt.Fprintln(stdout)
	invoked, matching := samlocal.WriteTable(stdout, rows)
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "%d fixtures invoked by sam local invoke, %d matching (image %s) in %s (%s)\n",
		invoked, matching, image, time.Since(start).Round(time.Second), samlocal.HowSAMRan(rows))
	ok := testErr == nil && invoked == matching && invoked == len(rows)
	if !ok {
		if testErr != nil {
			fmt.Fprintf(stdout, "go test failed (%v); its output is in %s\n", testErr, logPath)
		}
		return 1
	}
	return 0
}

// missing returns a row for every events/*/*.json no test invoked, so a fixture
// without a test shows up as a failure instead of silently dropping out.
func missing(root string, rows []samlocal.Row) []samlocal.Row {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.Fixture] = true
	}
	files, _ := filepath.Glob(filepath.Join(root, "events", "*", "*.json"))
	var out []samlocal.Row
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(root, "events"), f)
		if !seen[rel] {
			out = append(out, samlocal.Row{Fixture: rel, Invoker: "none", Expected: "-", Got: "not invoked by any fixture test"})
		}
	}
	return out
}
