package purge_test

// End-to-end tests of the purge as it runs in AWS: the real purge-sweep bootstrap
// (fired with a scheduled event) starts the real statemachines/purge.asl.json on the
// local Step Functions service, whose tasks run the real step bootstraps against moto.
// Every assertion about what is left reads the tables and the bucket with the plain
// AWS SDK, never through the code under test. Faults are injected from outside,
// through the local Lambda service.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m))
}

// scale is the size of TestPurgeAtScale. The figures (10,000 tenants, a
// 50,000-item tenant) take minutes to seed and delete in moto, so `go test` runs a
// smaller copy and TENANTFLOW_PURGE_SCALE=full runs the real one.
type scale struct {
	Tenants, Due, Items int
	// Chunk is the stack's PurgeChunkItems: small enough that the big tenant takes
	// several delete invocations, so killing the purge after two is really midway.
	Chunk int
}

func purgeScale() scale {
	if os.Getenv("TENANTFLOW_PURGE_SCALE") == "full" {
		return scale{Tenants: 10_000, Due: 10, Items: 50_000, Chunk: 5000}
	}
	return scale{Tenants: 300, Due: 10, Items: 2000, Chunk: 400}
}

// stackOptions start the package's stack: the purge chunk of purgeScale, 10 minutes
// for the start and each reset (TestPurgeAtScale leaves many items to remove), and
// function output on -v only with TENANTFLOW_PURGE_LOGS set.
func stackOptions() st.Options {
	return st.Options{
		Params:  map[string]string{"PurgeChunkItems": strconv.Itoa(purgeScale().Chunk)},
		Timeout: 10 * time.Minute,
		LogEnv:  "TENANTFLOW_PURGE_LOGS",
	}
}

// sweep delivers one scheduled event at `at` to the real purge-sweep bootstrap.
func sweep(t *testing.T, s *stack.Stack, at time.Time) purge.SweepResult {
	t.Helper()
	var out purge.SweepResult
	st.Scheduled(t, s, "PurgeSweepFunction", at, &out)
	return out
}

