package metrics_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/shared/metrics"
)

// emittedNames are the metrics the functions emit.
var emittedNames = []string{
	metrics.TransitionsSucceeded, metrics.TransitionsFailed, metrics.TenantsNeedingAttention, metrics.OperationDuration,
	metrics.ExportsCompleted, metrics.ExportsFailed, metrics.DeletionVerificationsPassed, metrics.DeletionVerificationsFailed,
}

// TestTemplateWatchesTheEmittedMetrics: the dashboard body is valid JSON once its
// !Sub is resolved, the dashboard and the alarms name only metrics the code emits
// (a renamed metric would leave an alarm silently watching nothing), the dashboard
// shows every one of them, and every state machine has an ExecutionsFailed alarm.
func TestTemplateWatchesTheEmittedMetrics(t *testing.T) {
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"), samtemplate.Options{Params: map[string]string{"Stage": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	ns := metrics.NamespaceFor("prod")
	dash, ok := tpl.Resources["OperationsDashboard"]
	if !ok || dash.Type != "AWS::CloudWatch::Dashboard" {
		t.Fatal("no OperationsDashboard")
	}
	body, _ := dash.Properties["DashboardBody"].(string)
	var doc struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Metrics [][]any  `json:"metrics"`
				Alarms  []string `json:"alarms"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("DashboardBody is not JSON: %v\n%s", err, body)
	}
	shown := map[string]bool{}
	search := regexp.MustCompile(`\{([^,}]+)[^}]*\} MetricName="([^"]+)"`)
	alarmsShown := 0
	for _, w := range doc.Widgets {
		alarmsShown += len(w.Properties.Alarms)
		for _, m := range w.Properties.Metrics {
			if len(m) == 0 {
				continue
			}
			if opts, ok := m[0].(map[string]any); ok {
				expr, _ := opts["expression"].(string)
				for _, g := range search.FindAllStringSubmatch(expr, -1) {
					if g[1] != ns {
						t.Errorf("search in namespace %s, want %s: %s", g[1], ns, expr)
					}
					shown[g[2]] = true
				}
				continue
			}
			if space, _ := m[0].(string); space == ns {
				shown[m[1].(string)] = true
			} else if space != "AWS/States" {
				t.Errorf("dashboard metric in namespace %q: %v", space, m)
			}
		}
	}
	for name := range shown {
		if !slices.Contains(emittedNames, name) {
			t.Errorf("the dashboard shows %s, which no function emits", name)
		}
	}
	for _, name := range emittedNames {
		if !shown[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}

	alarmed := map[string]bool{}
	machines := 0
	for id, r := range tpl.Resources {
		switch r.Type {
		case "AWS::Serverless::StateMachine":
			machines++
		case "AWS::CloudWatch::Alarm":
			space, name := r.Properties["Namespace"], r.Properties["MetricName"].(string)
			switch space {
			case ns:
				if !slices.Contains(emittedNames, name) {
					t.Errorf("%s watches %s, which no function emits", id, name)
				}
				alarmed[name] = true
			case "AWS/States":
				dims, _ := r.Properties["Dimensions"].([]any)
				if name != "ExecutionsFailed" || len(dims) != 1 || !strings.Contains(toJSON(dims), `"StateMachineArn"`) {
					t.Errorf("%s: %s %v", id, name, dims)
				}
				alarmed["ExecutionsFailed:"+toJSON(dims)] = true
			default:
				t.Errorf("%s: namespace %v", id, space)
			}
		}
	}
	for _, name := range []string{metrics.TenantsNeedingAttention, metrics.TransitionsFailed, metrics.DeletionVerificationsFailed, metrics.ExportsFailed} {
		if !alarmed[name] {
			t.Errorf("no alarm on %s", name)
		}
	}
	perMachine := 0
	for k := range alarmed {
		if strings.HasPrefix(k, "ExecutionsFailed:") {
			perMachine++
		}
	}
	if machines == 0 || perMachine != machines {
		t.Errorf("%d state machines, %d ExecutionsFailed alarms on distinct machines", machines, perMachine)
	}
	if alarmsShown != len(alarmed) {
		t.Errorf("the dashboard's alarm widget lists %d alarms, the template has %d", alarmsShown, len(alarmed))
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
