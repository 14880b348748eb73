package purge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestPurgeErasesEveryCopy is the purge's acceptance test. A tenant is created and
// deleted through the API (with Idempotency-Key, so the API keeps its answers), gets a
// Stripe webhook event, an operation whose claim was refused (recorded, never named by
// the audit trail), application data, an export object, and a running export whose
// multipart upload is open (its first step's answer is held, so the execution is
// still running when the purge starts). Then its retention ends and the sweep purges
// it. Read back with the plain SDK, nothing of the tenant may be left anywhere: no
// item of the control-plane table names it except the tombstone, its scrubbed audit
// trail and the purge's own operation; no data item, object, object version or open
// upload under its prefix; the export is stopped; the Stripe customer was deleted
// (the recording proxy saw the DELETE). The certificate names every source and says
// what remains, why and until when.
func TestPurgeErasesEveryCopy(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	ctx := context.Background()
	const id = "purge-everything"
	email := "owner@" + id + ".example"

	// Created and deleted through the API, each request with an Idempotency-Key.
	resp := st.Call(t, s, st.EventWithHeaders(t, "POST", "/tenants", "/tenants", nil,
		map[string]any{"id": id, "name": "Everything Ltd", "email": email, "plan": "starter"}, st.Admin, map[string]string{"Idempotency-Key": "create-" + id}))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, resp.Body)
	}
	created := st.Tenant(t, s, id)
	customer := created.Billing.CustomerID
	if customer == "" || created.Billing.SubscriptionID == "" {
		t.Fatalf("tenant has no Stripe customer or subscription: %+v", created.Billing)
	}
	deliverStripeEvent(t, s, stack.StripeEventSpec{Type: "invoice.paid", TenantID: id, SubscriptionID: created.Billing.SubscriptionID})
	delOp := st.OperationID(t, st.Call(t, s, st.EventWithHeaders(t, "DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil,
		st.TenantToken(id), map[string]string{"Idempotency-Key": "delete-" + id})))
	if op := st.WaitDone(t, s, delOp); op["status"] != "SUCCEEDED" {
		t.Fatalf("deletion %v", op)
	}
	// An operation whose claim was refused: recorded with who asked, never audited.
	unaudited := &tenant.Operation{ID: "op_refused_" + strings.ReplaceAll(id, "-", "_"), TenantID: id, Kind: tenant.KindReactivation,
		Status: tenant.OpFailed, ToPlan: tenant.Starter, RequestedBy: "carol@" + id + ".example"}
	if _, err := s.Store().CreateOperation(ctx, unaudited); err != nil {
		t.Fatal(err)
	}
	putData(t, s, id, 40)
	putObjects(t, s, id, 1)

	// A running export: its Start step opens the multipart upload, and its answer is
	// held until the end of the test, so the execution is still running.
	started := make(chan string, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(release) }) }
	stop := s.Lambda.Observe(func(inv lambdasvc.Invocation) {
		if inv.Function != "ExportStartFunction" || !strings.Contains(string(inv.Payload), id) {
			return
		}
		select {
		case started <- string(inv.Payload):
		default:
		}
		<-release
	})
	t.Cleanup(func() { unhold(); stop() })
	resp = st.Call(t, s, st.EventWithHeaders(t, "POST", "/tenants/"+id+"/exports", "/tenants/{id}/exports", map[string]string{"id": id}, nil,
		st.Admin, map[string]string{"Idempotency-Key": "export-" + id}))
	if resp.StatusCode != 202 {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Body)
	}
	exportID, _ := st.Body(t, resp)["export_id"].(string)
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the export's start step did not run")
	}
	exportARN := flow.ExecutionARN(s.StateMachines["ExportStateMachine"], exportID)
	if got := executionStatus(t, s, exportARN); got != sfntypes.ExecutionStatusRunning {
		t.Fatalf("export execution %s, want RUNNING", got)
	}
	if n := openUploads(t, s, id); n != 1 {
		t.Fatalf("open uploads %d, want the export's 1", n)
	}

	// The retention ends (as if 30 days had passed).
	past := time.Now().UTC().Add(-time.Minute)
	if _, err := s.Store().Change(ctx, id, store.Actor{Who: "system:test"}, func(*tenant.Tenant) (store.Write, error) {
		return store.Write{Mutate: func(x *tenant.Tenant) { x.PurgeAfter = &past }}, nil
	}); err != nil {
		t.Fatal(err)
	}
	before := traces(t, s, id, customer, email)
	t.Logf("items naming the tenant before the purge: %v", keysOf(before))

	r := sweep(t, s, time.Now().UTC())
	if len(r.Started) != 1 || len(r.Failed) != 0 {
		t.Fatalf("sweep %+v", r)
	}
	opID := r.Started[0]
	if got := waitExecution(t, s, opID, 2*time.Minute); got != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("purge execution %s", got)
	}

	// Independent reads of every source.
	if got := executionStatus(t, s, exportARN); got == sfntypes.ExecutionStatusRunning {
		t.Errorf("the export is still RUNNING after the purge")
	}
	check := func(when string) {
		t.Helper()
		if n := openUploads(t, s, id); n != 0 {
			t.Errorf("%s: %d open multipart upload(s) under %s", when, n, purge.ExportPrefix(id))
		}
		if n := objectVersions(t, s, id); n != 0 {
			t.Errorf("%s: %d object version(s) or delete marker(s) under %s", when, n, purge.ExportPrefix(id))
		}
		if c := sourceCounts(t, s, &sample{ID: id, Customer: customer}); len(c) != 0 {
			t.Errorf("%s: sources %v, want all 0", when, c)
		}
		for _, left := range keysOf(traces(t, s, id, customer, email)) {
			t.Errorf("%s: the control-plane table still holds %s naming the tenant", when, left)
		}
	}
	check("after the purge")
	if reqs := successful(s.Stripe.RequestsTo("DELETE /v1/customers/" + customer)); len(reqs) == 0 {
		t.Errorf("the Stripe customer %s was not deleted (no successful DELETE /v1/customers/%s)", customer, customer)
	}

	// The certificate names every source and what remains.
	item := tenantItem(t, s, id)
	var cert map[string]any
	if err := json.Unmarshal([]byte(attr(item, "deletion_certificate")), &cert); err != nil {
		t.Fatalf("certificate: %v", err)
	}
	sources, _ := cert["sources"].(map[string]any)
	for _, src := range []string{"control_plane", "operations", "idempotency", "webhooks", "tenant_data", "exports", "export_uploads", "stripe_customer"} {
		sc, _ := sources[src].(map[string]any)
		if at, _ := sc["verified_empty_at"].(string); at == "" {
			t.Errorf("certificate does not name source %s with verified_empty_at: %v", src, sc)
		}
	}
	if sc, _ := sources["stripe_customer"].(map[string]any); sc != nil && sc["items_deleted"] != float64(1) {
		t.Errorf("certificate stripe_customer %v, want 1 customer deleted", sc)
	}
	remains, _ := cert["remains"].([]any)
	var what []string
	for _, x := range remains {
		m, _ := x.(map[string]any)
		w, _ := m["what"].(string)
		why, _ := m["why"].(string)
		if w == "" || why == "" {
			t.Errorf("remains entry without what or why: %v", m)
		}
		what = append(what, w)
		if strings.Contains(w, "point-in-time") && m["until"] != cert["backups_expire_at"] {
			t.Errorf("backups remain until %v, certificate says backups_expire_at %v", m["until"], cert["backups_expire_at"])
		}
	}
	for _, want := range []string{"point-in-time", "invoices"} {
		if !slices.ContainsFunc(what, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("certificate remains %q name nothing about %s", what, want)
		}
	}
	if evs := purgedEvents(t, s, id); len(evs) != 1 || evs[0].Certificate == nil || evs[0].Certificate.SHA256 != attrCertSHA(cert) {
		t.Errorf("TenantPurged events %+v, want one carrying the committed certificate", evs)
	}

	// The held export step answers now: nothing it does may bring data back.
	unhold()
	deadline := time.Now().Add(time.Minute)
	for executionStatus(t, s, exportARN) == sfntypes.ExecutionStatusRunning && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	check("after the export's step answered")
	b, _ := json.MarshalIndent(cert, "", "  ")
	t.Logf("certificate:\n%s", b)
}