// waitExecution waits until the execution of operation opID has ended and returns its
// status (the operation record says SUCCEEDED a moment before Finish's last scrub, so
// tests wait for the execution itself).
func waitExecution(t *testing.T, s *stack.Stack, opID string, limit time.Duration) sfntypes.ExecutionStatus {
	t.Helper()
	arn := flow.ExecutionARN(s.StateMachines["PurgeStateMachine"], opID)
	client := s.SFNClient()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		out, err := client.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err == nil && out.Status != sfntypes.ExecutionStatusRunning {
			return out.Status
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("execution %s did not end within %s", opID, limit)
	return ""
}

// sample is a DELETED tenant as the deletion flow leaves it, with data in every
// source: an audit trail naming people and giving reasons, entitlements, the records
// of two operations, one more item under its partition key, application data items,
// export objects and a Stripe customer.
type sample struct {
	ID         string
	PurgeAfter time.Time
	Data       int
	Objects    int
	Ops        []string // the operation records it has (upgrade, deletion)
	Customer   string   // its Stripe customer
}

// counts is what a source holds, read with the plain SDK.
type counts map[string]int64

func newSample(t *testing.T, s *stack.Stack, id string, purgeAfter time.Time, data, objects int) *sample {
	t.Helper()
	ctx := context.Background()
	st := s.Store()
	sm := &sample{ID: id, PurgeAfter: purgeAfter.UTC(), Data: data, Objects: objects, Customer: "cus_" + id}
	tn := &tenant.Tenant{ID: id, Name: "Customer " + id, Email: "owner@" + id + ".example", Plan: tenant.Starter, State: tenant.Active,
		Usage: tenant.Usage{Users: 4, StorageGB: 1.5, APICallsPerMonth: 12_000}, Billing: tenant.BillingRef{CustomerID: "cus_" + id, SubscriptionID: "sub_" + id}}
	if _, err := st.CreateTenant(ctx, tn, store.Actor{Who: "system:seed", Reason: "signed up by owner@" + id + ".example"}); err != nil {
		t.Fatal(err)
	}
	limits, _ := tenant.DefaultCatalog().Limits(tenant.Starter)
	if _, err := st.PutEntitlements(ctx, &tenant.Entitlements{TenantID: id, Plan: tenant.Starter, Limits: limits, EventPublished: true}, 0); err != nil {
		t.Fatal(err)
	}
	up, del := "op_up_"+strings.ReplaceAll(id, "-", "_"), "op_del_"+strings.ReplaceAll(id, "-", "_")
	for _, op := range []*tenant.Operation{
		{ID: up, TenantID: id, Kind: tenant.KindUpgrade, Status: tenant.OpSucceeded, FromPlan: tenant.Free, ToPlan: tenant.Starter, RequestedBy: "alice@" + id + ".example"},
		{ID: del, TenantID: id, Kind: tenant.KindDeletion, Status: tenant.OpSucceeded, RetentionDays: 30, RequestedBy: "bob@" + id + ".example"},
	} {
		if _, err := st.CreateOperation(ctx, op); err != nil {
			t.Fatal(err)
		}
		sm.Ops = append(sm.Ops, op.ID)
	}
	change := func(by store.Actor, to tenant.State, mutate func(*tenant.Tenant)) {
		t.Helper()
		if _, err := st.Change(ctx, id, by, func(*tenant.Tenant) (store.Write, error) {
			return store.Write{To: to, Reason: by.Reason, Mutate: mutate}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	change(store.Actor{Who: "alice@" + id + ".example", OperationID: up, Reason: "Alice upgraded: we need more seats"}, "", nil)
	change(store.Actor{Who: "bob@" + id + ".example", OperationID: del, Reason: "Bob closed the account: moving to a competitor"}, tenant.Deleting, nil)
	deletedAt := sm.PurgeAfter.AddDate(0, 0, -30)
	change(store.Actor{Who: "system:deletion", OperationID: del, Reason: "deleted; kept 30 days"}, tenant.Deleted, func(x *tenant.Tenant) {
		x.DeletedAt, x.PurgeAfter, x.RetentionDays = &deletedAt, &sm.PurgeAfter, 30
	})
	if _, err := s.DynamoDB().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.TenantsTable), Item: map[string]dbtypes.AttributeValue{
		"pk": sv(store.TenantPartition(id)), "sk": sv("NOTE#0001"), "text": sv("support note: call Bob on +1 555 0100"),
	}}); err != nil {
		t.Fatal(err)
	}
	putData(t, s, id, data)
	putObjects(t, s, id, objects)
	return sm
}

func sv(s string) dbtypes.AttributeValue { return &dbtypes.AttributeValueMemberS{Value: s} }

// putData writes n application items for a tenant, 25 per BatchWriteItem, 4 writers.
func putData(t *testing.T, s *stack.Stack, id string, n int) {
	t.Helper()
	db := s.DynamoDB()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := w * 25; start < n; start += 100 {
				var reqs []dbtypes.WriteRequest
				for i := start; i < min(start+25, n); i++ {
					reqs = append(reqs, dbtypes.WriteRequest{PutRequest: &dbtypes.PutRequest{Item: map[string]dbtypes.AttributeValue{
						"tenant_id": sv(id), "item_id": sv(fmt.Sprintf("doc#%06d", i)), "title": sv(fmt.Sprintf("Document %d of %s", i, id)),
					}}})
				}
				pending := map[string][]dbtypes.WriteRequest{s.DataTable: reqs}
				for len(pending) > 0 {
					out, err := db.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: pending})
					if err != nil {
						errs <- err
						return
					}
					pending = out.UnprocessedItems
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed data %s: %v", id, err)
	}
}

func exportsBucket(t *testing.T, s *stack.Stack) string {
	t.Helper()
	name, err := s.Template.Ref("ExportsBucket")
	if err != nil {
		t.Fatal(err)
	}
	return name.(string)
}

