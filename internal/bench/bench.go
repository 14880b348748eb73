// Package bench is the harness behind `make bench`: a list of sections, each
// measuring one property of the system on the local stack, printed as one table and
// written as JSON (.bench/latest.json).
//
// Machines differ and a shared 2-core machine is noisy, so a section never judges an
// absolute timing: it measures a baseline in the same run, on the same machine and at
// the same moment (interleaved where it can), and states its goal as a ratio to it.
// Absolute goals are kept for what does not depend on the machine (bytes, counts).
//
// A section is a Bench: a name and a Run function. cmd/bench lists them; a new
// section is a new file here with a `var X = Bench{...}` and one entry in that list.
package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Row is one measured figure of a section.
type Row struct {
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline,omitempty"` // same-run baseline value, same unit
	Ratio    float64 `json:"ratio,omitempty"`    // Value / Baseline
	Goal     string  `json:"goal,omitempty"`     // e.g. "ratio <= 1.1", "< 15 MB"
	Met      *bool   `json:"met,omitempty"`
}

// Section is what one Bench reports. Notes say what the rows cannot: how it was
// measured, what a baseline is, why a goal was missed.
type Section struct {
	Name  string   `json:"name"`
	Rows  []Row    `json:"rows"`
	Notes []string `json:"notes,omitempty"`
}

// Bench is one section of the benchmark. Run returns an error only when it could not
// measure; a missed goal is a Row with Met false, not an error.
type Bench struct {
	Name string
	Run  func(ctx context.Context, env *Env) (Section, error)
}

// NewRow returns a row without baseline or goal.
func NewRow(metric string, value float64, unit string) Row {
	return Row{Metric: metric, Value: value, Unit: unit}
}

// Vs sets the row's same-run baseline and the ratio to it. A zero baseline gives no
// ratio (a ratio to nothing means nothing).
func (r Row) Vs(baseline float64) Row {
	r.Baseline = baseline
	r.Ratio = Ratio(r.Value, baseline)
	return r
}

// RatioAtMost sets the goal "ratio <= max" and whether the row meets it. Without a
// baseline the goal counts as missed: it could not be shown.
func (r Row) RatioAtMost(max float64) Row {
	r.Goal = "ratio <= " + formatNumber(max)
	met := r.Baseline > 0 && r.Ratio <= max
	r.Met = &met
	return r
}

// RatioAtLeast sets the goal "ratio >= min" (a throughput: higher is better) and
// whether the row meets it. Without a baseline the goal counts as missed.
func (r Row) RatioAtLeast(min float64) Row {
	r.Goal = "ratio >= " + formatNumber(min)
	met := r.Baseline > 0 && r.Ratio >= min
	r.Met = &met
	return r
}

// AtMost sets an absolute goal, described by goal (e.g. "<= 15 MB"), met when the
// value is at most max.
func (r Row) AtMost(max float64, goal string) Row {
	r.Goal = goal
	met := r.Value <= max
	r.Met = &met
	return r
}

// Ratio returns value/baseline, rounded to 3 decimals so the JSON stays readable,
// or 0 when there is no baseline.
func Ratio(value, baseline float64) float64 {
	if baseline == 0 || math.IsNaN(baseline) || math.IsInf(baseline, 0) {
		return 0
	}
	return math.Round(value/baseline*1000) / 1000
}

// Ms converts a duration to milliseconds, the unit of every timing row.
func Ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// Quantile returns the q-quantile (0..1) of ds by the nearest-rank method: p50 is the
// median, p99 the value 99% of the samples do not exceed. It sorts a copy.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Median is Quantile(ds, 0.5).
func Median(ds []time.Duration) time.Duration { return Quantile(ds, 0.5) }

// Count formats a whole number with thousands separators for notes ("100,000").
func Count(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
