package invariants_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/invariants"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// The environment of TestLifecycleInvariants:
//
//	TENANTFLOW_INVARIANTS_SEED=<seed>     run that seed (default: drawn, and logged)
//	TENANTFLOW_INVARIANTS_SEQUENCES=<n>   run n sequences (seeds seed..seed+n-1; default 3)
//	TENANTFLOW_INVARIANTS_STEPS=<n>       steps per sequence (default 16)
//	TENANTFLOW_INVARIANTS_FOCUS=<name>    a focus mix: suspension, winback, canceled, race
//	TENANTFLOW_INVARIANTS_SHRINK=<runs>   runs spent shrinking a failure (default 12; 0: none)
const (
	SeedEnv      = "TENANTFLOW_INVARIANTS_SEED"
	SequencesEnv = "TENANTFLOW_INVARIANTS_SEQUENCES"
	StepsEnv     = "TENANTFLOW_INVARIANTS_STEPS"
	FocusEnv     = "TENANTFLOW_INVARIANTS_FOCUS"
	ShrinkEnv    = "TENANTFLOW_INVARIANTS_SHRINK"
)

func envInt(t *testing.T, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// TestLifecycleInvariants runs three seeded sequences of interleaved actions by every
// actor on three tenants against the local stack, checking the lifecycle's invariants
// after every step (docs/invariants.md), and fails with the shrunk sequence and its
// seed when one breaks. `make soak` runs many more.
func TestLifecycleInvariants(t *testing.T) {
	s := st.Shared(t)
	seed := envInt(t, SeedEnv, time.Now().UnixNano()%1_000_000_000)
	t.Logf("seed %d (%s=%d runs it again)", seed, SeedEnv, seed)
	shrink := int(envInt(t, ShrinkEnv, 12))
	if shrink == 0 {
		shrink = -1
	}
	cfg := invariants.Config{
		Sequences: int(envInt(t, SequencesEnv, 3)), Seed: seed, Tenants: 3, Steps: int(envInt(t, StepsEnv, 16)),
		Focus: os.Getenv(FocusEnv), ShrinkRuns: shrink, ShrinkTime: 45 * time.Second, Logf: t.Logf,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rep, err := invariants.Run(ctx, s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Summary())
	for _, f := range rep.Failures {
		t.Errorf("%s", f)
	}
	if rep.Steps == 0 {
		t.Error("no step ran")
	}
}
