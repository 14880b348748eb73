package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenantview"
)

// Reader reaches every source of a tenant's data.
type Reader struct {
	ControlPlane ControlPlane
	Table        string
	Data         DataTable
	DataTable    string
	Objects      Objects
	Bucket       string
	// Page caps the items of one data-table Query page and the keys of one S3 listing
	// page. Zero means DynamoDB's own 1 MB pages and S3's 1,000 keys: memory stays
	// bounded either way, and bigger pages mean fewer round trips.
	Page int32
}

// Record is one line of the export.
type Record struct {
	Source string `json:"source"`
	Type   string `json:"type"`
	Data   any    `json:"data"`
}

// part accumulates one multipart part: one gzip member of NDJSON lines.
type part struct {
	buf    bytes.Buffer
	gz     *gzip.Writer
	enc    *json.Encoder
	counts map[string]int64
	items  int64
}

func newPart(size int) *part {
	p := &part{counts: map[string]int64{}}
	p.buf.Grow(size + size/8)
	// Default compression: most of a chunk's time is the Query, not the compression,
	// and a smaller file is what the customer downloads. The header has no name and
	// a zero time, so the same lines always give the same bytes.
	p.gz, _ = gzip.NewWriterLevel(&p.buf, gzip.DefaultCompression)
	p.enc = json.NewEncoder(p.gz)
	p.enc.SetEscapeHTML(false)
	return p
}

func (p *part) write(source, typ string, data any) error {
	if err := p.enc.Encode(Record{Source: source, Type: typ, Data: data}); err != nil {
		return fmt.Errorf("encode %s record: %w", source, err)
	}
	p.counts[source]++
	if source != "manifest" {
		p.items++
	}
	return nil
}

// full reports whether the part has reached size compressed bytes (what gzip has
// flushed so far; its window adds at most a few hundred KiB at Close).
func (p *part) full(size int) bool { return p.buf.Len() >= size }

// fill writes lines from cur until the part holds size compressed bytes or every
// source is exhausted, and returns the cursor after the last line written.
func (r *Reader) fill(ctx context.Context, tenantID string, cur Cursor, p *part, size int) (Cursor, error) {
	for cur.Phase != PhaseDone && !p.full(size) {
		var err error
		switch cur.Phase {
		case "", PhaseControl:
			if err = r.control(ctx, tenantID, p); err == nil {
				cur = Cursor{Phase: PhaseData}
			}
		case PhaseData:
			cur, err = r.data(ctx, tenantID, cur, p, size)
		case PhaseObjects:
			cur, err = r.objects(ctx, tenantID, cur, p, size)
		default:
			return cur, fmt.Errorf("unknown export cursor phase %q", cur.Phase)
		}
		if err != nil {
			return cur, err
		}
	}
	return cur, nil
}

// control writes the tenant's control-plane records: the tenant item and its
// entitlements as stored (the tenant's own data, plan, usage and billing references),
// then its audit trail and its operations in the views the tenant's own token gets
// from the API (shared/tenantview): no operator identity, no internal reasons, causes
// or marks. Export jobs and the export marker are records about exports, not the
// tenant's data, and are left out.
//
// Operations are found by tenant (the ByTenant index), so one no audit line names
// (a request refused before any transition) is exported too; those the audit names
// are added when the index does not list them (records written before operations
// carried the index key).
func (r *Reader) control(ctx context.Context, tenantID string, p *part) error {
	named := []string{}
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := r.ControlPlane.Query(ctx, &dynamodb.QueryInput{
			TableName: &r.Table, ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":pk": &dbtypes.AttributeValueMemberS{Value: store.TenantPartition(tenantID)}},
		})
		if err != nil {
			return fmt.Errorf("read control plane of %s: %w", tenantID, err)
		}
		for _, item := range out.Items {
			sk := str(item["sk"])
			var err error
			switch {
			case sk == store.TenantSortKey:
				err = p.write(SourceTenant, "tenant", plain(item))
			case store.IsAuditSortKey(sk):
				var e store.AuditEntry
				if e, err = store.DecodeAuditEntry(item); err == nil {
					err = p.write(SourceAudit, "audit", tenantview.Audit(e))
				}
				if op := str(item["operation_id"]); op != "" {
					named = append(named, op)
				}
			case strings.HasPrefix(sk, skPrefix), sk == activeSK:
			case strings.HasPrefix(sk, store.ProvisioningSortKeyPrefix):
				// The provisioning hook's requests hold task tokens; the operations
				// they belong to are exported.
			default:
				err = p.write(SourceEntitlements, "entitlements", plain(item))
			}
			if err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	ids, err := r.operationsOf(ctx, tenantID)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, id := range append(ids, named...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		out, err := r.ControlPlane.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.Table, Key: store.OperationKey(id), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("read operation %s of %s: %w", id, tenantID, err)
		}
		// Only this tenant's records (the check keeps a corrupted trail from
		// exporting another tenant's history).
		if out.Item == nil || str(out.Item["tenant_id"]) != tenantID {
			continue
		}
		op, err := store.DecodeOperation(out.Item)
		if err != nil {
			return fmt.Errorf("operation %s of %s: %w", id, tenantID, err)
		}
		if err := p.write(SourceOperations, "operation", tenantview.OperationOf(op)); err != nil {
			return err
		}
	}
	return nil
}

