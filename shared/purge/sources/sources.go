// Package sources reaches every source of a tenant's data for the purge
// (shared/purge): the application data table and the control-plane table on DynamoDB
// (the tenant's partition, and the items about it found through the ByTenant index),
// the exports and the open multipart uploads on S3. Only the wiring of the purge steps
// that count, delete or verify imports it, so the other purge functions do not link S3.
package sources

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The purge's ports are declared here, where they are used: the few calls it makes on
// each source, which is also all that template.yaml grants its functions.

// DataTable is the part of the DynamoDB client the purge uses on the application data
// table (partition key tenant_id).
type DataTable interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Objects is the part of the S3 client the purge uses on the exports bucket. It lists
// object versions rather than objects: on an unversioned bucket that is every object
// (version "null"), and on a bucket that was ever versioned it also finds the older
// versions and delete markers, which hold (or hide) the same data.
type Objects interface {
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, optFns ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// ControlPlane is the part of the DynamoDB client the purge uses on the control-plane
// table: list a tenant's partition and its ByTenant items, read operation and item
// records, delete in batches.
type ControlPlane interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var (
	_ DataTable     = (*dynamodb.Client)(nil)
	_ ControlPlane  = (*dynamodb.Client)(nil)
	_ Objects       = (*s3.Client)(nil)
	_ purge.Sources = (*Sources)(nil)
)

// Sources reaches every source of a tenant's data. A field may be nil in a function
// that does not use it (its IAM role grants nothing there either).
type Sources struct {
	Data         DataTable
	DataTable    string
	Objects      Objects
	Bucket       string
	ControlPlane ControlPlane
	Table        string
}

// Bounds of the calls: DynamoDB takes 25 writes per BatchWriteItem, S3 1,000 keys per
// DeleteObjects and lists at most 1,000 per page; unprocessed writes are retried with
// backoff a bounded number of times.
const (
	batchWriteMax    = 25
	deleteObjectsMax = 1000
	queryPage        = 1000
	unprocessedTries = 8
)

// The control-plane sources, in the order a chunk deletes them.
var controlSources = []string{tenant.SourceControlPlane, tenant.SourceOperations, tenant.SourceIdempotency, tenant.SourceWebhooks}

// Count returns how many items of the tenant each AWS source holds now. currentOp is
// the purge operation counting (its own record is not the tenant's data).
func (s *Sources) Count(ctx context.Context, tenantID, currentOp string) (map[string]int64, error) {
	counts := map[string]int64{}
	data, err := s.countData(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	counts[tenant.SourceTenantData] = data
	if counts[tenant.SourceExports], err = s.countVersions(ctx, tenantID); err != nil {
		return nil, err
	}
	if counts[tenant.SourceExportUploads], err = s.countUploads(ctx, tenantID); err != nil {
		return nil, err
	}
	keys, _, err := s.controlPlaneKeys(ctx, tenantID, -1)
	if err != nil {
		return nil, err
	}
	for _, src := range controlSources {
		counts[src] = int64(len(keys[src]))
	}
	return counts, nil
}

func (s *Sources) countData(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := s.Data.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.DataTable, ConsistentRead: aws.Bool(true), Select: dbtypes.SelectCount,
			KeyConditionExpression:    aws.String("tenant_id = :t"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": &dbtypes.AttributeValueMemberS{Value: tenantID}},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return 0, fmt.Errorf("count %s of %s: %w", tenant.SourceTenantData, tenantID, err)
		}
		n += int64(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		start = out.LastEvaluatedKey
	}
}

// countVersions counts every object version and delete marker under the tenant's
// prefix.
func (s *Sources) countVersions(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	var key, version *string
	for {
		out, err := s.Objects.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)),
			KeyMarker: key, VersionIdMarker: version})
		if err != nil {
			return 0, fmt.Errorf("count %s of %s: %w", tenant.SourceExports, tenantID, err)
		}
		n += int64(len(out.Versions) + len(out.DeleteMarkers))
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		key, version = out.NextKeyMarker, out.NextVersionIdMarker
	}
}

