package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Export measures the GDPR export end to end (POST → Step Functions chunk loop →
// completed) for a tenant of 20,000 and of 200,000 items: its throughput against a
// bare read of the same items (Query pagination, the least any export must do) and
// the peak memory of the chunk function's process, which must stay flat as the
// tenant grows.
var Export = Bench{Name: "export", Run: runExport}

// exportItemBytes makes 200,000 items about 100 MB (key, attributes and body).
const exportItemBytes = 450

// exportPartBytes is S3's minimum part size (5 MiB).
const exportPartBytes = 5 << 20

const exportChunkFunction = "ExportChunkFunction"

type exportFigures struct {
	items              int
	export, bare       time.Duration
	chunks, parts      int
	peakRSS, sizeBytes int64
}

func runExport(ctx context.Context, env *Env) (Section, error) {
	sec := Section{Name: "export"}
	// Parts of S3's minimum size, so that the smaller export too writes a full part and
	// the two peaks compare the same working set (one part, one page) at 10x the data.
	s, err := env.StartStackWith(ctx, map[string]string{"ExportPartBytes": fmt.Sprint(exportPartBytes)})
	if err != nil {
		return sec, err
	}
	defer s.Close()
	if err := s.Seed(ctx, false); err != nil {
		return sec, err
	}
	var figs []exportFigures
	for _, n := range []int{20_000, 200_000} {
		f, err := measureExport(ctx, env, s, n)
		if err != nil {
			return sec, err
		}
		figs = append(figs, f)
	}
	small, big := figs[0], figs[1]
	for _, f := range figs {
		label := Count(f.items) + " items"
		sec.Rows = append(sec.Rows,
			atLeast(NewRow("export throughput, "+label, perSecond(f.items, f.export), "items/s").Vs(perSecond(f.items, f.bare)), 0.7),
			NewRow("chunk invocations, "+label, float64(f.chunks), "invocations"),
			NewRow("export file, "+label, float64(f.sizeBytes)/1e6, "MB"),
		)
	}
	sec.Rows = append(sec.Rows,
		NewRow("chunk peak RSS, "+Count(small.items)+" items", mb(small.peakRSS), "MB").AtMost(128, "< 128 MB"),
		NewRow("chunk peak RSS, "+Count(big.items)+" items", mb(big.peakRSS), "MB").Vs(mb(small.peakRSS)).RatioAtMost(1.2),
		NewRow("chunk peak RSS, "+Count(big.items)+" items (absolute)", mb(big.peakRSS), "MB").AtMost(128, "< 128 MB"),
	)
	sec.Notes = []string{
		fmt.Sprintf("items with a %d-character body (base64 of a hash chain: gzip keeps ~3/4), loaded with stack.LoadData; parts of 5 MiB (ExportPartBytes, S3's minimum), so both sizes write full parts", exportItemBytes),
		"export = POST /tenants/{id}/exports through the api bootstrap until GET reports completed: Start (count for the estimate, open the upload), the chunk loop on the local Step Functions service, Finalize; " +
			"baseline = one bare consistent Query pagination of the same items on the same moto, measured before and after the export (mean)",
		"peak RSS = VmHWM of the chunk function's process, started fresh for each export (lambdasvc.Recycle), read from /proc after the export: what Lambda reports as Max Memory Used",
	}
	return sec, nil
}

func measureExport(ctx context.Context, env *Env, s *stack.Stack, n int) (exportFigures, error) {
	f := exportFigures{items: n}
	id := fmt.Sprintf("tenant_bench_export_%d", n)
	if err := createTenant(ctx, s, id); err != nil {
		return f, err
	}
	loadStart := time.Now()
	if err := s.LoadData(ctx, id, n, exportItemBytes); err != nil {
		return f, err
	}
	env.Logf("export: loaded %s items in %s", Count(n), time.Since(loadStart).Round(time.Second))
	before, err := bareRead(ctx, s, id, n)
	if err != nil {
		return f, err
	}
	if err := s.Lambda.Recycle(exportChunkFunction); err != nil {
		return f, err
	}
	s.Lambda.ResetStats()
	start := time.Now()
	view, err := exportAndWait(ctx, s, id)
	if err != nil {
		return f, err
	}
	f.export = time.Since(start)
	f.chunks = s.Lambda.Stats()[exportChunkFunction].Invocations
	procs, err := s.Lambda.Processes(exportChunkFunction)
	if err != nil {
		return f, err
	}
	for _, p := range procs {
		f.peakRSS = max(f.peakRSS, p.PeakRSSBytes)
	}
	after, err := bareRead(ctx, s, id, n)
	if err != nil {
		return f, err
	}
	f.bare = (before + after) / 2
	f.sizeBytes = int64(view.SizeBytes)
	f.parts = view.Parts
	env.Logf("export: %s items in %s (bare read %s / %s), %d chunk invocations, %d parts, %.1f MB, chunk peak RSS %.1f MB",
		Count(n), f.export.Round(time.Millisecond), before.Round(time.Millisecond), after.Round(time.Millisecond), f.chunks, f.parts, float64(f.sizeBytes)/1e6, mb(f.peakRSS))
	return f, nil
}

// createTenant adds an ACTIVE tenant (a copy of the example tenant_acme) to export.
func createTenant(ctx context.Context, s *stack.Stack, id string) error {
	src, err := s.Store().GetTenant(ctx, "tenant_acme")
	if err != nil {
		return fmt.Errorf("read the example tenant: %w", err)
	}
	c := *src
	c.ID, c.Billing.SubscriptionID, c.Billing.CustomerID = id, "sub_"+id, "cus_"+id
	if _, err := s.Store().CreateTenant(ctx, &c, store.Actor{Who: "system:bench"}); err != nil {
		return fmt.Errorf("create %s: %w", id, err)
	}
	limits, _ := tenant.DefaultCatalog().Limits(c.Plan)
	_, err = s.Store().PutEntitlements(ctx, &tenant.Entitlements{TenantID: id, Plan: c.Plan, Limits: limits, EventPublished: true}, 0)
	return err
}

// bareRead pages through the tenant's items with plain consistent Queries (DynamoDB's
// 1 MB pages), as any reader of the data must at least do.
func bareRead(ctx context.Context, s *stack.Stack, id string, want int) (time.Duration, error) {
	db := s.DynamoDB()
	start := time.Now()
	var from map[string]dbtypes.AttributeValue
	got := 0
	for {
		out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: &s.DataTable, ConsistentRead: aws.Bool(true), ExclusiveStartKey: from,
			KeyConditionExpression:    aws.String("tenant_id = :t"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": &dbtypes.AttributeValueMemberS{Value: id}}})
		if err != nil {
			return 0, fmt.Errorf("bare read of %s: %w", id, err)
		}
		got += len(out.Items)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		from = out.LastEvaluatedKey
	}
	if got != want {
		return 0, fmt.Errorf("bare read of %s: %d items, want %d", id, got, want)
	}
	return time.Since(start), nil
}

type exportView struct {
	ExportID  string  `json:"export_id"`
	Status    string  `json:"status"`
	SizeBytes float64 `json:"size_bytes"`
	Parts     int     `json:"parts"`
	Cause     string  `json:"cause"`
}

// exportAndWait requests an export through the api bootstrap with an operator token
// and polls its GET until it completes.
func exportAndWait(ctx context.Context, s *stack.Stack, id string) (exportView, error) {
	var v exportView
	if err := callAPI(ctx, s, http.MethodPost, "/tenants/"+id+"/exports", "/tenants/{id}/exports", map[string]string{"id": id}, http.StatusAccepted, &v); err != nil {
		return v, err
	}
	exportID := v.ExportID
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		if err := callAPI(ctx, s, http.MethodGet, "/tenants/"+id+"/exports/"+exportID, "/tenants/{id}/exports/{export_id}",
			map[string]string{"id": id, "export_id": exportID}, http.StatusOK, &v); err != nil {
			return v, err
		}
		switch v.Status {
		case "completed":
			return v, nil
		case "failed":
			return v, fmt.Errorf("export %s of %s failed: %s", exportID, id, v.Cause)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return v, fmt.Errorf("export %s of %s did not complete in 15 minutes", exportID, id)
}

func callAPI(ctx context.Context, s *stack.Stack, method, path, route string, params map[string]string, want int, out any) error {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + route, RawPath: path, PathParameters: params,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: method + " " + route, RequestID: "bench-export", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: map[string]string{"sub": "operator_bench", "scope": httpapi.AdminScope},
			}},
		},
	}
	raw, _ := json.Marshal(ev)
	res, err := s.Lambda.Invoke(ctx, "ApiFunction", raw)
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d (want %d): %s", method, path, resp.StatusCode, want, resp.Body)
	}
	return json.Unmarshal([]byte(resp.Body), out)
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// atLeast sets the goal "ratio >= min" (throughputs: higher is better).
func atLeast(r Row, min float64) Row {
	r.Goal = "ratio >= " + formatNumber(min)
	met := r.Baseline > 0 && r.Ratio >= min
	r.Met = &met
	return r
}