func attrCertSHA(cert map[string]any) string { v, _ := cert["sha256"].(string); return v }

// successful keeps the requests Stripe answered with a 2xx.
func successful(reqs []testenv.StripeRequest) []testenv.StripeRequest {
	var out []testenv.StripeRequest
	for _, r := range reqs {
		if r.Status >= 200 && r.Status < 300 {
			out = append(out, r)
		}
	}
	return out
}

// executionStatus reads an execution's status (plain SDK).
func executionStatus(t *testing.T, s *stack.Stack, arn string) sfntypes.ExecutionStatus {
	t.Helper()
	out, err := s.SFNClient().DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("describe %s: %v", arn, err)
	}
	return out.Status
}

// openUploads counts the multipart uploads open under the tenant's export prefix.
func openUploads(t *testing.T, s *stack.Stack, id string) int {
	t.Helper()
	out, err := s.S3().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(exportsBucket(t, s)), Prefix: aws.String(purge.ExportPrefix(id))})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// objectVersions counts every version and delete marker under the tenant's prefix.
func objectVersions(t *testing.T, s *stack.Stack, id string) int {
	t.Helper()
	out, err := s.S3().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(exportsBucket(t, s)), Prefix: aws.String(purge.ExportPrefix(id))})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Versions) + len(out.DeleteMarkers)
}