// countUploads counts the multipart uploads open under the tenant's prefix.
func (s *Sources) countUploads(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	var key, upload *string
	for {
		out, err := s.Objects.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)),
			KeyMarker: key, UploadIdMarker: upload})
		if err != nil {
			return 0, fmt.Errorf("count %s of %s: %w", tenant.SourceExportUploads, tenantID, err)
		}
		n += int64(len(out.Uploads))
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		key, upload = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// exportJobPrefix and the open statuses are shared/export's job layout: a job is the
// item TENANT#<id> / EXPORT#<export_id> with a status, and its execution is named by
// its export id.
const exportJobPrefix = "EXPORT#"

// RunningExports returns the ids of the tenant's export jobs that are queued or
// running: their executions are what the purge stops before it deletes anything.
func (s *Sources) RunningExports(ctx context.Context, tenantID string) ([]string, error) {
	var ids []string
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := s.ControlPlane.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.Table, ConsistentRead: aws.Bool(true),
			KeyConditionExpression:   aws.String("pk = :pk AND begins_with(sk, :export)"),
			ProjectionExpression:     aws.String("sk, export_id, #s"),
			ExpressionAttributeNames: map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
				":pk": &dbtypes.AttributeValueMemberS{Value: store.TenantPartition(tenantID)}, ":export": &dbtypes.AttributeValueMemberS{Value: exportJobPrefix},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("list export jobs of %s: %w", tenantID, err)
		}
		for _, item := range out.Items {
			if st := str(item["status"]); (st == "queued" || st == "running") && str(item["export_id"]) != "" {
				ids = append(ids, str(item["export_id"]))
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return ids, nil
		}
		start = out.LastEvaluatedKey
	}
}

