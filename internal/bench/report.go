package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run of the benchmark, as .bench/latest.json holds it.
type Report struct {
	Started time.Time `json:"started"`
	// Seconds is how long the whole run took.
	Seconds float64 `json:"seconds"`
	// Host says what the figures were measured on: ratios travel between machines,
	// absolute timings do not.
	Host     Host      `json:"host"`
	Sections []Section `json:"sections"`
	// Errors are the sections that could not measure, by name.
	Errors map[string]string `json:"errors,omitempty"`
}

// Host describes the measuring machine.
type Host struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
}

// ThisHost describes the machine the process runs on.
func ThisHost() Host {
	return Host{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
}

// Missed counts the rows with a goal they do not meet.
func (r *Report) Missed() int {
	n := 0
	for _, s := range r.Sections {
		for _, row := range s.Rows {
			if row.Met != nil && !*row.Met {
				n++
			}
		}
	}
	return n
}

// WriteTable prints every section as one aligned table: the section's name on its
// first row, then its notes and the errors below the table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "section\tmetric\tvalue\tunit\tbaseline\tratio\tgoal\tmet")
	for _, s := range r.Sections {
		for i, row := range s.Rows {
			name := ""
			if i == 0 {
				name = s.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, row.Metric, formatNumber(row.Value), row.Unit,
				blankZero(row.Baseline, formatNumber), blankZero(row.Ratio, formatRatio), row.Goal, metText(row.Met))
		}
		if len(s.Rows) == 0 {
			fmt.Fprintf(tw, "%s\t(no rows)\t\t\t\t\t\t\n", s.Name)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Sections {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  %s: %s\n", s.Name, n)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "  %s: ERROR: %s\n", name, r.Errors[name])
	}
	missed := r.Missed()
	fmt.Fprintf(w, "%d section(s), %d goal(s) missed, %d error(s), %.0f s\n", len(r.Sections), missed, len(r.Errors), r.Seconds)
	return nil
}

// WriteJSON writes the report to path (indented), creating its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	// Through a temporary file: a reader never sees half a report.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func metText(met *bool) string {
	switch {
	case met == nil:
		return ""
	case *met:
		return "yes"
	default:
		return "MISSED"
	}
}

func blankZero(v float64, format func(float64) string) string {
	if v == 0 {
		return ""
	}
	return format(v)
}

// formatNumber prints whole numbers as such and others with 3 significant digits at
// most, which is all a noisy timing carries.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	decimals := 2
	switch a := math.Abs(v); {
	case a >= 100:
		decimals = 0
	case a >= 10:
		decimals = 1
	case a < 0.1:
		decimals = 3
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func formatRatio(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "x" }
