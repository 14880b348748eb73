package meter_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/meter"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// The generated blocks of docs/cost.md. The figures block holds only counts and is
// compared on every run; the measured block (durations, log bytes, dollars) is only
// rewritten with -update.
const (
	costDoc       = "docs/cost.md"
	figuresBegin  = "<!-- cost-figures:begin (generated: go test ./internal/localstack/meter -run TestCostFigures -update) -->"
	figuresEnd    = "<!-- cost-figures:end -->"
	measuredBegin = "<!-- cost-measured:begin (generated with the figures; not compared: durations vary) -->"
	measuredEnd   = "<!-- cost-measured:end -->"
)

// num renders a unit count: integers without decimals, halves with one.
func num(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") }

// renderFigures is the compared block: what each flow costs in billed units.
func renderFigures(runs []*flowRun) string {
	var b strings.Builder
	b.WriteString("| flow | Lambda invocations | state transitions | DynamoDB requests | RRU | WRU (of which indexes) | EventBridge entries | S3 requests tier 1 / tier 2 / free | Stripe calls read / write |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, fr := range runs {
		r := fr.Run
		ddb, ev, s3 := r.Service("dynamodb").Total(), r.Service("events").Total(), r.S3()
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s (%s) | %d | %d / %d / %d | %d / %d |\n", fr.Name, r.Invocations(), r.Transitions(),
			ddb.Requests, num(ddb.RRU), num(ddb.WRU), num(ddb.IndexWRU), ev.Entries, s3["tier1"], s3["tier2"], s3["free"], r.Stripe.Reads, r.Stripe.Writes)
	}
	b.WriteString("\nBy function (requests by action and request units of each function's IAM principal):\n\n")
	b.WriteString("| flow | function | invocations | DynamoDB requests | RRU | WRU | S3 requests |\n|---|---|---|---|---|---|---|\n")
	for _, fr := range runs {
		r := fr.Run
		ids := slices.Sorted(maps.Keys(r.Functions))
		for _, p := range slices.Sorted(maps.Keys(r.Principals)) {
			if r.Functions[p] == nil && len(r.Principals[p]["dynamodb"]) > 0 {
				ids = append(ids, p) // a principal that was not invoked (none expected)
			}
		}
		for _, id := range ids {
			inv := 0
			if f := r.Functions[id]; f != nil {
				inv = f.Invocations
			}
			actions := r.Principals[id]["dynamodb"]
			tot := actions.Total()
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s |\n", fr.Name, strings.TrimSuffix(id, "Function"), inv, calls(actions), num(tot.RRU), num(tot.WRU),
				calls(r.Principals[id]["s3"]))
		}
	}
	return b.String()
}

// calls renders requests by action ("GetItem 2, Query 1"), or a dash.
func calls(actions meter.Actions) string {
	var out []string
	for _, a := range slices.Sorted(maps.Keys(actions)) {
		out = append(out, fmt.Sprintf("%s %d", a, actions[a].Requests))
	}
	if len(out) == 0 {
		return "—"
	}
	return strings.Join(out, ", ")
}

// A scenario is a month of the system: flow runs by row name, tenants stored.
type scenario struct {
	Name    string
	Tenants int
	Runs    map[string]float64
}

// The lifecycle mix of docs/cost.md, per 100 lifecycle events, and what comes with it.
var mix = map[string]float64{
	"create": 10, "upgrade": 20, "downgrade": 10, "downgrade at period end": 10, "suspend": 10,
	"reactivate": 10, "export (100 items)": 10, "delete": 10, "purge (100 data items)": 10,
}

// scenarioOf is events lifecycle events a month over tenants tenants: the mix; two
// status reads per flow a client starts and waits for; one usage report per tenant per
// day and two Stripe webhooks per tenant per month (the renewal's invoice.paid and
// subscription update); the schedules (rate 15 min, 5 min, 1 h: 2,920, 8,760 and 730
// runs in a 730-hour month).
func scenarioOf(name string, events float64, tenants int) scenario {
	sc := scenario{Name: name, Tenants: tenants, Runs: map[string]float64{}}
	for flow, per100 := range mix {
		sc.Runs[flow] = events * per100 / 100
	}
	polled := events * (mix["upgrade"] + mix["downgrade"] + mix["downgrade at period end"] + mix["suspend"] + mix["reactivate"] + mix["delete"]) / 100
	sc.Runs["status read"] = 2 * polled
	sc.Runs["usage report"] = float64(tenants) * 30
	sc.Runs["webhook (invoice.paid)"] = float64(tenants) * 2
	sc.Runs["scheduled DowngradeSweepFunction, nothing due"] = 2920
	sc.Runs["scheduled ReconcileFunction, nothing due"] = 8760
	sc.Runs["scheduled PurgeSweepFunction, nothing due"] = 730
	return sc
}

