package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/invariants"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// Soak runs the lifecycle invariants (internal/localstack/invariants) over a few
// seeded sequences, as `make soak` does at a larger size: how many sequences and
// steps ran, in how long, and how many invariants broke (the goal is none). It starts
// a stack of its own, because every sequence resets its stack.
var Soak = Bench{Name: "soak", Run: runSoak}

// SoakSequencesEnv, set to a number, runs that many sequences instead of
// soakSequences.
const SoakSequencesEnv = "TENANTFLOW_BENCH_SOAK_SEQUENCES"

const (
	soakSequences = 4
	soakTenants   = 3
	soakSteps     = 15
)

func runSoak(ctx context.Context, env *Env) (Section, error) {
	sec := Section{Name: "soak"}
	n := soakSequences
	if v := os.Getenv(SoakSequencesEnv); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			return sec, fmt.Errorf("%s=%q: want a number of sequences, at least 1", SoakSequencesEnv, v)
		}
		n = k
	}
	dir, err := env.Bootstraps(ctx)
	if err != nil {
		return sec, err
	}
	tpl, err := env.Template()
	if err != nil {
		return sec, err
	}
	// Retries without waits, as in the tests: the sequences judge outcomes, not
	// timings, and a fault's retries would otherwise take seconds each.
	s, err := stack.Start(ctx, stack.Options{Root: env.Root, Template: tpl, Log: env.Log, RetryIntervalsZero: true,
		Bootstraps: func(context.Context) (string, error) { return dir, nil }})
	if err != nil {
		return sec, fmt.Errorf("start a local stack: %w", err)
	}
	env.OnClose(s.Close)
	defer s.Close()
	seed := time.Now().UnixNano() % 1_000_000_000
	env.Logf("soak: seed %d: %d sequences of %d tenants x %d steps", seed, n, soakTenants, soakSteps)
	rep, err := invariants.Run(ctx, s, invariants.Config{Sequences: n, Seed: seed, Tenants: soakTenants, Steps: soakSteps, ShrinkRuns: 20, ShrinkTime: 3 * time.Minute})
	if err != nil {
		return sec, err
	}
	sec.Rows = []Row{
		NewRow("sequences", float64(rep.Sequences), "count"),
		NewRow("steps", float64(rep.Steps), "count"),
		NewRow("violations", float64(rep.Violations), "count").AtMost(0, "0"),
		NewRow("duration", rep.Duration.Seconds(), "s"),
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf("seeds %d..%d, %d tenants x %d steps each (`make soak ARGS=\"-seed %d -count %d -tenants %d -steps %d\"` runs them again); %s",
		seed, seed+int64(n)-1, soakTenants, soakSteps, seed, n, soakTenants, soakSteps, rep.Summary()))
	for _, f := range rep.Failures {
		sec.Notes = append(sec.Notes, fmt.Sprintf("seed %d broke %s: %s (shrunk to %d actions)", f.Seed, f.Invariant, f.ShrunkViolation, f.Shrunk.Actions()))
	}
	return sec, nil
}
