package sources_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/purge/sources"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func sv(s string) dbtypes.AttributeValue { return &dbtypes.AttributeValueMemberS{Value: s} }

// world is a tenant with something in every source, on moto, and a neighbour whose id
// starts with the tenant's (its objects share the prefix up to the slash).
type world struct {
	src    *sources.Sources
	db     *dynamodb.Client
	s3     *s3.Client
	st     *store.Store
	bucket string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db, names := testenv.Tables(t)
	cfg := testenv.AWSConfig(testenv.MotoEndpoint(t))
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := strings.ToLower(strings.TrimSuffix(testenv.UniquePrefix(t), "-"))
	if len(bucket) > 60 {
		bucket = bucket[:60]
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	w := &world{db: db, s3: s3c, bucket: bucket, st: store.New(db, names["TenantsTable"], nil),
		src: &sources.Sources{Data: db, DataTable: names["TenantDataTable"], Objects: s3c, Bucket: bucket, ControlPlane: db, Table: names["TenantsTable"]}}
	return w
}

// fill gives tenant id: n data items, the entitlements and two export jobs (one
// running) in its partition, an audited and an unaudited operation, a purge
// operation of its own, a kept idempotency answer, a webhook event, the objects of
// the bucket (2 versions of one key, one deleted key: a version and a delete marker)
// and one open multipart upload.
func (w *world) fill(t *testing.T, id string, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := w.st.CreateTenant(ctx, &tenant.Tenant{ID: id, Name: "N " + id, Plan: tenant.Starter, State: tenant.Deleted}, store.Actor{Who: "test", OperationID: "op_audited_" + id}); err != nil {
		t.Fatal(err)
	}
	put := func(table string, item map[string]dbtypes.AttributeValue) {
		if _, err := w.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		put(w.src.DataTable, map[string]dbtypes.AttributeValue{"tenant_id": sv(id), "item_id": sv(fmt.Sprintf("doc#%04d", i))})
	}
	pk := store.TenantPartition(id)
	put(w.src.Table, map[string]dbtypes.AttributeValue{"pk": sv(pk), "sk": sv("ENTITLEMENTS")})
	put(w.src.Table, map[string]dbtypes.AttributeValue{"pk": sv(pk), "sk": sv("EXPORT#exp_run_" + id), "export_id": sv("exp_run_" + id), "status": sv("running")})
	put(w.src.Table, map[string]dbtypes.AttributeValue{"pk": sv(pk), "sk": sv("EXPORT#exp_done_" + id), "export_id": sv("exp_done_" + id), "status": sv("completed")})
	for _, op := range []*tenant.Operation{
		{ID: "op_audited_" + id, TenantID: id, Kind: tenant.KindDeletion, Status: tenant.OpSucceeded},
		{ID: "op_refused_" + id, TenantID: id, Kind: tenant.KindReactivation, Status: tenant.OpFailed, RequestedBy: "carol@example.com"},
		{ID: "op_purge_" + id, TenantID: id, Kind: tenant.KindPurge, Status: tenant.OpRunning},
	} {
		if _, err := w.st.CreateOperation(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	_, rec, err := w.st.ClaimIdempotency(ctx, "key-"+id, "h", time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rec.TenantRef = id
	if err := w.st.CompleteIdempotency(ctx, rec, 200, nil, `{"tenant_id":"`+id+`"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.ClaimWebhookEvent(ctx, "evt_"+id, "invoice.paid", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := w.st.FinishWebhookEvent(ctx, "evt_"+id, id, "no change"); err != nil {
		t.Fatal(err)
	}
	prefix := purge.ExportPrefix(id)
	for _, key := range []string{"a.ndjson.gz", "a.ndjson.gz", "b.ndjson.gz"} {
		if _, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &w.bucket, Key: aws.String(prefix + key), Body: strings.NewReader("data of " + id)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &w.bucket, Key: aws.String(prefix + "b.ndjson.gz")}); err != nil {
		t.Fatal(err)
	}
	up, err := w.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &w.bucket, Key: aws.String(prefix + "exp_run.ndjson.gz")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: &w.bucket, Key: up.Key, UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part of " + id)}); err != nil {
		t.Fatal(err)
	}
}

// TestSourcesOnAVersionedBucket: on a bucket that was versioned after objects were
// written, the purge's sources count, delete in bounded chunks and verify every
// source of a tenant — object versions, delete markers, open uploads, the items
// naming it outside its partition (found by tenant, audited or not) — and touch
// nothing of its neighbour or its own purge operation.
func TestSourcesOnAVersionedBucket(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	// Some objects exist before versioning is turned on (version "null"), the rest after.
	if _, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &w.bucket, Key: aws.String(purge.ExportPrefix("tenant_a") + "old.ndjson.gz"), Body: strings.NewReader("old")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &w.bucket,
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	w.fill(t, "tenant_a", 60)
	w.fill(t, "tenant_ab", 5)
	neighbour, err := w.src.Count(ctx, "tenant_ab", "op_purge_tenant_ab")
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]int64{
		tenant.SourceTenantData:    60,
		tenant.SourceExports:       5, // old (null), a twice, b and its delete marker
		tenant.SourceExportUploads: 1,
		tenant.SourceControlPlane:  3, // entitlements, two export jobs
		tenant.SourceOperations:    2, // audited and refused; not the purge's own
		tenant.SourceIdempotency:   1,
		tenant.SourceWebhooks:      1,
	}
	got, err := w.src.Count(ctx, "tenant_a", "op_purge_tenant_a")
	if err != nil {
		t.Fatal(err)
	}
	for src, n := range want {
		if got[src] != n {
			t.Errorf("count %s = %d, want %d (all %v)", src, got[src], n, got)
		}
	}
	if ids, err := w.src.RunningExports(ctx, "tenant_a"); err != nil || !slices.Equal(ids, []string{"exp_run_tenant_a"}) {
		t.Errorf("running exports %v %v", ids, err)
	}
	var ne *purge.NotEmptyError
	if _, err := w.src.Verify(ctx, "tenant_a", "op_purge_tenant_a"); !errors.As(err, &ne) {
		t.Fatalf("verify before deleting: %v, want NotEmptyError", err)
	}

	deleted := map[string]int64{}
	chunks := 0
	for more := true; more; chunks++ {
		if chunks > 40 {
			t.Fatalf("the purge never ends: deleted so far %v", deleted)
		}
		p, err := w.src.DeleteChunk(ctx, "tenant_a", "op_purge_tenant_a", 4, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for src, k := range p.Deleted {
			deleted[src] += k
			n += k
		}
		if n > 4 {
			t.Errorf("chunk %d deleted %d items, more than its budget of 4: %v", chunks, n, p.Deleted)
		}
		more = p.More
	}
	for src, n := range want {
		if deleted[src] != n {
			t.Errorf("deleted %s = %d, want %d (all %v)", src, deleted[src], n, deleted)
		}
	}
	at, err := w.src.Verify(ctx, "tenant_a", "op_purge_tenant_a")
	if err != nil {
		t.Fatalf("verify after deleting: %v", err)
	}
	for src := range want {
		if at[src].IsZero() {
			t.Errorf("source %s not verified: %v", src, at)
		}
	}
	// Independent reads: versions and uploads under the prefix, the purge's own record.
	vs, err := w.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &w.bucket, Prefix: aws.String(purge.ExportPrefix("tenant_a"))})
	if err != nil || len(vs.Versions)+len(vs.DeleteMarkers) != 0 {
		t.Errorf("versions left %d, markers %d (%v)", len(vs.Versions), len(vs.DeleteMarkers), err)
	}
	ups, err := w.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &w.bucket, Prefix: aws.String(purge.ExportPrefix("tenant_a"))})
	if err != nil || len(ups.Uploads) != 0 {
		t.Errorf("uploads left %d (%v)", len(ups.Uploads), err)
	}
	if op, err := w.st.GetOperation(ctx, "op_purge_tenant_a"); err != nil || op.Kind != tenant.KindPurge {
		t.Errorf("the purge's own operation: %+v %v", op, err)
	}
	if after, err := w.src.Count(ctx, "tenant_ab", "op_purge_tenant_ab"); err != nil || fmt.Sprint(after) != fmt.Sprint(neighbour) {
		t.Errorf("neighbour %v, was %v (%v)", after, neighbour, err)
	}
}