// Fixed monthly prices (us-east-1, docs/cost.md).
const (
	secretMonth     = 0.40
	dashboardMonth  = 3.00
	alarmMonth      = 0.10
	metricMonth     = 0.30
	metricSeries    = 47 // the EMF series of docs/operations.md, every dimension value
	storageGBMonth  = 0.25
	pitrGBMonth     = 0.20
	logStoreGBMonth = 0.03
	hoursPerMonth   = 730.0
)

// renderMeasured is the block of measured figures and the dollars they make.
func renderMeasured(t *testing.T, s *stack.Stack, runs []*flowRun, tenantBytes int64) string {
	t.Helper()
	p := meter.USEast1
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on the local stack (%s/%s, %d CPUs): Lambda durations are the local bootstraps' against moto, "+
		"cold starts included (the first flow to use a function starts its process).\n\n", time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	b.WriteString("| flow | billed Lambda ms | cold starts | GB-s | log lines | log bytes | USD per 1,000 runs | Step Functions | DynamoDB | Lambda | API Gateway | CloudWatch Logs | EventBridge and S3 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	cost := map[string]meter.Cost{}
	for _, fr := range runs {
		c := p.Price(fr.Run, fr.Entries, fr.LogBytes)
		cost[fr.Name] = c
		k := c.Scale(1000)
		fmt.Fprintf(&b, "| %s | %d | %d | %.4f | %d | %d | **%.4f** | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", fr.Name, fr.Run.BilledMs(), fr.Run.ColdStarts(),
			fr.Run.GBSeconds(), fr.LogLines, fr.LogBytes, k.Total(), k.StepFunctions, k.DynamoDB, k.Lambda, k.APIGateway, k.Logs, k.EventBridge+k.S3)
	}

	alarms := len(s.Template.ResourcesOfType("AWS::CloudWatch::Alarm"))
	dashboards := len(s.Template.ResourcesOfType("AWS::CloudWatch::Dashboard"))
	secrets := 0
	for _, param := range []string{"StripeSecretName", "StripeWebhookSecretName"} {
		if v, err := s.Template.Ref(param); err == nil && v != "" {
			secrets++
		}
	}
	tenantItem := int64(0)
	for _, fr := range runs {
		if fr.Name == "usage report" {
			tenantItem = fr.Run.Service("dynamodb")["UpdateItem"].BytesWritten
		}
	}
	fmt.Fprintf(&b, "\nThe tenant item was %d bytes when its usage was reported (1 WRU a write, and 1 more for its ByState entry with the "+
		"entry's 100 bytes of overhead). A tenant with its create, usage report, upgrade and downgrade stored %d bytes (items, index entries and "+
		"DynamoDB's 100 bytes of overhead each, in TenantsTable and its indexes).\n", tenantItem, tenantBytes)

	for _, sc := range []scenario{scenarioOf("100 lifecycle events a month, 100 tenants", 100, 100),
		scenarioOf("100,000 lifecycle events a day (3,000,000 a month), 1,000,000 tenants", 3_000_000, 1_000_000)} {
		fmt.Fprintf(&b, "\n**%s** (list prices, no free tier):\n\n", sc.Name)
		b.WriteString("| runs a month | flow | USD per 1,000 runs | USD a month |\n|---|---|---|---|\n")
		var total meter.Cost
		// X-Ray samples each entry point on its own: the API's and the webhook's
		// requests, the executions (traced by Step Functions even when the request
		// that started them was not sampled) and the scheduled invocations.
		streams := map[string]float64{}
		for _, fr := range runs {
			n := sc.Runs[fr.Name]
			if n == 0 {
				continue
			}
			for _, fn := range []string{"ApiFunction", "StripeWebhookFunction"} {
				if f := fr.Run.Functions[fn]; f != nil {
					streams[fn] += n * float64(f.Invocations)
				}
			}
			streams["executions"] += n * float64(len(fr.Run.Executions))
			streams["scheduled"] += n * float64(fr.Entries.Scheduled)
			c := cost[fr.Name].Scale(n)
			total = total.Plus(c)
			fmt.Fprintf(&b, "| %s | %s | %.4f | %.2f |\n", count(n), fr.Name, cost[fr.Name].Scale(1000).Total(), c.Total())
		}
		traces := 0.0
		for _, k := range slices.Sorted(maps.Keys(streams)) {
			traces += meter.SampledTraces(streams[k])
		}
		total.XRay = traces * p.Trace
		fmt.Fprintf(&b, "| %s | X-Ray traces (1 a second and 5%% of the rest, per entry point) | | %.2f |\n", count(float64(int64(traces))), total.XRay)
		logGB := total.Logs / p.LogGB
		storageGB := float64(sc.Tenants) * float64(tenantBytes) / (1 << 30)
		// Custom metrics are billed by the hour they receive data: every series every
		// hour at scale; at a few events a month, about three series for an hour each.
		metrics := metricMonth * metricSeries
		if events := sc.Runs["upgrade"] * 100 / mix["upgrade"]; events*3 < metricSeries*hoursPerMonth {
			metrics = metricMonth * events * 3 / hoursPerMonth
		}
		fixed := []struct {
			name string
			usd  float64
		}{
			{fmt.Sprintf("Secrets Manager: %d secrets × $%.2f", secrets, secretMonth), float64(secrets) * secretMonth},
			{fmt.Sprintf("CloudWatch: %d dashboard × $%.2f (free as one of an account's first 3)", dashboards, dashboardMonth), float64(dashboards) * dashboardMonth},
			{fmt.Sprintf("CloudWatch: %d alarms × $%.2f", alarms, alarmMonth), float64(alarms) * alarmMonth},
			{fmt.Sprintf("CloudWatch: custom metrics (EMF), up to %d series × $%.2f, prorated by the hour", metricSeries, metricMonth), metrics},
			{fmt.Sprintf("DynamoDB storage: %s tenants × %d bytes = %.2f GB × ($%.2f + $%.2f PITR)", count(float64(sc.Tenants)), tenantBytes, storageGB, storageGBMonth, pitrGBMonth), storageGB * (storageGBMonth + pitrGBMonth)},
			{fmt.Sprintf("CloudWatch Logs storage: %.2f GB kept 30 days × $%.2f", logGB, logStoreGBMonth), logGB * logStoreGBMonth},
		}
		fixedSum := 0.0
		for _, f := range fixed {
			fmt.Fprintf(&b, "| | %s | | %.2f |\n", f.name, f.usd)
			fixedSum += f.usd
		}
		fmt.Fprintf(&b, "| | **total** | | **%.2f** |\n\n", total.Total()+fixedSum)
		fmt.Fprintf(&b, "By service: Step Functions %.2f, DynamoDB %.2f (+ storage %.2f), Lambda %.2f, API Gateway %.2f, CloudWatch Logs %.2f, X-Ray %.2f, "+
			"EventBridge %.2f, S3 %.2f, fixed %.2f.\n", total.StepFunctions, total.DynamoDB, storageGB*(storageGBMonth+pitrGBMonth), total.Lambda, total.APIGateway,
			total.Logs, total.XRay, total.EventBridge, total.S3, fixedSum-storageGB*(storageGBMonth+pitrGBMonth))
	}
	return b.String()
}

// count renders a run count: 3,000,000, 1,500, 0.5.
func count(n float64) string {
	if n != float64(int64(n)) {
		return fmt.Sprintf("%g", n)
	}
	s := fmt.Sprint(int64(n))
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// storageSnapshot is TenantsTable's stored bytes with its indexes.
type storageSnapshot int64

func storage(t *testing.T, s *stack.Stack) storageSnapshot {
	t.Helper()
	u, err := meter.ReadUsage(context.Background(), s.Moto.Endpoint, true)
	if err != nil {
		t.Fatal(err)
	}
	tbl := u.Tables[s.TenantsTable]
	n := tbl.Bytes
	for _, ix := range tbl.Indexes {
		n += ix.Bytes
	}
	return storageSnapshot(n)
}

func (s storageSnapshot) minus(o storageSnapshot) int64 { return int64(s - o) }

// compareDoc compares the figures with docs/cost.md's, or rewrites both blocks with
// -update.
func compareDoc(t *testing.T, figures, measured string) {
	t.Helper()
	path := filepath.Join(testenv.RepoRoot(), costDoc)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	if *update {
		for _, blk := range [][3]string{{figuresBegin, figuresEnd, figures}, {measuredBegin, measuredEnd, measured}} {
			if doc, err = replaceBlock(doc, blk[0], blk[1], blk[2]); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the figures of %s", costDoc)
		return
	}
	got, err := block(doc, figuresBegin, figuresEnd)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(got) != strings.TrimSpace(figures) {
		want, have := strings.Split(strings.TrimSpace(figures), "\n"), strings.Split(strings.TrimSpace(got), "\n")
		var diff []string
		for i := range max(len(want), len(have)) {
			w, h := at(want, i), at(have, i)
			if w != h {
				diff = append(diff, "  doc:     "+h, "  counted: "+w)
			}
		}
		t.Errorf("the counted figures differ from %s (rerun with -update if the change is intended):\n%s", costDoc, strings.Join(diff, "\n"))
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

func block(doc, begin, end string) (string, error) {
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("%s has no block %q … %q", costDoc, begin, end)
	}
	return doc[i+len(begin) : j], nil
}

func replaceBlock(doc, begin, end, body string) (string, error) {
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("%s has no block %q … %q", costDoc, begin, end)
	}
	return doc[:i+len(begin)] + "\n" + strings.TrimSpace(body) + "\n" + doc[j:], nil
}
