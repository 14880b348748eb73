package export

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The export's ports are declared here, where they are used: the few calls it makes,
// which is also all template.yaml grants its functions.

// ControlPlane is the part of the DynamoDB client the export uses on the tenants
// table: its job records and the tenant's partition and operation records.
type ControlPlane interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// DataTable is the part of the DynamoDB client the export reads the application data
// table (partition key tenant_id) with.
type DataTable interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Objects is the part of the S3 client the export uses on the exports bucket.
type Objects interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	ListParts(ctx context.Context, in *s3.ListPartsInput, optFns ...func(*s3.Options)) (*s3.ListPartsOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	Uploads
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// Uploads is the part of the S3 client that aborts an export's multipart upload: the
// release step, and the Service when it ends a job whose execution died.
type Uploads interface {
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var (
	_ ControlPlane = (*dynamodb.Client)(nil)
	_ DataTable    = (*dynamodb.Client)(nil)
	_ Objects      = (*s3.Client)(nil)
)

// Jobs reads and writes job records.
type Jobs struct {
	DB    ControlPlane
	Table string
}

func jobKey(tenantID, exportID string) map[string]dbtypes.AttributeValue {
	return map[string]dbtypes.AttributeValue{
		"pk": &dbtypes.AttributeValueMemberS{Value: store.TenantPartition(tenantID)},
		"sk": &dbtypes.AttributeValueMemberS{Value: skPrefix + exportID},
	}
}

// Get reads a job (strongly consistent: steps decide by it).
func (j *Jobs) Get(ctx context.Context, tenantID, exportID string) (*Job, error) {
	out, err := j.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &j.Table, Key: jobKey(tenantID, exportID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read export %s: %w", exportID, err)
	}
	if out.Item == nil {
		return nil, &tenant.NotFoundError{Kind: "export", ID: exportID}
	}
	var job Job
	if err := attributevalue.UnmarshalMap(out.Item, &job); err != nil {
		return nil, fmt.Errorf("decode export %s: %w", exportID, err)
	}
	return &job, nil
}

// errLost is a conditional write that found the record changed by someone else.
var errLost = errors.New("export record changed concurrently")

// Put writes job when the stored record still has wantParts parts and status
// wantStatus (wantParts < 0: the record must not exist). Losing the condition is
// errLost: the caller re-reads and decides again.
//
// The job's Open index keys follow its status: set while it is queued or running,
// removed by the write that ends it.
func (j *Jobs) Put(ctx context.Context, job *Job, wantParts int, wantStatus Status) error {
	job.PK, job.SK = store.TenantPartition(job.TenantID), skPrefix+job.ID
	job.OpenKind, job.OpenAt = "", ""
	if job.Open() {
		job.OpenKind, job.OpenAt = store.OpenExport, store.Timestamp(job.CreatedAt)
	}
	item, err := attributevalue.MarshalMap(job)
	if err != nil {
		return fmt.Errorf("encode export %s: %w", job.ID, err)
	}
	in := &dynamodb.PutItemInput{TableName: &j.Table, Item: item}
	if wantParts < 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("part_count = :n AND #s = :s")
		in.ExpressionAttributeNames = map[string]string{"#s": "status"}
		in.ExpressionAttributeValues = map[string]dbtypes.AttributeValue{
			":n": &dbtypes.AttributeValueMemberN{Value: fmt.Sprint(wantParts)},
			":s": &dbtypes.AttributeValueMemberS{Value: string(wantStatus)},
		}
	}
	_, err = j.DB.PutItem(ctx, in)
	var ccf *dbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return errLost
	}
	if err != nil {
		return fmt.Errorf("write export %s: %w", job.ID, err)
	}
	return nil
}

// activeSK is the sort key of the tenant's export marker: the id of its latest export,
// written (conditionally) before that export's job. It makes "one queued or running
// export per tenant" hold under concurrent requests: two requests that both saw no
// running export cannot both move the marker from what they saw. A marker whose job
// ended, or was never written (the request died between the two writes), is simply
// moved on by the next request.
const activeSK = "EXPORT_ACTIVE"