// controlPlaneKeys lists, by source, the keys of the control-plane items of the
// tenant a purge deletes, at most limit of them in all (limit < 0: every one; more
// says some were left out):
//   - control_plane: everything in its partition except the tenant item (the
//     tombstone) and the audit trail (kept, scrubbed);
//   - operations, idempotency, webhooks: the items of the ByTenant index that name
//     it, except purge operations (the purge's own history, which holds no personal
//     data). Operation records written before tenant_ref existed are found through
//     the audit lines that name them, as before.
func (s *Sources) controlPlaneKeys(ctx context.Context, tenantID string, limit int) (keys map[string][]map[string]dbtypes.AttributeValue, more bool, err error) {
	keys = map[string][]map[string]dbtypes.AttributeValue{}
	n := 0
	add := func(src string, key map[string]dbtypes.AttributeValue) bool {
		if limit >= 0 && n >= limit {
			more = true
			return false
		}
		keys[src] = append(keys[src], key)
		n++
		return true
	}
	pk := store.TenantPartition(tenantID)
	audited := map[string]bool{}
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := s.ControlPlane.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.Table, ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ProjectionExpression:      aws.String("pk, sk, operation_id"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":pk": &dbtypes.AttributeValueMemberS{Value: pk}},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, false, fmt.Errorf("list %s of %s: %w", tenant.SourceControlPlane, tenantID, err)
		}
		for _, item := range out.Items {
			sk := str(item["sk"])
			switch {
			case sk == store.TenantSortKey:
			case store.IsAuditSortKey(sk):
				if op := str(item["operation_id"]); op != "" {
					audited[op] = true
				}
			default:
				if !add(tenant.SourceControlPlane, keyOf(item)) {
					return keys, more, nil
				}
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	seen := map[string]bool{}
	start = nil
	for {
		out, err := s.ControlPlane.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.Table, IndexName: aws.String(store.ByTenantIndex),
			KeyConditionExpression:    aws.String("#t = :t"),
			ProjectionExpression:      aws.String("pk, sk, kind"),
			ExpressionAttributeNames:  map[string]string{"#t": store.TenantRefAttribute},
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": &dbtypes.AttributeValueMemberS{Value: tenantID}},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, false, fmt.Errorf("list the items naming %s (%s): %w", tenantID, store.ByTenantIndex, err)
		}
		for _, item := range out.Items {
			src := store.RefSource(str(item["pk"]))
			if src == "" || src == tenant.SourceOperations && str(item["kind"]) == tenant.KindPurge {
				continue
			}
			seen[str(item["pk"])] = true
			if !add(src, keyOf(item)) {
				return keys, more, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	for op := range audited {
		key := store.OperationKey(op)
		if seen[str(key["pk"])] {
			continue
		}
		out, err := s.ControlPlane.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key, ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String("pk, sk, tenant_id, kind")})
		if err != nil {
			return nil, false, fmt.Errorf("read operation %s of %s: %w", op, tenantID, err)
		}
		// Only this tenant's records (an id in the trail always is; the check keeps a
		// corrupted trail from deleting another tenant's history).
		if out.Item == nil || str(out.Item["kind"]) == tenant.KindPurge || str(out.Item["tenant_id"]) != tenantID {
			continue
		}
		if !add(tenant.SourceOperations, key) {
			return keys, more, nil
		}
	}
	return keys, more, nil
}

func keyOf(item map[string]dbtypes.AttributeValue) map[string]dbtypes.AttributeValue {
	return map[string]dbtypes.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
}

func str(v dbtypes.AttributeValue) string {
	if s, ok := v.(*dbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// chunk bounds one delete invocation.
type chunk struct {
	deadline time.Time
	budget   int64 // items still allowed in this invocation
}

func (c *chunk) spent() bool { return c.budget <= 0 || time.Now().After(c.deadline) }

// DeleteChunk deletes up to maxItems items of the tenant, source by source, stopping
// early at deadline. It reports what it deleted and whether anything may remain.
// Open multipart uploads go first (a running export's parts; the purge's Start step
// has stopped its execution), then the large sources, then the control-plane items,
// once everything else is empty. Deleting an item that is already gone is a no-op,
// so a chunk repeated after a lost answer is harmless.
func (s *Sources) DeleteChunk(ctx context.Context, tenantID, currentOp string, maxItems int64, deadline time.Time) (purge.Progress, error) {
	p := purge.Progress{Deleted: map[string]int64{}}
	c := &chunk{deadline: deadline, budget: maxItems}
	for _, step := range []func(context.Context, string, *chunk, map[string]int64) (bool, error){s.abortUploads, s.deleteData, s.deleteVersions} {
		done, err := step(ctx, tenantID, c, p.Deleted)
		if err != nil || !done {
			p.More = true
			return p, err
		}
	}
	if c.spent() {
		p.More = true
		return p, nil
	}
	keys, more, err := s.controlPlaneKeys(ctx, tenantID, int(c.budget))
	if err != nil {
		p.More = true
		return p, err
	}
	for _, src := range controlSources {
		if err := batchDelete(ctx, s.ControlPlane, s.Table, keys[src]); err != nil {
			p.More = true
			return p, fmt.Errorf("delete %s of %s: %w", src, tenantID, err)
		}
		p.Deleted[src] += int64(len(keys[src]))
	}
	p.More = more
	return p, nil
}

// abortUploads aborts the multipart uploads open under the tenant's prefix, page by
// page; done means none was left.
func (s *Sources) abortUploads(ctx context.Context, tenantID string, c *chunk, deleted map[string]int64) (bool, error) {
	for !c.spent() {
		out, err := s.Objects.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)),
			MaxUploads: aws.Int32(int32(min(c.budget, deleteObjectsMax)))})
		if err != nil {
			return false, fmt.Errorf("list %s of %s: %w", tenant.SourceExportUploads, tenantID, err)
		}
		if len(out.Uploads) == 0 {
			return true, nil
		}
		for _, u := range out.Uploads {
			_, err := s.Objects.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.Bucket, Key: u.Key, UploadId: u.UploadId})
			var gone *s3types.NoSuchUpload
			if err != nil && !errors.As(err, &gone) {
				return false, fmt.Errorf("abort %s %s of %s: %w", tenant.SourceExportUploads, aws.ToString(u.Key), tenantID, err)
			}
			deleted[tenant.SourceExportUploads]++
			c.budget--
		}
	}
	return false, nil
}

