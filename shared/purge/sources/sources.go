// Package sources reaches every source of a tenant's data for the purge
// (shared/purge): the application data table and the control-plane table on DynamoDB,
// the exports on S3. Only the wiring of the purge steps that count, delete or verify
// imports it, so the other purge functions do not link S3.
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

// Objects is the part of the S3 client the purge uses on the exports bucket.
type Objects interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
}

// ControlPlane is the part of the DynamoDB client the purge uses on the control-plane
// table: list a tenant's partition, read operation records, delete in batches.
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
// DeleteObjects; unprocessed writes are retried with backoff a bounded number of times.
const (
	batchWriteMax    = 25
	deleteObjectsMax = 1000
	queryPage        = 1000
	unprocessedTries = 8
)

// Count returns how many items of the tenant each source holds now. currentOp is the
// purge operation counting (its own record is not the tenant's data).
func (s *Sources) Count(ctx context.Context, tenantID, currentOp string) (map[string]int64, error) {
	data, err := s.countData(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	objs, err := s.countObjects(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	cp, err := s.controlPlaneKeys(ctx, tenantID, currentOp)
	if err != nil {
		return nil, err
	}
	return map[string]int64{tenant.SourceTenantData: data, tenant.SourceExports: objs, tenant.SourceControlPlane: int64(len(cp))}, nil
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

func (s *Sources) countObjects(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	var token *string
	for {
		out, err := s.Objects.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)), ContinuationToken: token})
		if err != nil {
			return 0, fmt.Errorf("count %s of %s: %w", tenant.SourceExports, tenantID, err)
		}
		n += int64(len(out.Contents))
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return n, nil
		}
		token = out.NextContinuationToken
	}
}

// controlPlaneKeys lists the control-plane items of the tenant a purge deletes:
// everything in its partition except the tenant item (the tombstone) and the audit
// trail (kept, scrubbed), plus the records of the operations its audit trail names,
// except purge operations (the purge's own history, which holds no personal data).
func (s *Sources) controlPlaneKeys(ctx context.Context, tenantID, currentOp string) ([]map[string]dbtypes.AttributeValue, error) {
	pk := store.TenantPartition(tenantID)
	var keys []map[string]dbtypes.AttributeValue
	ops := map[string]bool{}
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
			return nil, fmt.Errorf("list %s of %s: %w", tenant.SourceControlPlane, tenantID, err)
		}
		for _, item := range out.Items {
			sk := str(item["sk"])
			switch {
			case sk == store.TenantSortKey:
			case store.IsAuditSortKey(sk):
				if op := str(item["operation_id"]); op != "" && op != currentOp {
					ops[op] = true
				}
			default:
				keys = append(keys, map[string]dbtypes.AttributeValue{"pk": item["pk"], "sk": item["sk"]})
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	for op := range ops {
		out, err := s.ControlPlane.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: store.OperationKey(op), ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String("pk, sk, tenant_id, kind")})
		if err != nil {
			return nil, fmt.Errorf("read operation %s of %s: %w", op, tenantID, err)
		}
		// Only this tenant's records (an id in the trail always is; the check keeps a
		// corrupted trail from deleting another tenant's history).
		if out.Item == nil || str(out.Item["kind"]) == tenant.KindPurge || str(out.Item["tenant_id"]) != tenantID {
			continue
		}
		keys = append(keys, store.OperationKey(op))
	}
	return keys, nil
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
// early at deadline. It reports what it deleted and whether anything may remain; the
// control-plane items go last, once the large sources are empty. Deleting an item that
// is already gone is a no-op, so a chunk repeated after a lost answer is harmless.
func (s *Sources) DeleteChunk(ctx context.Context, tenantID, currentOp string, maxItems int64, deadline time.Time) (purge.Progress, error) {
	p := purge.Progress{Deleted: map[string]int64{}}
	c := &chunk{deadline: deadline, budget: maxItems}
	done, err := s.deleteData(ctx, tenantID, c, p.Deleted)
	if err != nil || !done {
		p.More = true
		return p, err
	}
	if done, err = s.deleteObjects(ctx, tenantID, c, p.Deleted); err != nil || !done {
		p.More = true
		return p, err
	}
	if c.spent() {
		p.More = true
		return p, nil
	}
	keys, err := s.controlPlaneKeys(ctx, tenantID, currentOp)
	if err != nil {
		p.More = true
		return p, err
	}
	if err := batchDelete(ctx, s.ControlPlane, s.Table, keys); err != nil {
		p.More = true
		return p, fmt.Errorf("delete %s of %s: %w", tenant.SourceControlPlane, tenantID, err)
	}
	p.Deleted[tenant.SourceControlPlane] += int64(len(keys))
	return p, nil
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

// deleteObjects deletes the tenant's exports, 1,000 keys per call; done means the
// prefix was listed empty.
func (s *Sources) deleteObjects(ctx context.Context, tenantID string, c *chunk, deleted map[string]int64) (bool, error) {
	for !c.spent() {
		out, err := s.Objects.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)),
			MaxKeys: aws.Int32(int32(min(c.budget, deleteObjectsMax)))})
		if err != nil {
			return false, fmt.Errorf("list %s of %s: %w", tenant.SourceExports, tenantID, err)
		}
		if len(out.Contents) == 0 {
			return true, nil
		}
		ids := make([]s3types.ObjectIdentifier, len(out.Contents))
		for i, o := range out.Contents {
			ids[i] = s3types.ObjectIdentifier{Key: o.Key}
		}
		res, err := s.Objects.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.Bucket, Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
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
		deleted[tenant.SourceExports] += int64(len(ids))
		c.budget -= int64(len(ids))
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

// Verify reads every source back and returns when each was found empty, or a
// *purge.NotEmptyError naming the first source that still holds items.
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
	objs, err := s.Objects.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: aws.String(purge.ExportPrefix(tenantID)), MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("verify %s of %s: %w", tenant.SourceExports, tenantID, err)
	}
	if len(objs.Contents) > 0 {
		return nil, &purge.NotEmptyError{TenantID: tenantID, Source: tenant.SourceExports, Found: len(objs.Contents)}
	}
	at[tenant.SourceExports] = time.Now()
	keys, err := s.controlPlaneKeys(ctx, tenantID, currentOp)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if len(keys) > 0 {
		return nil, &purge.NotEmptyError{TenantID: tenantID, Source: tenant.SourceControlPlane, Found: len(keys)}
	}
	at[tenant.SourceControlPlane] = time.Now()
	return at, nil
}
