package lambdasvc

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
)

// Chaos is a random-rate fault mode: every invocation of a selected function is
// faulted with probability Rate, before the function runs or, with probability
// AfterShare, after it ran (its work done, its answer lost), as a load test under
// failures needs it. Decisions come from one seeded random stream per function, drawn
// once per invocation as it starts, so under one Seed the n-th invocation of a
// function is faulted, or not, the same way in every run: the fault pattern is
// reproducible even though which request is the n-th depends on scheduling.
//
// An armed FaultSpec of a function takes precedence over Chaos: an invocation it
// decides (skipped or faulted) draws nothing from the chaos stream.
type Chaos struct {
	// Rate is the probability (0 < Rate <= 1) that an invocation is faulted.
	Rate float64 `json:"rate"`
	// AfterShare is the probability (0..1) that a faulted invocation fails after the
	// function ran rather than before (FaultSpec.After).
	AfterShare float64 `json:"afterShare"`
	// Seed seeds the random streams.
	Seed int64 `json:"seed"`
	// Functions are the functions faulted (logical IDs, names or ARNs); empty: every
	// function not in Except.
	Functions []string `json:"functions,omitempty"`
	// Except are functions never faulted (e.g. the API function, whose caller is the
	// test itself and would see the fault, not a retry policy).
	Except []string `json:"except,omitempty"`
	// BeforeError and AfterError are the errorTypes of the two kinds of fault
	// (defaults Lambda.ServiceException and Sandbox.Timedout, which Step Functions
	// Retry lists match).
	BeforeError string `json:"beforeError,omitempty"`
	AfterError  string `json:"afterError,omitempty"`
	// Message is the errorMessage (default "chaos fault injected by devstack").
	Message string `json:"message,omitempty"`
}

// Default error types of Chaos.
const (
	ChaosBeforeError = "Lambda.ServiceException"
	ChaosAfterError  = "Sandbox.Timedout"
)

// ChaosStats counts what Chaos did, in all or for one function.
type ChaosStats struct {
	// Invocations are the invocations Chaos decided on (an armed FaultSpec's are not).
	Invocations int `json:"invocations"`
	// Before and After are the faults served before the function ran and after it.
	Before int `json:"before"`
	After  int `json:"after"`
}

// Faults is Before + After.
func (c ChaosStats) Faults() int { return c.Before + c.After }

// chaosState is one function's part of an active Chaos, used under function.mu.
type chaosState struct {
	rng                   *rand.Rand
	rate, afterShare      float64
	beforeType, afterType string
	message               string
	stats                 ChaosStats
}

// draw decides the invocation starting now: nil (not faulted) or its fault.
func (c *chaosState) draw() *fault {
	c.stats.Invocations++
	// Two draws whatever the first gives, so the stream advances the same way for
	// every invocation.
	hit, after := c.rng.Float64() < c.rate, c.rng.Float64() < c.afterShare
	if !hit {
		return nil
	}
	ft := &fault{after: after, chaos: c, errorType: c.beforeType, message: c.message}
	if after {
		ft.errorType = c.afterType
	}
	return ft
}

// SetChaos turns the random fault mode on with c, replacing an earlier Chaos (and
// restarting its random streams and counts). ClearChaos or ClearFaults turns it off.
// Unknown function names are an error wrapping ErrUnknownFunction.
func (s *Service) SetChaos(c Chaos) error {
	if !(c.Rate > 0 && c.Rate <= 1) {
		return fmt.Errorf("lambdasvc: chaos rate must be in (0, 1], got %v", c.Rate)
	}
	if !(c.AfterShare >= 0 && c.AfterShare <= 1) {
		return fmt.Errorf("lambdasvc: chaos afterShare must be in [0, 1], got %v", c.AfterShare)
	}
	if c.BeforeError == "" {
		c.BeforeError = ChaosBeforeError
	}
	if c.AfterError == "" {
		c.AfterError = ChaosAfterError
	}
	if c.Message == "" {
		c.Message = "chaos fault injected by devstack"
	}
	resolve := func(names []string) (map[*function]bool, error) {
		out := map[*function]bool{}
		for _, n := range names {
			f, err := s.lookup(n)
			if err != nil {
				return nil, err
			}
			out[f] = true
		}
		return out, nil
	}
	only, err := resolve(c.Functions)
	if err != nil {
		return err
	}
	except, err := resolve(c.Except)
	if err != nil {
		return err
	}
	for _, f := range s.ordered {
		var st *chaosState
		if (len(only) == 0 || only[f]) && !except[f] {
			h := fnv.New64a()
			h.Write([]byte(f.cfg.LogicalID))
			st = &chaosState{rng: rand.New(rand.NewPCG(uint64(c.Seed), h.Sum64())), rate: c.Rate, afterShare: c.AfterShare,
				beforeType: c.BeforeError, afterType: c.AfterError, message: c.Message}
		}
		f.mu.Lock()
		f.chaos, f.chaosLast = st, st
		f.mu.Unlock()
	}
	return nil
}

// ClearChaos turns the random fault mode off. Its counts stay readable in
// ChaosStats until the next SetChaos (an invocation that drew an after-fault before
// the clear still adds to them when it ends).
func (s *Service) ClearChaos() {
	for _, f := range s.ordered {
		f.mu.Lock()
		f.chaos = nil
		f.mu.Unlock()
	}
}

// ChaosStats returns what the current (or last) Chaos did: the totals, and the
// counts of every function it applied to, by logical ID.
func (s *Service) ChaosStats() (total ChaosStats, byFunction map[string]ChaosStats) {
	byFunction = map[string]ChaosStats{}
	for _, f := range s.ordered {
		f.mu.Lock()
		last := f.chaosLast
		var st ChaosStats
		if last != nil {
			st = last.stats
		}
		f.mu.Unlock()
		if last != nil {
			byFunction[f.cfg.LogicalID] = st
			total.Invocations += st.Invocations
			total.Before += st.Before
			total.After += st.After
		}
	}
	return total, byFunction
}

// ChaosFunctions lists the functions Chaos applies to now, sorted (none when off).
func (s *Service) ChaosFunctions() []string {
	var out []string
	for _, f := range s.ordered {
		f.mu.Lock()
		if f.chaos != nil {
			out = append(out, f.cfg.LogicalID)
		}
		f.mu.Unlock()
	}
	sort.Strings(out)
	return slices.Clip(out)
}
