package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The operator's listings of operations and the counts of the overview, each one
// Query of an index the table already has, never a Scan:
//
//   - a tenant's operations: the ByTenant index (tenant_ref, pk), newest first;
//   - running operations: the Open index, open_kind OP (the reconciler's own list);
//   - operations that need attention: the Open index, open_kind ATTENTION. An
//     operation is RUNNING or waiting for an operator, never both, so the one sparse
//     key pair carries either state: the write that fails an operation with an
//     incomplete compensation sets ATTENTION (open_at: when), the operator's retry
//     reopens it as OP, and resolving it removes the keys. Readers of the Open index
//     ask for one kind each (OP for the reconciler, EXPORT for export jobs), so a new
//     kind changes nothing for them. Operations that failed this way before the key
//     existed do not carry it; they are still found by tenant (status
//     needs_attention filters on the needs_attention attribute) and by the tenant's
//     attention_operation_id.
//   - scheduled operations: the Due index, due_kind CHANGE, which holds the tenants
//     whose downgrade waits for the period end, with the operation's id.

// OpenAttention is the Open index kind of a FAILED operation whose compensation is
// incomplete, until an operator retries or resolves it.
const OpenAttention = "ATTENTION"

// OpsPage is one page of operations; Next is "" on the last page.
type OpsPage struct {
	Operations []*tenant.Operation
	Next       string
}

// OpFilter narrows a tenant's operations: by Status, or to those that need attention
// (FAILED with an incomplete compensation, not being retried). Zero: every operation.
type OpFilter struct {
	Status         tenant.OperationStatus
	NeedsAttention bool
}

// maxFilteredPages bounds the Query round trips of one filtered page: when few of a
// tenant's operations match, the page comes back short, with a cursor to go on.
const maxFilteredPages = 8

// TenantOperationsPage returns at most limit operations of tenantID matching f, newest
// first (operation ids start with their creation time), from the ByTenant index.
// cursor is the Next of the previous page ("" for the first).
func (s *Store) TenantOperationsPage(ctx context.Context, tenantID string, f OpFilter, cursor string, limit int32) (OpsPage, error) {
	start, err := decodeIndexCursor(cursor, map[string]string{TenantRefAttribute: tenantID}, "pk", opPrefix)
	if err != nil {
		return OpsPage{}, err
	}
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(ByTenantIndex), ScanIndexForward: aws.Bool(false),
		KeyConditionExpression:   aws.String("#t = :t AND begins_with(pk, :op)"),
		ExpressionAttributeNames: map[string]string{"#t": TenantRefAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberS{Value: tenantID}, ":op": &types.AttributeValueMemberS{Value: opPrefix},
		},
	}
	switch {
	case f.NeedsAttention:
		// needs_attention stays true while an operator retry runs; that one is RUNNING.
		in.FilterExpression = aws.String("needs_attention = :true AND #st <> :run")
		in.ExpressionAttributeNames["#st"] = "status"
		in.ExpressionAttributeValues[":true"] = &types.AttributeValueMemberBOOL{Value: true}
		in.ExpressionAttributeValues[":run"] = &types.AttributeValueMemberS{Value: string(tenant.OpRunning)}
	case f.Status != "":
		in.FilterExpression = aws.String("#st = :st")
		in.ExpressionAttributeNames["#st"] = "status"
		in.ExpressionAttributeValues[":st"] = &types.AttributeValueMemberS{Value: string(f.Status)}
	}
	var page OpsPage
	for range maxFilteredPages {
		in.ExclusiveStartKey, in.Limit = start, aws.Int32(limit-int32(len(page.Operations)))
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return OpsPage{}, fmt.Errorf("list operations of %s: %w", tenantID, err)
		}
		ops, err := decodeOperations(out.Items)
		if err != nil {
			return OpsPage{}, err
		}
		page.Operations = append(page.Operations, ops...)
		start = out.LastEvaluatedKey
		if len(start) == 0 || int32(len(page.Operations)) >= limit {
			break
		}
	}
	if len(start) > 0 {
		page.Next = encodeIndexCursor(start)
	}
	return page, nil
}

// OpenOperationsPage returns at most limit operations of the Open index kind
// (OpenOperation: RUNNING; OpenAttention: waiting for an operator), longest open
// first. The index is eventually consistent: an operation that changed a moment ago
// may still be listed under its old kind.
func (s *Store) OpenOperationsPage(ctx context.Context, kind, cursor string, limit int32) (OpsPage, error) {
	start, err := decodeIndexCursor(cursor, map[string]string{"open_kind": kind}, "open_at", "")
	if err != nil {
		return OpsPage{}, err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(OpenIndex),
		KeyConditionExpression:    aws.String("open_kind = :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberS{Value: kind}},
		ExclusiveStartKey:         start, Limit: aws.Int32(limit),
	})
	if err != nil {
		return OpsPage{}, fmt.Errorf("list open operations %s: %w", kind, err)
	}
	ops, err := decodeOperations(out.Items)
	if err != nil {
		return OpsPage{}, err
	}
	page := OpsPage{Operations: ops}
	if len(out.LastEvaluatedKey) > 0 {
		page.Next = encodeIndexCursor(out.LastEvaluatedKey)
	}
	return page, nil
}

