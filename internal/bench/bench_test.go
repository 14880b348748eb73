package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRatioAndGoals(t *testing.T) {
	r := NewRow("init p50", 13.2, "ms").Vs(12).RatioAtMost(1.1)
	if r.Baseline != 12 || r.Ratio != 1.1 || r.Goal != "ratio <= 1.1" || r.Met == nil || !*r.Met {
		t.Errorf("13.2 vs 12 = %+v, want ratio 1.1 meeting ratio <= 1.1", r)
	}
	if r := NewRow("x", 14, "ms").Vs(12).RatioAtMost(1.1); *r.Met {
		t.Errorf("14 vs 12 meets 1.1: %+v", r)
	}
	// Without a baseline there is no ratio, and a ratio goal cannot be shown met.
	if r := NewRow("x", 1, "ms").Vs(0).RatioAtMost(1.1); r.Ratio != 0 || *r.Met {
		t.Errorf("no baseline: %+v", r)
	}
	if r := NewRow("ops", 30, "ops/s").Vs(10).RatioAtLeast(2); r.Ratio != 3 || r.Goal != "ratio >= 2" || !*r.Met {
		t.Errorf("30 vs 10 at least 2: %+v", r)
	}
	if r := NewRow("ops", 15, "ops/s").Vs(10).RatioAtLeast(2); *r.Met {
		t.Errorf("15 vs 10 meets ratio >= 2: %+v", r)
	}
	if r := NewRow("ops", 15, "ops/s").Vs(0).RatioAtLeast(2); *r.Met {
		t.Errorf("no baseline meets ratio >= 2: %+v", r)
	}
	if r := NewRow("size", 15, "MB").AtMost(15, "<= 15 MB"); !*r.Met || r.Goal != "<= 15 MB" {
		t.Errorf("15 <= 15: %+v", r)
	}
	if r := NewRow("size", 15.01, "MB").AtMost(15, "<= 15 MB"); *r.Met {
		t.Errorf("15.01 <= 15 met: %+v", r)
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := Quantile(ds, c.q); got != c.want {
			t.Errorf("Quantile(1..100 ms, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Quantile sorted its input")
	}
	if Median(nil) != 0 || Median([]time.Duration{3}) != 3 {
		t.Error("median of nothing or of one sample")
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{12: "12", 12.64: "12.6", 1.234: "1.23", 123.4: "123", 0.0456: "0.046", 1.5: "1.5", 100000: "100000"} {
		if got := formatNumber(v); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", v, got, want)
		}
	}
	if got := Count(100000); got != "100,000" {
		t.Errorf("Count(100000) = %q", got)
	}
	if got := Count(-1234); got != "-1,234" {
		t.Errorf("Count(-1234) = %q", got)
	}
}

func testReport() *Report {
	return &Report{
		Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Seconds: 42, Host: ThisHost(),
		Sections: []Section{
			{Name: "cold-start", Rows: []Row{
				NewRow("init p50: hello", 3, "ms"),
				NewRow("init p50: ApiFunction", 14, "ms").Vs(12).RatioAtMost(1.1),
			}, Notes: []string{"median of 25"}},
			{Name: "sizes", Rows: []Row{NewRow("arm64 size: ApiFunction", 12.7, "MB").AtMost(15, "<= 15 MB")}},
		},
		Errors: map[string]string{"broken": "no stack"},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"section", "cold-start", "init p50: ApiFunction", "1.17x", "ratio <= 1.1", "MISSED", "<= 15 MB", "yes",
		"cold-start: median of 25", "broken: ERROR: no stack", "2 section(s), 1 goal(s) missed, 1 error(s), 42 s"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// One table: every row's columns line up, so the metric column starts at the same
	// offset on each row.
	lines := strings.Split(out, "\n")
	col := strings.Index(lines[0], "metric")
	for _, l := range lines[1:4] {
		if len(l) < col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q is not aligned with the header (metric at %d)", l, col)
		}
	}
	if strings.Count(out, "cold-start  ") != 1 {
		t.Errorf("the section name should head its first row only:\n%s", out)
	}
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".bench", "latest.json")
	if err := testReport().WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Sections []struct {
			Name string           `json:"name"`
			Rows []map[string]any `json:"rows"`
		} `json:"sections"`
		Errors map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	if len(got.Sections) != 2 || got.Sections[0].Name != "cold-start" || got.Errors["broken"] != "no stack" {
		t.Fatalf("sections %+v errors %v", got.Sections, got.Errors)
	}
	plain, judged := got.Sections[0].Rows[0], got.Sections[0].Rows[1]
	// A row without baseline or goal carries neither key.
	for _, k := range []string{"baseline", "ratio", "goal", "met"} {
		if _, ok := plain[k]; ok {
			t.Errorf("row without baseline has %q: %v", k, plain)
		}
	}
	if judged["baseline"] != 12.0 || judged["ratio"] != 1.167 || judged["goal"] != "ratio <= 1.1" || judged["met"] != false {
		t.Errorf("judged row %v", judged)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}