// operationsOf lists the ids of the tenant's operations through the ByTenant index
// (its operation items: partition keys OP#...), oldest first (operation ids start with
// their creation time). The index is eventually consistent, so control reads each
// record itself.
func (r *Reader) operationsOf(ctx context.Context, tenantID string) ([]string, error) {
	opPrefix := str(store.OperationKey("")["pk"])
	var ids []string
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := r.ControlPlane.Query(ctx, &dynamodb.QueryInput{
			TableName: &r.Table, IndexName: aws.String(store.ByTenantIndex), ExclusiveStartKey: start,
			KeyConditionExpression:   aws.String("#t = :t AND begins_with(pk, :op)"),
			ExpressionAttributeNames: map[string]string{"#t": store.TenantRefAttribute},
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
				":t": &dbtypes.AttributeValueMemberS{Value: tenantID}, ":op": &dbtypes.AttributeValueMemberS{Value: opPrefix},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("list operations of %s: %w", tenantID, err)
		}
		for _, item := range out.Items {
			ids = append(ids, str(item["operation_id"]))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return ids, nil
		}
		start = out.LastEvaluatedKey
	}
}

// data writes the tenant's application items after cur.After, stopping after the
// item that fills the part (the rest of that page is read again by the next chunk).
func (r *Reader) data(ctx context.Context, tenantID string, cur Cursor, p *part, size int) (Cursor, error) {
	for !p.full(size) {
		in := &dynamodb.QueryInput{
			TableName: &r.DataTable, ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("tenant_id = :t"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": &dbtypes.AttributeValueMemberS{Value: tenantID}},
		}
		if r.Page > 0 {
			in.Limit = aws.Int32(r.Page)
		}
		if cur.After != "" {
			in.ExclusiveStartKey = map[string]dbtypes.AttributeValue{
				"tenant_id": &dbtypes.AttributeValueMemberS{Value: tenantID},
				"item_id":   &dbtypes.AttributeValueMemberS{Value: cur.After},
			}
		}
		out, err := r.Data.Query(ctx, in)
		if err != nil {
			return cur, fmt.Errorf("read %s of %s: %w", SourceTenantData, tenantID, err)
		}
		for _, item := range out.Items {
			if err := p.write(SourceTenantData, "item", plain(item)); err != nil {
				return cur, err
			}
			cur.After = str(item["item_id"])
			if p.full(size) {
				return cur, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return Cursor{Phase: PhaseObjects}, nil
		}
	}
	return cur, nil
}

// objects writes the listing (key, size, last modified) of the tenant's objects in
// the exports bucket: earlier exports, which are data about the tenant too.
func (r *Reader) objects(ctx context.Context, tenantID string, cur Cursor, p *part, size int) (Cursor, error) {
	prefix := "exports/" + tenantID + "/"
	for !p.full(size) {
		in := &s3.ListObjectsV2Input{Bucket: &r.Bucket, Prefix: &prefix}
		if r.Page > 0 {
			in.MaxKeys = aws.Int32(r.Page)
		}
		if cur.After != "" {
			in.StartAfter = aws.String(cur.After)
		}
		out, err := r.Objects.ListObjectsV2(ctx, in)
		if err != nil {
			return cur, fmt.Errorf("list %s of %s: %w", SourceExports, tenantID, err)
		}
		for _, o := range out.Contents {
			rec := map[string]any{"key": aws.ToString(o.Key), "size": aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				rec["last_modified"] = o.LastModified.UTC()
			}
			if err := p.write(SourceExports, "object", rec); err != nil {
				return cur, err
			}
			cur.After = aws.ToString(o.Key)
			if p.full(size) {
				return cur, nil
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return Cursor{Phase: PhaseDone}, nil
		}
	}
	return cur, nil
}

// EstimateBudget bounds the counting one step does for the progress estimate. A
// COUNT Query reads (and bills) what a full read does, so a tenant of millions of
// items cannot be counted inside one invocation: Start counts for this long, and
// each chunk goes on from where the last count stopped until the estimate is whole.
const EstimateBudget = 5 * time.Second

// Estimate is a count of the items an export writes, possibly still partial.
type Estimate struct {
	Items int64
	// After is the last data item_id counted; Done reports the count is complete.
	After string
	Done  bool
}

// StartEstimate counts the control-plane records (one partition, small) and then the
// data items until budget runs out.
func (r *Reader) StartEstimate(ctx context.Context, tenantID string, budget time.Duration) (Estimate, error) {
	var est Estimate
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := r.ControlPlane.Query(ctx, &dynamodb.QueryInput{
			TableName: &r.Table, Select: dbtypes.SelectCount, ExclusiveStartKey: start,
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":pk": &dbtypes.AttributeValueMemberS{Value: store.TenantPartition(tenantID)}},
		})
		if err != nil {
			return est, fmt.Errorf("count control plane of %s: %w", tenantID, err)
		}
		est.Items += int64(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	return r.ContinueEstimate(ctx, tenantID, est, budget)
}

// ContinueEstimate counts data items after est.After until the count is complete or
// budget has run out (at least one page either way, so every call makes progress).
func (r *Reader) ContinueEstimate(ctx context.Context, tenantID string, est Estimate, budget time.Duration) (Estimate, error) {
	deadline := time.Now().Add(budget)
	for !est.Done {
		in := &dynamodb.QueryInput{
			TableName: &r.DataTable, Select: dbtypes.SelectCount,
			KeyConditionExpression:    aws.String("tenant_id = :t"),
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":t": &dbtypes.AttributeValueMemberS{Value: tenantID}},
		}
		if est.After != "" {
			in.ExclusiveStartKey = map[string]dbtypes.AttributeValue{
				"tenant_id": &dbtypes.AttributeValueMemberS{Value: tenantID},
				"item_id":   &dbtypes.AttributeValueMemberS{Value: est.After},
			}
		}
		out, err := r.Data.Query(ctx, in)
		if err != nil {
			return est, fmt.Errorf("count %s of %s: %w", SourceTenantData, tenantID, err)
		}
		est.Items += int64(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			est.Done = true
			break
		}
		est.After = str(out.LastEvaluatedKey["item_id"])
		if time.Now().After(deadline) {
			break
		}
	}
	return est, nil
}

// hashing restores the running SHA-256 of the file from its marshalled state.
func hashing(state []byte) (interface {
	encoding.BinaryMarshaler
	Write([]byte) (int, error)
	Sum([]byte) []byte
}, error) {
	h := sha256.New()
	if len(state) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			return nil, fmt.Errorf("restore export checksum state: %w", err)
		}
	}
	return h.(interface {
		encoding.BinaryMarshaler
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}), nil
}

