package invariants

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// Config sizes a run.
type Config struct {
	// Sequences is how many sequences to run (0: until Duration ends; at least one).
	Sequences int
	// Duration bounds the run: no sequence starts after it (0: no bound).
	Duration time.Duration
	// Seed is the first sequence's seed; sequence k runs Seed+k (0: drawn from the
	// clock; the report names every seed).
	Seed int64
	// Tenants and Steps size each sequence (defaults 2 and 12).
	Tenants, Steps int
	// Focus names a Mix of Focuses; Mix overrides class weights on top of it.
	Focus string
	Mix   Mix
	// ConcurrentRate is the share of steps with two actions at once (default 0.2);
	// FaultRate the share of actions with a fault armed (default 0.12); ReorderRate
	// the share of new Stripe events created before the last one (default 0.2);
	// RedeliveryRate the share of Stripe events that repeat an earlier one (default
	// 0.15). A negative rate is 0.
	ConcurrentRate, FaultRate, ReorderRate, RedeliveryRate float64
	// SettleTimeout bounds the wait for quiescence after a step (default 90 s).
	SettleTimeout time.Duration
	// ShrinkRuns bounds the runs spent shrinking one failing sequence (default 60;
	// negative: do not shrink); ShrinkTime bounds their time (default 10 minutes).
	ShrinkRuns int
	ShrinkTime time.Duration
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Sequences <= 0 && c.Duration <= 0 {
		c.Sequences = 1
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano() % 1_000_000_000
	}
	if c.Tenants <= 0 {
		c.Tenants = 2
	}
	if c.Steps <= 0 {
		c.Steps = 12
	}
	rate := func(r *float64, def float64) {
		switch {
		case *r == 0:
			*r = def
		case *r < 0:
			*r = 0
		}
	}
	rate(&c.ConcurrentRate, 0.2)
	rate(&c.FaultRate, 0.12)
	rate(&c.ReorderRate, 0.2)
	rate(&c.RedeliveryRate, 0.15)
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = 90 * time.Second
	}
	if c.ShrinkRuns == 0 {
		c.ShrinkRuns = 60
	}
	if c.ShrinkTime <= 0 {
		c.ShrinkTime = 10 * time.Minute
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Failure is one sequence that broke an invariant, with the shortest sequence found
// that still breaks it.
type Failure struct {
	Seed      int64
	Invariant string
	// First is the first violation of the original sequence; Violations all of its
	// failing step.
	First      Violation
	Violations []Violation
	Original   Sequence
	// Shrunk is the smallest sequence that still broke Invariant (the original when
	// shrinking found nothing smaller or was off), ShrunkViolation what it broke, and
	// Transcript what each of its actions was answered when it last ran.
	Shrunk          Sequence
	ShrunkViolation Violation
	Transcript      []string
	ShrinkRuns      int
}

// String renders the failure: the seed, the invariant, and the shrunk sequence one
// action per line.
func (f Failure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d violates %s (%s)\n", f.Seed, f.Invariant, Invariants[f.Invariant])
	fmt.Fprintf(&b, "  first: %s\n", f.First)
	for _, v := range f.Violations[min(1, len(f.Violations)):] {
		fmt.Fprintf(&b, "  also:  %s\n", v)
	}
	if f.ShrinkRuns > 0 {
		fmt.Fprintf(&b, "  shrunk from %d to %d actions in %d runs; the shrunk sequence:\n", f.Original.Actions(), f.Shrunk.Actions(), f.ShrinkRuns)
	} else {
		b.WriteString("  not shrunk; the sequence:\n")
	}
	for _, l := range f.Shrunk.Lines() {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	fmt.Fprintf(&b, "  it broke: %s\n", f.ShrunkViolation)
	if len(f.Transcript) > 0 {
		b.WriteString("  what the system answered:\n")
		for _, l := range f.Transcript {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	return b.String()
}

// Report is what a run did and found.
type Report struct {
	Config    Config
	Sequences int
	Steps     int
	// Violations counts the invariant violations found: a sequence stops at its first
	// failing step, which may break several. Failures has the failing sequences,
	// shrunk.
	Violations int
	Failures   []Failure
	Duration   time.Duration
}

// Summary is the last line of `make soak`.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d sequences, %d steps, %d violations", r.Sequences, r.Steps, r.Violations)
}

// Run runs sequences on s until cfg's count or duration, shrinking each failure. s
// is reset before every sequence (stack.Reset), so it must not be shared with
// anything else meanwhile. The error is for a run that could not go on; broken
// invariants are the report's Failures.
func Run(ctx context.Context, s *stack.Stack, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	rep := &Report{Config: cfg}
	r, err := newRunner(s, cfg)
	if err != nil {
		return rep, err
	}
	defer r.close()
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	for k := 0; ; k++ {
		if cfg.Sequences > 0 && k >= cfg.Sequences || cfg.Duration > 0 && k > 0 && time.Since(start) >= cfg.Duration || ctx.Err() != nil {
			break
		}
		seed := cfg.Seed + int64(k)
		g := newGenerator(seed, cfg)
		seq := Sequence{Seed: seed, Tenants: g.starts(cfg.Tenants)}
		res, err := r.run(ctx, seq, g, cfg.Steps)
		if err != nil {
			return rep, fmt.Errorf("sequence %d (seed %d): %w", k, seed, err)
		}
		rep.Sequences++
		rep.Steps += res.steps
		if len(res.violations) == 0 {
			cfg.Logf("seed %d: %d steps, no violation", seed, res.steps)
			continue
		}
		rep.Violations += len(res.violations)
		first := res.violations[0]
		cfg.Logf("seed %d: %s", seed, first)
		f := Failure{Seed: seed, Invariant: first.Invariant, First: first, Violations: res.violations, Original: res.seq,
			Shrunk: res.seq, ShrunkViolation: first, Transcript: res.transcript}
		if cfg.ShrinkRuns > 0 {
			if err := r.shrink(ctx, &f); err != nil {
				return rep, err
			}
		}
		rep.Failures = append(rep.Failures, f)
	}
	return rep, nil
}

// Replay runs one given sequence (a shrunk one, say) once and returns the violations
// of its first failing step with the transcript of what the system answered.
func Replay(ctx context.Context, s *stack.Stack, cfg Config, seq Sequence) ([]Violation, []string, error) {
	cfg = cfg.withDefaults()
	r, err := newRunner(s, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer r.close()
	res, err := r.run(ctx, seq, nil, 0)
	if err != nil {
		return nil, nil, err
	}
	return res.violations, res.transcript, nil
}