// ScheduledOperationsPage returns the SCHEDULED operations of at most limit tenants
// whose plan change waits for the period end, soonest first (the Due index, kind
// CHANGE), each read by its id from the tenant's pending change. A change the sweep
// has just started (no longer SCHEDULED) is left out.
func (s *Store) ScheduledOperationsPage(ctx context.Context, cursor string, limit int32) (OpsPage, error) {
	start, err := decodeIndexCursor(cursor, map[string]string{"due_kind": DueChange}, "due_at", "")
	if err != nil {
		return OpsPage{}, err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(DueIndex),
		KeyConditionExpression:    aws.String("due_kind = :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberS{Value: DueChange}},
		ExclusiveStartKey:         start, Limit: aws.Int32(limit),
	})
	if err != nil {
		return OpsPage{}, fmt.Errorf("list scheduled changes: %w", err)
	}
	var recs []tenantRecord
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &recs); err != nil {
		return OpsPage{}, fmt.Errorf("unmarshal scheduled changes: %w", err)
	}
	page := OpsPage{Operations: []*tenant.Operation{}}
	for _, r := range recs {
		if r.PendingOperation == "" {
			continue
		}
		op, err := s.GetOperation(ctx, r.PendingOperation)
		var nf *tenant.NotFoundError
		switch {
		case errors.As(err, &nf):
			continue
		case err != nil:
			return OpsPage{}, err
		}
		if op.Status == tenant.OpScheduled {
			page.Operations = append(page.Operations, op)
		}
	}
	if len(out.LastEvaluatedKey) > 0 {
		page.Next = encodeIndexCursor(out.LastEvaluatedKey)
	}
	return page, nil
}

func decodeOperations(items []map[string]types.AttributeValue) ([]*tenant.Operation, error) {
	var recs []operationRecord
	if err := attributevalue.UnmarshalListOfMaps(items, &recs); err != nil {
		return nil, fmt.Errorf("unmarshal operations: %w", err)
	}
	out := make([]*tenant.Operation, len(recs))
	for i, r := range recs {
		out[i] = r.toOperation()
	}
	return out, nil
}

// CountByState counts the tenants in state (ByState index).
func (s *Store) CountByState(ctx context.Context, state tenant.State) (int64, error) {
	return s.count(ctx, StateIndex, "state", string(state))
}

// CountOpen counts the items of the Open index of kind (OpenOperation, OpenAttention).
func (s *Store) CountOpen(ctx context.Context, kind string) (int64, error) {
	return s.count(ctx, OpenIndex, "open_kind", kind)
}

// CountDue counts the tenants of the Due index of kind (DueChange, DuePurge).
func (s *Store) CountDue(ctx context.Context, kind string) (int64, error) {
	return s.count(ctx, DueIndex, "due_kind", kind)
}

// count is a Query with Select COUNT of one hash key of index, page by page: DynamoDB
// counts at most 1 MB of items per call. It reads (and is billed for) every item it
// counts, so it serves an operator's overview, not a hot path.
func (s *Store) count(ctx context.Context, index, key, value string) (int64, error) {
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(index), Select: types.SelectCount,
		KeyConditionExpression:    aws.String("#k = :v"),
		ExpressionAttributeNames:  map[string]string{"#k": key},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: value}},
	}
	var n int64
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("count %s %s: %w", index, value, err)
		}
		n += int64(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// endOfTime is later than anything due.
var endOfTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// NextDue returns the first limit tenants of the Due index of kind, soonest first,
// overdue ones included (a sweep has not handled them yet).
func (s *Store) NextDue(ctx context.Context, kind string, limit int32) ([]*tenant.Tenant, error) {
	out, _, err := s.Due(ctx, kind, endOfTime, nil, limit)
	return out, err
}

// An index cursor is a LastEvaluatedKey (string attributes only) as base64url JSON.
func encodeIndexCursor(k map[string]types.AttributeValue) string {
	m := map[string]string{}
	for name, v := range k {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			m[name] = s.Value
		}
	}
	b, _ := json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeIndexCursor accepts only a key of the listing it is for: the fixed hash key
// values, the range attribute rangeKey (when it is not pk, pk too), pk and sk, all
// non-empty, pk starting with pkPrefix when given; nothing else. A forged cursor is a
// validation error and never reaches DynamoDB.
func decodeIndexCursor(c string, fixed map[string]string, rangeKey, pkPrefix string) (map[string]types.AttributeValue, error) {
	if c == "" {
		return nil, nil
	}
	bad := &tenant.ValidationError{Field: "cursor", Reason: "not a cursor of this listing"}
	b, err := base64.RawURLEncoding.DecodeString(c)
	var m map[string]string
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return nil, bad
	}
	want := len(fixed) + 2
	if rangeKey != "pk" {
		want++
	}
	if len(m) != want || m[rangeKey] == "" || m["pk"] == "" || m["sk"] == "" || !strings.HasPrefix(m["pk"], pkPrefix) {
		return nil, bad
	}
	for k, v := range fixed {
		if m[k] != v {
			return nil, bad
		}
	}
	out := map[string]types.AttributeValue{}
	for k, v := range m {
		out[k] = &types.AttributeValueMemberS{Value: v}
	}
	return out, nil
}