func str(v dbtypes.AttributeValue) string {
	if s, ok := v.(*dbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// plain turns a DynamoDB item into plain JSON values: numbers keep their exact
// decimal text (json.Number), binary becomes base64, sets become arrays.
func plain(item map[string]dbtypes.AttributeValue) map[string]any {
	out := make(map[string]any, len(item))
	for k, v := range item {
		out[k] = value(v)
	}
	return out
}

func value(v dbtypes.AttributeValue) any {
	switch x := v.(type) {
	case *dbtypes.AttributeValueMemberS:
		return x.Value
	case *dbtypes.AttributeValueMemberN:
		return json.Number(x.Value)
	case *dbtypes.AttributeValueMemberBOOL:
		return x.Value
	case *dbtypes.AttributeValueMemberNULL:
		return nil
	case *dbtypes.AttributeValueMemberB:
		return base64.StdEncoding.EncodeToString(x.Value)
	case *dbtypes.AttributeValueMemberSS:
		return x.Value
	case *dbtypes.AttributeValueMemberNS:
		out := make([]json.Number, len(x.Value))
		for i, n := range x.Value {
			out[i] = json.Number(n)
		}
		return out
	case *dbtypes.AttributeValueMemberBS:
		out := make([]string, len(x.Value))
		for i, b := range x.Value {
			out[i] = base64.StdEncoding.EncodeToString(b)
		}
		return out
	case *dbtypes.AttributeValueMemberL:
		out := make([]any, len(x.Value))
		for i, e := range x.Value {
			out[i] = value(e)
		}
		return out
	case *dbtypes.AttributeValueMemberM:
		return plain(x.Value)
	}
	return nil
}
