package metrics_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/metrics"
)

// emf is the EMF document as CloudWatch Logs reads it.
type emf struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

// TestEncodeCount: a count by flow and without dimensions is one valid EMF document
// whose directive names every target member, which sit at the root with the right
// JSON types (dimension values strings, the metric a number).
func TestEncodeCount(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123e6, time.UTC)
	e := metrics.Counted(metrics.TransitionsFailed, "upgrade", true).With("tenant_id", "t1", "operation_id", "op_1")
	line, err := metrics.Encode("TenantFlow/prod", e, at)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(line, "\n") {
		t.Fatalf("not one line: %s", line)
	}
	var doc emf
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	if doc.AWS.Timestamp != at.UnixMilli() {
		t.Errorf("Timestamp %d, want %d (milliseconds)", doc.AWS.Timestamp, at.UnixMilli())
	}
	if len(doc.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("directives %+v", doc.AWS.CloudWatchMetrics)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "TenantFlow/prod" {
		t.Errorf("Namespace %q", d.Namespace)
	}
	if !reflect.DeepEqual(d.Dimensions, [][]string{{"Flow"}, {}}) {
		t.Errorf("Dimensions %v, want [[Flow] []]", d.Dimensions)
	}
	if len(d.Metrics) != 1 || d.Metrics[0].Name != "TransitionsFailed" || d.Metrics[0].Unit != "Count" {
		t.Errorf("Metrics %+v", d.Metrics)
	}
	var root map[string]any
	_ = json.Unmarshal(line, &root)
	want := map[string]any{"Flow": "upgrade", "TransitionsFailed": 1.0, "tenant_id": "t1", "operation_id": "op_1"}
	for k, v := range want {
		if root[k] != v {
			t.Errorf("member %s = %#v, want %#v", k, root[k], v)
		}
	}
	if len(root) != len(want)+1 {
		t.Errorf("members %v, want %v and _aws", root, want)
	}
}

// TestEncodeDuration: a duration in milliseconds by flow and plan.
func TestEncodeDuration(t *testing.T) {
	e := metrics.Event{Name: metrics.OperationDuration, Unit: metrics.Milliseconds, Value: 1234,
		Dimensions: map[string]string{metrics.Flow: "downgrade", metrics.Plan: "free"}, Sets: [][]string{{metrics.Flow, metrics.Plan}}}
	line, err := metrics.Encode(metrics.Namespace, e, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var doc emf
	var root map[string]any
	if json.Unmarshal(line, &doc) != nil || json.Unmarshal(line, &root) != nil {
		t.Fatalf("not JSON: %s", line)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "TenantFlow" || !reflect.DeepEqual(d.Dimensions, [][]string{{"Flow", "Plan"}}) ||
		d.Metrics[0].Name != "OperationDuration" || d.Metrics[0].Unit != "Milliseconds" {
		t.Errorf("directive %+v", d)
	}
	if root["OperationDuration"] != 1234.0 || root["Flow"] != "downgrade" || root["Plan"] != "free" {
		t.Errorf("members %v", root)
	}
}

// TestEncodeRefuses: what CloudWatch would drop or reject fails here instead.
func TestEncodeRefuses(t *testing.T) {
	ok := metrics.Counted(metrics.ExportsFailed, "export", false)
	cases := map[string]func(e *metrics.Event){
		"no name":             func(e *metrics.Event) { e.Name = "" },
		"unknown unit":        func(e *metrics.Event) { e.Unit = "Widgets" },
		"NaN":                 func(e *metrics.Event) { e.Value = math.NaN() },
		"infinite":            func(e *metrics.Event) { e.Value = math.Inf(1) },
		"no dimension set":    func(e *metrics.Event) { e.Sets = nil },
		"dimension no value":  func(e *metrics.Event) { e.Dimensions = map[string]string{metrics.Flow: ""} },
		"dimension not given": func(e *metrics.Event) { e.Sets = [][]string{{metrics.Plan}} },
		"property is a dimension": func(e *metrics.Event) {
			e.Properties = map[string]string{metrics.Flow: "x"}
		},
		"property is the metric": func(e *metrics.Event) { e.Properties = map[string]string{e.Name: "x"} },
		"property is _aws":       func(e *metrics.Event) { e.Properties = map[string]string{"_aws": "x"} },
		"too many keys": func(e *metrics.Event) {
			e.Dimensions = map[string]string{}
			var set []string
			for i := range 31 {
				k := "D" + strings.Repeat("x", i)
				e.Dimensions[k], set = "v", append(set, k)
			}
			e.Sets = [][]string{set}
		},
	}
	for name, mutate := range cases {
		e := ok
		e.Dimensions = map[string]string{metrics.Flow: "export"}
		mutate(&e)
		if line, err := metrics.Encode(metrics.Namespace, e, time.Now()); err == nil {
			t.Errorf("%s: encoded %s", name, line)
		}
	}
	if _, err := metrics.Encode("", ok, time.Now()); err == nil {
		t.Error("empty namespace encoded")
	}
	if _, err := metrics.Encode(metrics.Namespace, ok, time.Now()); err != nil {
		t.Errorf("the valid event: %v", err)
	}
}

// TestWriterOneLinePerEvent: concurrent events come out as whole lines, one each
// (the writer serialises them; -race would see two writes at once), and an invalid
// one writes nothing.
func TestWriterOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	w := metrics.New(&buf, metrics.NamespaceFor("dev"))
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Emit(metrics.Counted(metrics.ExportsCompleted, "export", false)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := w.Emit(metrics.Event{Name: "Bad"}); err == nil {
		t.Error("an invalid event was written")
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	for _, l := range lines {
		var doc emf
		if err := json.Unmarshal([]byte(l), &doc); err != nil || doc.AWS.CloudWatchMetrics[0].Namespace != "TenantFlow/dev" {
			t.Fatalf("line %q: %v", l, err)
		}
	}
}

func TestNamespaceFor(t *testing.T) {
	if got := metrics.NamespaceFor(""); got != "TenantFlow" {
		t.Error(got)
	}
	if got := metrics.NamespaceFor("prod"); got != "TenantFlow/prod" {
		t.Error(got)
	}
}