// traces scans the whole control-plane table (the test's independent read: no index,
// no key layout assumed) for items holding the tenant's id, Stripe customer id or
// e-mail address in any attribute, and returns them by "pk / sk" — except what a
// purged tenant keeps: its tombstone (checked to hold no e-mail or customer), its
// audit trail and the purge's own operation records.
func traces(t *testing.T, s *stack.Stack, id, customer, email string) map[string]map[string]dbtypes.AttributeValue {
	t.Helper()
	out := map[string]map[string]dbtypes.AttributeValue{}
	p := dynamodb.NewScanPaginator(s.DynamoDB(), &dynamodb.ScanInput{TableName: aws.String(s.TenantsTable), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			text := fmt.Sprint(flatten(item))
			if !strings.Contains(text, id) && !strings.Contains(text, customer) && !strings.Contains(text, email) {
				continue
			}
			pk, sk := attr(item, "pk"), attr(item, "sk")
			switch {
			case pk == store.TenantPartition(id) && sk == store.TenantSortKey:
				if attr(item, "state") == string(tenant.Purged) {
					if strings.Contains(text, email) || strings.Contains(text, customer) {
						t.Errorf("the tombstone still holds the e-mail or the Stripe customer: %v", text)
					}
					continue
				}
			case pk == store.TenantPartition(id) && store.IsAuditSortKey(sk):
				continue
			case strings.HasPrefix(pk, "OP#") && attr(item, "kind") == tenant.KindPurge:
				continue
			}
			out[pk+" / "+sk] = item
		}
	}
	return out
}

// flatten lists every string inside an item, nested maps and lists included.
func flatten(v any) []string {
	switch v := v.(type) {
	case map[string]dbtypes.AttributeValue:
		var out []string
		for _, x := range v {
			out = append(out, flatten(x)...)
		}
		return out
	case *dbtypes.AttributeValueMemberS:
		return []string{v.Value}
	case *dbtypes.AttributeValueMemberSS:
		return v.Value
	case *dbtypes.AttributeValueMemberM:
		return flatten(v.Value)
	case *dbtypes.AttributeValueMemberL:
		var out []string
		for _, x := range v.Value {
			out = append(out, flatten(x)...)
		}
		return out
	}
	return nil
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// deliverStripeEvent signs one Stripe event with the local webhook secret and posts
// it to the real webhook bootstrap, as API Gateway would.
func deliverStripeEvent(t *testing.T, s *stack.Stack, spec stack.StripeEventSpec) {
	t.Helper()
	body, err := stack.StripeEvent(testenv.RepoRoot(), spec)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /webhooks/stripe", RawPath: "/webhooks/stripe", Body: string(body),
		Headers: map[string]string{"content-type": "application/json", "stripe-signature": stack.SignStripeEvent(body, stack.StripeWebhookTestSecret, time.Now())},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: "POST /webhooks/stripe", RequestID: "req-" + t.Name(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/webhooks/stripe"}},
	}
	raw, _ := json.Marshal(ev)
	res, err := s.Lambda.Invoke(context.Background(), "StripeWebhookFunction", raw)
	if err != nil || res.FunctionError != "" {
		t.Fatalf("webhook: %v %s", err, res.Payload)
	}
	var out events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &out); err != nil || out.StatusCode != 200 {
		t.Fatalf("webhook answer %s", res.Payload)
	}
}
