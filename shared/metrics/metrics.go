// Package metrics writes the operating metrics of the flows as CloudWatch embedded
// metric format (EMF) documents: one JSON line per metric event on the function's
// standard output. Lambda sends stdout to CloudWatch Logs, which extracts the metrics
// from those lines, so a step publishes a metric without a PutMetricData call, without
// an IAM grant and without adding latency or a failure mode to the step. The same line
// stays searchable in Logs Insights with the tenant and operation it was about.
//
// The metric names, their dimensions and the alarms on them are listed in
// docs/architecture.md (Operating metrics).
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of the metrics; a deployed stage publishes
// under Namespace + "/" + stage (NamespaceFor), so the alarms of a dev stack never see
// prod's failures in a shared account.
const Namespace = "TenantFlow"

// NamespaceFor returns the namespace of a stage's metrics.
func NamespaceFor(stage string) string {
	if stage == "" {
		return Namespace
	}
	return Namespace + "/" + stage
}

// Metric names. Counts are 1 per event; a dashboard or alarm sums them.
const (
	// TransitionsSucceeded: an operation of a flow committed (Kit.Finish).
	TransitionsSucceeded = "TransitionsSucceeded"
	// TransitionsFailed: an operation failed, was compensated and released its tenant
	// (Kit.Release, also through the reconciler).
	TransitionsFailed = "TransitionsFailed"
	// TenantsNeedingAttention: a failed operation could not undo everything and left
	// its tenant waiting for an operator (needs_attention).
	TenantsNeedingAttention = "TenantsNeedingAttention"
	// OperationDuration: milliseconds from an operation's start to its commit.
	OperationDuration = "OperationDuration"
	// ExportsCompleted and ExportsFailed: an export job ended.
	ExportsCompleted = "ExportsCompleted"
	ExportsFailed    = "ExportsFailed"
	// DeletionVerificationsPassed: a purge verified every source empty and wrote its
	// certificate. DeletionVerificationsFailed: a purge ended because a source still
	// held data after the verify step's retries.
	DeletionVerificationsPassed = "DeletionVerificationsPassed"
	DeletionVerificationsFailed = "DeletionVerificationsFailed"
)

// Dimension names.
const (
	Flow = "Flow" // the operation kind: upgrade, downgrade, deletion, ..., export
	Plan = "Plan" // the plan an operation moved the tenant to (or kept it on)
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units these metrics use.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
)

// units are the units CloudWatch accepts.
var units = map[Unit]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true, "Megabytes": true,
	"Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true, "Terabits": true,
	"Percent": true, "Count": true, "Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true,
	"Gigabytes/Second": true, "Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true,
	"Megabits/Second": true, "Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// Event is one value of one metric.
type Event struct {
	Name  string
	Unit  Unit
	Value float64
	// Dimensions are the dimension values of the event (Flow, Plan).
	Dimensions map[string]string
	// Sets are the dimension sets the value is published under: each is one
	// CloudWatch metric. An empty set publishes it without dimensions, the one series
	// an alarm over every flow watches.
	Sets [][]string
	// Properties go into the line for Logs Insights (tenant_id, operation_id) but are
	// no dimensions: a metric per tenant would be unbounded.
	Properties map[string]string
}

// Counted is a count of one event of flow, by flow; total adds the series without
// dimensions.
func Counted(name, flow string, total bool) Event {
	e := Event{Name: name, Unit: Count, Value: 1, Dimensions: map[string]string{Flow: flow}, Sets: [][]string{{Flow}}}
	if total {
		e.Sets = append(e.Sets, []string{})
	}
	return e
}

// With returns e with the properties kv (name, value pairs) added.
func (e Event) With(kv ...string) Event {
	props := make(map[string]string, len(e.Properties)+len(kv)/2)
	for k, v := range e.Properties {
		props[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		props[kv[i]] = kv[i+1]
	}
	e.Properties = props
	return e
}

// Limits of EMF and CloudWatch that Encode enforces, so that a bad event fails in a
// unit test instead of being dropped silently by CloudWatch Logs.
const (
	maxSetKeys     = 30
	maxNameLen     = 255
	maxDimValueLen = 1024
)

// Encode returns the EMF document of e at time at, without a trailing newline.
func Encode(namespace string, e Event, at time.Time) ([]byte, error) {
	if namespace == "" || len(namespace) > maxNameLen {
		return nil, fmt.Errorf("metrics: namespace %q: must be 1 to %d characters", namespace, maxNameLen)
	}
	if e.Name == "" || len(e.Name) > maxNameLen || e.Name == "_aws" {
		return nil, fmt.Errorf("metrics: metric name %q is not valid", e.Name)
	}
	if !units[e.Unit] {
		return nil, fmt.Errorf("metrics: %s: unit %q is not a CloudWatch unit", e.Name, e.Unit)
	}
	if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
		return nil, fmt.Errorf("metrics: %s: value %v is not a finite number", e.Name, e.Value)
	}
	if len(e.Sets) == 0 {
		return nil, fmt.Errorf("metrics: %s: no dimension set", e.Name)
	}
	doc := map[string]any{}
	for k, v := range e.Properties {
		doc[k] = v
	}
	for _, set := range e.Sets {
		if len(set) > maxSetKeys {
			return nil, fmt.Errorf("metrics: %s: a dimension set has %d keys (at most %d)", e.Name, len(set), maxSetKeys)
		}
		for _, k := range set {
			v := e.Dimensions[k]
			if k == "" || len(k) > maxNameLen || v == "" || len(v) > maxDimValueLen {
				return nil, fmt.Errorf("metrics: %s: dimension %q=%q: name and value must not be empty", e.Name, k, v)
			}
		}
	}
	for k, v := range e.Dimensions {
		if _, clash := doc[k]; clash {
			return nil, fmt.Errorf("metrics: %s: member %q is used twice", e.Name, k)
		}
		doc[k] = v
	}
	if _, clash := doc[e.Name]; clash {
		return nil, fmt.Errorf("metrics: %s: member %q is used twice", e.Name, e.Name)
	}
	if _, clash := doc["_aws"]; clash {
		return nil, errors.New("metrics: the member _aws is reserved for the metadata")
	}
	doc[e.Name] = e.Value
	doc["_aws"] = metadata{
		Timestamp: at.UnixMilli(),
		CloudWatchMetrics: []directive{{
			Namespace:  namespace,
			Dimensions: e.Sets,
			Metrics:    []definition{{Name: e.Name, Unit: e.Unit}},
		}},
	}
	return json.Marshal(doc)
}

// metadata, directive and definition are the EMF "_aws" member.
type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type definition struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

// Writer writes one EMF line per event. Each line goes out in a single Write, so it
// never interleaves with the function's slog lines on the same stdout.
type Writer struct {
	mu        sync.Mutex
	out       io.Writer
	namespace string
	now       func() time.Time
}

// New returns a writer of namespace's metrics onto out.
func New(out io.Writer, namespace string) *Writer {
	return &Writer{out: out, namespace: namespace, now: time.Now}
}

// Stdout returns the writer a function uses: its standard output, which Lambda sends
// to the function's log group.
func Stdout(namespace string) *Writer { return New(os.Stdout, namespace) }

// Emit writes e stamped with the current time. The error is for the caller to log:
// a metric that could not be written must never fail the step that emits it.
func (w *Writer) Emit(e Event) error {
	line, err := Encode(w.namespace, e, w.now())
	if err != nil {
		return err
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.out.Write(line)
	return err
}
