// Command soak is `make soak`: the lifecycle's invariants (internal/localstack/invariants)
// checked over many seeded sequences on a local stack of its own. Each failing
// sequence is shrunk and printed one action per line with its seed; the last line is
//
//	N sequences, M steps, K violations
//
// Examples:
//
//	go run ./cmd/soak                                 # 20 sequences from a drawn seed
//	go run ./cmd/soak -count 200 -seed 42             # seeds 42..241
//	go run ./cmd/soak -count 0 -duration 30m          # as many as fit in 30 minutes
//	go run ./cmd/soak -seed 7 -count 1 -focus race    # one seed, racing Stripe deliveries
//
// It exits 1 when an invariant broke, 2 on bad flags, 3 when the run itself failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/invariants"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg invariants.Config
	fs.IntVar(&cfg.Sequences, "count", 20, "sequences to run (0: as many as -duration allows)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "start no sequence after this long (0: no bound)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the first sequence; the k-th runs seed+k (0: drawn)")
	fs.IntVar(&cfg.Tenants, "tenants", 3, "tenants per sequence")
	fs.IntVar(&cfg.Steps, "steps", 20, "steps per sequence")
	focuses := slices.Sorted(func(yield func(string) bool) {
		for k := range invariants.Focuses {
			if !yield(k) {
				return
			}
		}
	})
	fs.StringVar(&cfg.Focus, "focus", "", "weigh the actions toward one interleaving: "+strings.Join(focuses, ", "))
	fs.Float64Var(&cfg.ConcurrentRate, "concurrent", 0, "share of steps with two actions at once (default 0.2; negative: none)")
	fs.Float64Var(&cfg.FaultRate, "faults", 0, "share of actions with a fault armed (default 0.12; negative: none)")
	fs.IntVar(&cfg.ShrinkRuns, "shrink", 60, "runs spent shrinking each failing sequence (0: do not shrink)")
	logPath := fs.String("log", filepath.Join(".soak", "latest.log"), "where the services' output goes (relative to the repository root)")
	verbose := fs.Bool("v", false, "print a line per sequence")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "soak: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.Focus != "" && invariants.Focuses[cfg.Focus] == nil {
		fmt.Fprintf(stderr, "soak: no focus %q (%s)\n", cfg.Focus, strings.Join(focuses, ", "))
		return 2
	}
	if cfg.Sequences <= 0 && cfg.Duration <= 0 {
		fmt.Fprintln(stderr, "soak: -count 0 needs a -duration")
		return 2
	}
	if cfg.ShrinkRuns == 0 {
		cfg.ShrinkRuns = -1
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano() % 1_000_000_000
	}
	cfg.Logf = func(format string, a ...any) {
		if *verbose {
			fmt.Fprintf(stderr, "soak: "+format+"\n", a...)
		}
	}

	root := testenv.RepoRoot()
	if !filepath.IsAbs(*logPath) {
		*logPath = filepath.Join(root, *logPath)
	}
	if err := os.MkdirAll(filepath.Dir(*logPath), 0o755); err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 3
	}
	logFile, err := os.Create(*logPath)
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 3
	}
	defer logFile.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "soak: starting a local stack (services' output: %s)\n", *logPath)
	s, err := stack.Start(ctx, stack.Options{Root: root, RetryIntervalsZero: true, Log: logFile})
	if err != nil {
		fmt.Fprintln(stderr, "soak: start the local stack:", err)
		return 3
	}
	defer s.Close()
	fmt.Fprintf(stderr, "soak: seed %d, %d tenants x %d steps per sequence\n", cfg.Seed, cfg.Tenants, cfg.Steps)
	rep, err := invariants.Run(ctx, s, cfg)
	for _, f := range rep.Failures {
		fmt.Fprintln(stdout, f)
	}
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		fmt.Fprintln(stdout, rep.Summary())
		return 3
	}
	fmt.Fprintf(stderr, "soak: %s\n", rep.Duration.Round(time.Second))
	fmt.Fprintln(stdout, rep.Summary())
	if rep.Violations > 0 {
		return 1
	}
	return 0
}
