package invariants

import (
	"context"
	"slices"
	"time"
)

// shrink looks for a smaller sequence that still breaks f's invariant, by delta
// debugging: drop chunks of steps (halves, quarters, ... single steps), then one of
// the actions of a step sent at once, then faults, then tenants no action names.
// Every candidate runs on a freshly reset stack; one with actions at once (a race)
// gets a second try before it counts as passing.
func (r *runner) shrink(ctx context.Context, f *Failure) error {
	deadline := time.Now().Add(r.cfg.ShrinkTime)
	budget := func() bool { return f.ShrinkRuns < r.cfg.ShrinkRuns && time.Now().Before(deadline) && ctx.Err() == nil }
	best := f.Shrunk
	best.Steps = slices.Clone(best.Steps)
	// The steps after the failing one never ran.
	if f.First.Step > 0 && f.First.Step < len(best.Steps) {
		best.Steps = best.Steps[:f.First.Step]
	}
	try := func(c Sequence) (bool, error) {
		tries := 1
		for _, st := range c.Steps {
			if len(st.Actions) > 1 {
				tries = 2
			}
		}
		for range tries {
			if !budget() {
				return false, nil
			}
			f.ShrinkRuns++
			res, err := r.run(ctx, c, nil, 0)
			if err != nil {
				return false, err
			}
			for _, v := range res.violations {
				if v.Invariant == f.Invariant {
					best, f.ShrunkViolation, f.Transcript = c, v, res.transcript
					// The steps after the failing one are not needed.
					if v.Step > 0 && v.Step < len(best.Steps) {
						best.Steps = best.Steps[:v.Step]
					}
					return true, nil
				}
			}
		}
		return false, nil
	}
	with := func(steps []Step) Sequence {
		c := best
		c.Steps = steps
		return c
	}

	// ddmin over the steps.
	for n := 2; len(best.Steps) >= 2 && budget(); {
		chunk := (len(best.Steps) + n - 1) / n
		reduced := false
		for start := 0; start < len(best.Steps) && budget(); start += chunk {
			end := min(start+chunk, len(best.Steps))
			cand := append(slices.Clone(best.Steps[:start]), best.Steps[end:]...)
			ok, err := try(with(cand))
			if err != nil {
				return err
			}
			if ok {
				n = max(n-1, 2)
				reduced = true
				break
			}
		}
		if !reduced {
			if chunk == 1 {
				break
			}
			n = min(2*n, len(best.Steps))
		}
	}
	// One action of a step sent at once.
	for i := 0; i < len(best.Steps) && budget(); i++ {
		for j := 0; len(best.Steps[i].Actions) > 1 && j < len(best.Steps[i].Actions) && budget(); j++ {
			steps := slices.Clone(best.Steps)
			steps[i] = Step{Actions: slices.Delete(slices.Clone(steps[i].Actions), j, j+1)}
			ok, err := try(with(steps))
			if err != nil {
				return err
			}
			if ok {
				j = -1
			}
		}
	}
	// Faults.
	for i := 0; i < len(best.Steps) && budget(); i++ {
		for j := 0; j < len(best.Steps[i].Actions) && budget(); j++ {
			if best.Steps[i].Actions[j].Fault == nil {
				continue
			}
			steps := slices.Clone(best.Steps)
			steps[i] = Step{Actions: slices.Clone(steps[i].Actions)}
			steps[i].Actions[j].Fault = nil
			if _, err := try(with(steps)); err != nil {
				return err
			}
		}
	}
	// Tenants no action names.
	if c, ok := dropIdleTenants(best); ok && budget() {
		if _, err := try(c); err != nil {
			return err
		}
	}
	f.Shrunk = best
	return nil
}

// dropIdleTenants removes the tenants no action of seq names, renumbering the others.
func dropIdleTenants(seq Sequence) (Sequence, bool) {
	used := make([]bool, len(seq.Tenants))
	for _, st := range seq.Steps {
		for _, a := range st.Actions {
			if a.Actor != Schedule && a.Tenant >= 0 && a.Tenant < len(used) {
				used[a.Tenant] = true
			}
		}
	}
	renum := make([]int, len(seq.Tenants))
	out := seq
	out.Tenants = nil
	for i, u := range used {
		if u {
			renum[i] = len(out.Tenants)
			out.Tenants = append(out.Tenants, seq.Tenants[i])
		}
	}
	if len(out.Tenants) == len(seq.Tenants) || len(out.Tenants) == 0 {
		return seq, false
	}
	out.Steps = make([]Step, len(seq.Steps))
	for i, st := range seq.Steps {
		acts := slices.Clone(st.Actions)
		for j := range acts {
			if acts[j].Actor != Schedule {
				acts[j].Tenant = renum[acts[j].Tenant]
			}
		}
		out.Steps[i] = Step{Actions: acts}
	}
	return out, true
}