// deleteData deletes the tenant's data items page by page; done means the partition
// was read empty.
func (s *Sources) deleteData(ctx context.Context, tenantID string, c *chunk, deleted map[string]int64) (bool, error) {
	for !c.spent() {
		out, err := s.Data.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.DataTable, ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("tenant_id = :t"),
			ProjectionExpression:      aws.String("tenant_id, item_id"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": &dbtypes.AttributeValueMemberS{Value: tenantID}},
			Limit:                     aws.Int32(int32(min(c.budget, queryPage))),
		})
		if err != nil {
			return false, fmt.Errorf("list %s of %s: %w", tenant.SourceTenantData, tenantID, err)
		}
		if len(out.Items) == 0 {
			return true, nil
		}
		if err := batchDelete(ctx, s.Data, s.DataTable, out.Items); err != nil {
			return false, fmt.Errorf("delete %s of %s: %w", tenant.SourceTenantData, tenantID, err)
		}
		deleted[tenant.SourceTenantData] += int64(len(out.Items))
		c.budget -= int64(len(out.Items))
	}
	return false, nil
}

// deleteVersions deletes every version and delete marker under the tenant's prefix,
// 1,000 per call, each by its version id; done means the prefix was listed empty.
// Deleting by version id removes the data whatever the bucket's versioning: an object
// of an unversioned bucket is version "null", and deleting a key without a version id
// on a versioned bucket would only add a delete marker.
func (s *Sources) deleteVersions(ctx context.Context, tenantID string, c *chunk, deleted map[string]int64) (bool, error) {
	for !c.spent() {
		out, err := s.Objects.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)),
			MaxKeys: aws.Int32(int32(min(c.budget, deleteObjectsMax)))})
		if err != nil {
			return false, fmt.Errorf("list %s of %s: %w", tenant.SourceExports, tenantID, err)
		}
		var ids []s3types.ObjectIdentifier
		add := func(key, version *string) {
			ids = append(ids, s3types.ObjectIdentifier{Key: key, VersionId: version})
		}
		for _, v := range out.Versions {
			add(v.Key, v.VersionId)
		}
		for _, m := range out.DeleteMarkers {
			add(m.Key, m.VersionId)
		}
		if len(ids) == 0 {
			return true, nil
		}
		for start := 0; start < len(ids); start += deleteObjectsMax {
			batch := ids[start:min(start+deleteObjectsMax, len(ids))]
			res, err := s.Objects.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.Bucket, Delete: &s3types.Delete{Objects: batch, Quiet: aws.Bool(true)}})
			if err != nil {
				return false, fmt.Errorf("delete %s of %s: %w", tenant.SourceExports, tenantID, err)
			}
			if len(res.Errors) > 0 {
				e := res.Errors[0]
				err := fmt.Errorf("delete %s of %s: %d object(s) not deleted, first %s: %s %s", tenant.SourceExports, tenantID,
					len(res.Errors), aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
				switch aws.ToString(e.Code) {
				case "SlowDown", "InternalError", "ServiceUnavailable":
					return false, &flow.TransientError{Step: "delete", Err: err}
				}
				return false, err
			}
			deleted[tenant.SourceExports] += int64(len(batch))
			c.budget -= int64(len(batch))
		}
	}
	return false, nil
}

// errUnprocessed is what is left when DynamoDB kept leaving writes unprocessed
// (throttling): a retry of the step continues.
var errUnprocessed = errors.New("writes still unprocessed after retries")

