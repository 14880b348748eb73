// Command bench is `make bench`: it runs the benchmark sections of internal/bench on
// the local stack, prints one table and writes it as JSON (default .bench/latest.json).
//
//	go run ./cmd/bench                      # every section
//	go run ./cmd/bench -only cold-start,purge-sweep   # a subset, by name
//	go run ./cmd/bench -only lifecycle-load,chaos
//
// It exits non-zero only when a section could not measure; a missed goal is reported
// in the table (met: MISSED), not as a failure, so a slow day does not break a build.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/internal/bench"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// sections are run in this order. A new section is a Bench in internal/bench and one
// entry here.
var sections = []bench.Bench{
	bench.ColdStart,
	bench.HandlerOverhead,
	bench.PurgeSweep,
	bench.Export,
	bench.LifecycleLoad,
	bench.Chaos,
	bench.Soak,
}

func main() {
	only := flag.String("only", "", "comma-separated section names to run (default: all): "+names())
	out := flag.String("out", filepath.Join(".bench", "latest.json"), "where to write the JSON report (relative to the repository root)")
	flag.Parse()
	os.Exit(run(*only, *out))
}

func names() string {
	var n []string
	for _, b := range sections {
		n = append(n, fmt.Sprintf("%q", b.Name))
	}
	return strings.Join(n, ", ")
}

func run(only, out string) int {
	selected, err := selectSections(only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	root := testenv.RepoRoot()
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	// The services' and functions' output goes to a file beside the report: the
	// table is what the terminal is for.
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	logPath := strings.TrimSuffix(out, filepath.Ext(out)) + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer logFile.Close()

	// Ctrl-C cancels the running section; every process started is stopped below.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := bench.NewEnv(root, logFile, os.Stderr)
	rep := &bench.Report{Started: time.Now().UTC(), Host: bench.ThisHost()}
	for _, b := range selected {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		env.Logf("%s ...", b.Name)
		sec, err := b.Run(ctx, env)
		if sec.Name == "" {
			sec.Name = b.Name
		}
		rep.Sections = append(rep.Sections, sec)
		if err != nil {
			if rep.Errors == nil {
				rep.Errors = map[string]string{}
			}
			rep.Errors[b.Name] = err.Error()
			env.Logf("%s failed after %s: %v", b.Name, time.Since(start).Round(time.Second), err)
			continue
		}
		env.Logf("%s done in %s", b.Name, time.Since(start).Round(time.Second))
	}
	env.Close()
	rep.Seconds = time.Since(rep.Started).Round(time.Second).Seconds()
	if ctx.Err() != nil {
		if rep.Errors == nil {
			rep.Errors = map[string]string{}
		}
		rep.Errors["bench"] = "interrupted"
	}

	fmt.Println()
	if err := rep.WriteTable(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := rep.WriteJSON(out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Printf("report: %s (services' output: %s)\n", rel(root, out), rel(root, logPath))
	if len(rep.Errors) > 0 {
		return 1
	}
	return 0
}

// selectSections returns the sections named in only (all when empty), in registry order.
func selectSections(only string) ([]bench.Bench, error) {
	if strings.TrimSpace(only) == "" {
		return sections, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []bench.Bench
	for _, b := range sections {
		if want[b.Name] {
			out = append(out, b)
			delete(want, b.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, fmt.Sprintf("%q", n))
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("no section named %s (sections: %s)", strings.Join(unknown, ", "), names())
	}
	return out, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