func putObjects(t *testing.T, s *stack.Stack, id string, n int) {
	t.Helper()
	bucket := exportsBucket(t, s)
	for i := range n {
		if _, err := s.S3().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
			Key: aws.String(fmt.Sprintf("%s%04d.json", purge.ExportPrefix(id), i)), Body: strings.NewReader(`{"export":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

// sourceCounts reads what each source holds for a sample tenant with the plain SDK
// and the Stripe proxy's record, never through the code under test: control_plane is
// every item under its partition key other than the tenant item and its audit trail;
// operations, idempotency and webhooks come from a Scan of the whole table (records
// of its operations other than purges; Idempotency-Key and webhook records naming it);
// exports counts object versions and delete markers, export_uploads the open
// multipart uploads; stripe_customer is 1 while its customer has not been deleted.
// Sources holding nothing are left out (sameCounts compares so).
func sourceCounts(t *testing.T, s *stack.Stack, sm *sample) counts {
	t.Helper()
	ctx := context.Background()
	id := sm.ID
	db := s.DynamoDB()
	c := counts{}
	p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{TableName: aws.String(s.DataTable), ConsistentRead: aws.Bool(true), Select: dbtypes.SelectCount,
		KeyConditionExpression: aws.String("tenant_id = :t"), ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": sv(id)}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c[tenant.SourceTenantData] += int64(page.Count)
	}
	c[tenant.SourceExports] = int64(objectVersions(t, s, id))
	c[tenant.SourceExportUploads] = int64(openUploads(t, s, id))
	for _, item := range partition(t, s, id) {
		sk := item["sk"].(*dbtypes.AttributeValueMemberS).Value
		if sk != store.TenantSortKey && !store.IsAuditSortKey(sk) {
			c[tenant.SourceControlPlane]++
		}
	}
	scan := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(s.TenantsTable), ConsistentRead: aws.Bool(true)})
	for scan.HasMorePages() {
		page, err := scan.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			pk := attr(item, "pk")
			names := slices.Contains(flatten(item), id)
			switch {
			case strings.HasPrefix(pk, "OP#") && attr(item, "tenant_id") == id && attr(item, "kind") != tenant.KindPurge:
				c[tenant.SourceOperations]++
			case strings.HasPrefix(pk, "IDEMP#") && (names || strings.Contains(attr(item, "response_body"), `"`+id+`"`)):
				c[tenant.SourceIdempotency]++
			case (strings.HasPrefix(pk, "WEBHOOK#") || strings.HasPrefix(pk, "WEBHOOKSUB#")) && names:
				c[tenant.SourceWebhooks]++
			}
		}
	}
	if sm.Customer != "" && len(successful(s.Stripe.RequestsTo("DELETE /v1/customers/"+sm.Customer))) == 0 {
		c[tenant.SourceStripeCustomer] = 1
	}
	for k, v := range c {
		if v == 0 {
			delete(c, k)
		}
	}
	return c
}

// sameCounts compares two counts, a source missing from one counting as 0.
func sameCounts(a, b counts) bool {
	for _, src := range tenant.Sources {
		if a[src] != b[src] {
			return false
		}
	}
	return true
}

// partition returns every item under the tenant's partition key (plain SDK).
func partition(t *testing.T, s *stack.Stack, id string) []map[string]dbtypes.AttributeValue {
	t.Helper()
	var out []map[string]dbtypes.AttributeValue
	p := dynamodb.NewQueryPaginator(s.DynamoDB(), &dynamodb.QueryInput{TableName: aws.String(s.TenantsTable), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk"), ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":pk": sv(store.TenantPartition(id))}})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Items...)
	}
	return out
}

// tenantItem is the raw tenant item (plain SDK).
func tenantItem(t *testing.T, s *stack.Stack, id string) map[string]dbtypes.AttributeValue {
	t.Helper()
	out, err := s.DynamoDB().GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(s.TenantsTable), ConsistentRead: aws.Bool(true),
		Key: map[string]dbtypes.AttributeValue{"pk": sv(store.TenantPartition(id)), "sk": sv(store.TenantSortKey)}})
	if err != nil || out.Item == nil {
		t.Fatalf("tenant item %s: %v", id, err)
	}
	return out.Item
}

func attr(item map[string]dbtypes.AttributeValue, name string) string {
	if v, ok := item[name].(*dbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// certificateOf parses the certificate stored on the raw tenant item.
func certificateOf(t *testing.T, item map[string]dbtypes.AttributeValue) *tenant.DeletionCertificate {
	t.Helper()
	raw := attr(item, "deletion_certificate")
	if raw == "" {
		t.Fatalf("tenant item has no deletion_certificate: %v", item)
	}
	var c tenant.DeletionCertificate
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// checkPurged asserts, with the plain SDK, everything a purged tenant must be: every
// source empty, a sealed certificate of operation opID certifying `before`, a tombstone
// without personal data, and the audit trail's transitions kept without who or reason.
func checkPurged(t *testing.T, s *stack.Stack, sm *sample, opID string, before counts) *tenant.DeletionCertificate {
	t.Helper()
	if got := sourceCounts(t, s, sm); len(got) != 0 {
		t.Errorf("%s: sources after the purge %v, want all 0", sm.ID, got)
	}
	item := tenantItem(t, s, sm.ID)
	if st := attr(item, "state"); st != string(tenant.Purged) {
		t.Fatalf("%s is %s, want PURGED", sm.ID, st)
	}
	for _, a := range []string{"name", "email", "usage_users", "usage_storage_gb", "usage_api_calls", "stripe_customer_id",
		"stripe_subscription_id", "purge_inventory", "due_kind", "due_at", "operation_id"} {
		if v, ok := item[a]; ok {
			t.Errorf("%s: tombstone keeps %s = %v", sm.ID, a, v)
		}
	}
	c := certificateOf(t, item)
	if c.OperationID != opID || c.TenantID != sm.ID || !c.Verify() {
		t.Errorf("%s: certificate of %s for %s, verify %v", sm.ID, c.OperationID, c.TenantID, c.Verify())
	}
	var last time.Time
	for _, src := range tenant.Sources {
		sc, ok := c.Sources[src]
		if !ok || sc.ItemsDeleted != before[src] || sc.VerifiedEmptyAt.IsZero() {
			t.Errorf("%s: certificate source %s = %+v, want %d items", sm.ID, src, sc, before[src])
		}
		if src != tenant.SourceStripeCustomer && sc.VerifiedEmptyAt.After(last) {
			last = sc.VerifiedEmptyAt
		}
	}
	if len(c.Remains) == 0 || c.Remains[0].Until != c.BackupsExpireAt.Format(time.RFC3339Nano) {
		t.Errorf("%s: remains %+v, want the backups first, until %s", sm.ID, c.Remains, c.BackupsExpireAt)
	}
	if !c.BackupsExpireAt.Equal(last.Add(35 * 24 * time.Hour)) {
		t.Errorf("%s: backups_expire_at %s, want %s + 35 days", sm.ID, c.BackupsExpireAt, last)
	}
	var trail []string
	for _, it := range partition(t, s, sm.ID) {
		if !store.IsAuditSortKey(attr(it, "sk")) {
			continue
		}
		if _, ok := it["reason"]; ok {
			t.Errorf("%s: audit %s keeps its reason %q", sm.ID, attr(it, "sk"), attr(it, "reason"))
		}
		switch who := attr(it, "who"); who {
		case purge.RoleSystem, purge.RoleOperator, purge.RoleTenant, purge.RoleUser:
		default:
			t.Errorf("%s: audit %s keeps who %q", sm.ID, attr(it, "sk"), who)
		}
		if from, to := attr(it, "from_state"), attr(it, "to_state"); from != to {
			trail = append(trail, from+"->"+to)
		}
	}
	want := []string{"->ACTIVE", "ACTIVE->DELETING", "DELETING->DELETED", "DELETED->PURGED"}
	if strings.Join(trail, " ") != strings.Join(want, " ") {
		t.Errorf("%s: audit transitions %v, want %v", sm.ID, trail, want)
	}
	return c
}

// purgedEvents returns the TenantPurged events of tenant id published since the
// test's reset.
func purgedEvents(t *testing.T, s *stack.Stack, id string) []purge.PurgedEvent {
	t.Helper()
	var out []purge.PurgedEvent
	for _, e := range st.Published(t, s, id) {
		var d purge.PurgedEvent
		if e.DetailType == "TenantPurged" && json.Unmarshal(e.Detail, &d) == nil && d.TenantID == id {
			out = append(out, d)
		}
	}
	return out
}