// Active returns the export id the tenant's marker names ("" without a marker) and
// when the marker was moved there.
func (j *Jobs) Active(ctx context.Context, tenantID string) (string, time.Time, error) {
	out, err := j.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &j.Table, ConsistentRead: aws.Bool(true), Key: activeKey(tenantID)})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read the export marker of %s: %w", tenantID, err)
	}
	if out.Item == nil {
		return "", time.Time{}, nil
	}
	at, _ := time.Parse(time.RFC3339Nano, str(out.Item["at"]))
	return str(out.Item["export_id"]), at, nil
}

// MoveActive points the tenant's marker at exportID if it still names seen ("": no
// marker). Losing the condition is errLost: another request moved it first.
func (j *Jobs) MoveActive(ctx context.Context, tenantID, seen, exportID string, at time.Time) error {
	item := activeKey(tenantID)
	item["export_id"] = &dbtypes.AttributeValueMemberS{Value: exportID}
	item["at"] = &dbtypes.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)}
	in := &dynamodb.PutItemInput{TableName: &j.Table, Item: item}
	if seen == "" {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("export_id = :seen")
		in.ExpressionAttributeValues = map[string]dbtypes.AttributeValue{":seen": &dbtypes.AttributeValueMemberS{Value: seen}}
	}
	_, err := j.DB.PutItem(ctx, in)
	var ccf *dbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return errLost
	}
	if err != nil {
		return fmt.Errorf("move the export marker of %s: %w", tenantID, err)
	}
	return nil
}

func activeKey(tenantID string) map[string]dbtypes.AttributeValue {
	return map[string]dbtypes.AttributeValue{
		"pk": &dbtypes.AttributeValueMemberS{Value: store.TenantPartition(tenantID)},
		"sk": &dbtypes.AttributeValueMemberS{Value: activeSK},
	}
}

// List returns the tenant's jobs, newest first.
func (j *Jobs) List(ctx context.Context, tenantID string) ([]*Job, error) {
	var jobs []*Job
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := j.DB.Query(ctx, &dynamodb.QueryInput{
			TableName: &j.Table, ConsistentRead: aws.Bool(true),
			KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :p)"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
				":pk": &dbtypes.AttributeValueMemberS{Value: store.TenantPartition(tenantID)},
				":p":  &dbtypes.AttributeValueMemberS{Value: skPrefix},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("list exports of %s: %w", tenantID, err)
		}
		for _, item := range out.Items {
			var job Job
			if err := attributevalue.UnmarshalMap(item, &job); err != nil {
				return nil, fmt.Errorf("decode export of %s: %w", tenantID, err)
			}
			jobs = append(jobs, &job)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].CreatedAt.After(jobs[b].CreatedAt) })
	return jobs, nil
}

// OpenBefore returns the open (queued or running) jobs of every tenant that were
// opened before t, read through the sparse Open index: what is open, never a Scan.
// The index is eventually consistent; callers re-read a job (Get) before acting on it.
func (j *Jobs) OpenBefore(ctx context.Context, t time.Time) ([]*Job, error) {
	var jobs []*Job
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := j.DB.Query(ctx, &dynamodb.QueryInput{
			TableName: &j.Table, IndexName: aws.String(store.OpenIndex), ExclusiveStartKey: start,
			KeyConditionExpression: aws.String("open_kind = :k AND open_at < :t"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
				":k": &dbtypes.AttributeValueMemberS{Value: store.OpenExport},
				":t": &dbtypes.AttributeValueMemberS{Value: store.Timestamp(t)},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("list open exports: %w", err)
		}
		for _, item := range out.Items {
			var job Job
			if err := attributevalue.UnmarshalMap(item, &job); err != nil {
				return nil, fmt.Errorf("decode open export %s: %w", str(item["export_id"]), err)
			}
			jobs = append(jobs, &job)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return jobs, nil
		}
		start = out.LastEvaluatedKey
	}
}

// transient marks a lost conditional write as worth a retry of the step.
func transient(step string, err error) error {
	if errors.Is(err, errLost) {
		return &flow.TransientError{Step: step, Err: err}
	}
	return err
}