// batchWriter is what batchDelete needs of either table's client.
type batchWriter interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// batchDelete deletes the items with the given primary keys, 25 per BatchWriteItem,
// retrying what DynamoDB leaves unprocessed (throttling) with backoff. A key whose item
// is already gone is a no-op, so repeating a delete is harmless.
func batchDelete(ctx context.Context, db batchWriter, table string, keys []map[string]dbtypes.AttributeValue) error {
	for start := 0; start < len(keys); start += batchWriteMax {
		reqs := make([]dbtypes.WriteRequest, 0, batchWriteMax)
		for _, k := range keys[start:min(start+batchWriteMax, len(keys))] {
			reqs = append(reqs, dbtypes.WriteRequest{DeleteRequest: &dbtypes.DeleteRequest{Key: k}})
		}
		pending := map[string][]dbtypes.WriteRequest{table: reqs}
		for try := 0; len(pending) > 0; try++ {
			if try == unprocessedTries {
				return &flow.TransientError{Step: "delete", Err: fmt.Errorf("%s: %d %w", table, len(pending[table]), errUnprocessed)}
			}
			if try > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(25<<try) * time.Millisecond):
				}
			}
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return err
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

// Verify reads every AWS source back, each with its own read, and returns when each
// was found empty, or a *purge.NotEmptyError naming the first source that still holds
// items. An item the eventually consistent ByTenant index still lists is checked with
// a consistent read of the table: one already deleted there is not data left, only the
// index catching up.
func (s *Sources) Verify(ctx context.Context, tenantID, currentOp string) (map[string]time.Time, error) {
	at := map[string]time.Time{}
	data, err := s.Data.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.DataTable, ConsistentRead: aws.Bool(true), Limit: aws.Int32(1),
		KeyConditionExpression:    aws.String("tenant_id = :t"),
		ProjectionExpression:      aws.String("tenant_id, item_id"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": &dbtypes.AttributeValueMemberS{Value: tenantID}},
	})
	if err != nil {
		return nil, fmt.Errorf("verify %s of %s: %w", tenant.SourceTenantData, tenantID, err)
	}
	if len(data.Items) > 0 {
		return nil, &purge.NotEmptyError{TenantID: tenantID, Source: tenant.SourceTenantData, Found: len(data.Items)}
	}
	at[tenant.SourceTenantData] = time.Now()
	versions, err := s.Objects.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)), MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("verify %s of %s: %w", tenant.SourceExports, tenantID, err)
	}
	if n := len(versions.Versions) + len(versions.DeleteMarkers); n > 0 {
		return nil, &purge.NotEmptyError{TenantID: tenantID, Source: tenant.SourceExports, Found: n}
	}
	at[tenant.SourceExports] = time.Now()
	uploads, err := s.Objects.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)), MaxUploads: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("verify %s of %s: %w", tenant.SourceExportUploads, tenantID, err)
	}
	if len(uploads.Uploads) > 0 {
		return nil, &purge.NotEmptyError{TenantID: tenantID, Source: tenant.SourceExportUploads, Found: len(uploads.Uploads)}
	}
	at[tenant.SourceExportUploads] = time.Now()
	keys, _, err := s.controlPlaneKeys(ctx, tenantID, -1)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, src := range controlSources {
		left := 0
		for _, k := range keys[src] {
			if src == tenant.SourceControlPlane { // read from the table itself, consistently
				left++
				continue
			}
			out, err := s.ControlPlane.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: k, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk")})
			if err != nil {
				return nil, fmt.Errorf("verify %s of %s: %w", src, tenantID, err)
			}
			if out.Item != nil {
				left++
			}
		}
		if left > 0 {
			return nil, &purge.NotEmptyError{TenantID: tenantID, Source: src, Found: left}
		}
		at[src] = time.Now()
	}
	return at, nil
}
