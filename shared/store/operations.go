package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

type operationRecord struct {
	PK            string   `dynamodbav:"pk"`
	SK            string   `dynamodbav:"sk"`
	OperationID   string   `dynamodbav:"operation_id"`
	TenantID      string   `dynamodbav:"tenant_id"`
	Kind          string   `dynamodbav:"kind"`
	Status        string   `dynamodbav:"status"`
	FromPlan      string   `dynamodbav:"from_plan,omitempty"`
	ToPlan        string   `dynamodbav:"to_plan,omitempty"`
	AtPeriodEnd   bool     `dynamodbav:"at_period_end,omitempty"`
	EffectiveAt   string   `dynamodbav:"effective_at,omitempty"`
	RequestedBy   string   `dynamodbav:"requested_by,omitempty"`
	Error         string   `dynamodbav:"error,omitempty"`
	Cause         string   `dynamodbav:"cause,omitempty"`
	CreatedAt     string   `dynamodbav:"created_at"`
	UpdatedAt     string   `dynamodbav:"updated_at"`
	PreviousState string   `dynamodbav:"previous_state,omitempty"`
	RetentionDays int      `dynamodbav:"retention_days,omitempty"`
	Reason        string   `dynamodbav:"reason,omitempty"`
	Action        string   `dynamodbav:"policy_action,omitempty"`
	Actor         string   `dynamodbav:"actor,omitempty"`
	ToState       string   `dynamodbav:"to_state,omitempty"`
	SuspendCause  string   `dynamodbav:"suspend_cause,omitempty"`
	Attempt       int      `dynamodbav:"attempt"`
	Incomplete    []string `dynamodbav:"compensation_incomplete,omitempty"`
	Attention     bool     `dynamodbav:"needs_attention"`
	Resolution    string   `dynamodbav:"resolution,omitempty"`
	Marks         []string `dynamodbav:"marks,omitempty,stringset"`

	// Sparse Open index keys: set exactly while the operation is RUNNING, by the write
	// that makes it RUNNING, and removed by the write that ends it (OpUpdate.item), so
	// the reconciler finds every open operation without a Scan.
	OpenKind string `dynamodbav:"open_kind,omitempty"`
	OpenAt   string `dynamodbav:"open_at,omitempty"`

	// TenantRef is the tenant's id again, as the key of the ByTenant index: every
	// operation of a tenant is found by tenant, audited or not.
	TenantRef string `dynamodbav:"tenant_ref,omitempty"`
}

func opKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: opPrefix + id}, "sk": &types.AttributeValueMemberS{Value: skOp},
	}
}

// CreateOperation stores a new operation. An existing id is a *tenant.ConflictError.
func (s *Store) CreateOperation(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error) {
	o, item, err := s.operationItem(op)
	if err != nil {
		return nil, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if err != nil {
		return nil, conflictFrom(err, o.TenantID, "operation "+o.ID+" already exists", "create operation")
	}
	return o, nil
}

// operationItem is the item CreateOperation writes for op, stamped now.
func (s *Store) operationItem(op *tenant.Operation) (*tenant.Operation, map[string]types.AttributeValue, error) {
	now := s.now().UTC()
	o := *op
	o.CreatedAt, o.UpdatedAt = now, now
	r := operationRecord{
		PK: opPrefix + o.ID, SK: skOp, OperationID: o.ID, TenantID: o.TenantID, Kind: o.Kind, Status: string(o.Status),
		FromPlan: string(o.FromPlan), ToPlan: string(o.ToPlan), AtPeriodEnd: o.AtPeriodEnd, RequestedBy: o.RequestedBy,
		PreviousState: string(o.PreviousState), RetentionDays: o.RetentionDays, Reason: o.Reason,
		Action: string(o.Action), Actor: string(o.Actor), ToState: string(o.ToState), SuspendCause: o.SuspendCause,
		CreatedAt: ts(now), UpdatedAt: ts(now), TenantRef: o.TenantID,
	}
	if o.EffectiveAt != nil {
		r.EffectiveAt = ts(*o.EffectiveAt)
	}
	if o.Status == tenant.OpRunning {
		r.OpenKind, r.OpenAt = OpenOperation, ts(now)
	}
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal operation %s: %w", o.ID, err)
	}
	return &o, item, nil
}

// GetOperation reads one operation. Missing → *tenant.NotFoundError.
func (s *Store) GetOperation(ctx context.Context, id string) (*tenant.Operation, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: opKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get operation %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, &tenant.NotFoundError{Kind: "operation", ID: id}
	}
	var r operationRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("unmarshal operation %s: %w", id, err)
	}
	return r.toOperation(), nil
}

// OpenOp is an open operation as the Open index lists it, with the time it became open
// (created RUNNING, started by the sweep, or reopened for an operator retry).
type OpenOp struct {
	*tenant.Operation
	OpenedAt time.Time
}

// OpenCursor is where the next page of open operations starts; nil starts at the
// oldest. It is opaque to callers.
type OpenCursor map[string]types.AttributeValue

// OpenOperations returns one page of at most limit operations that are RUNNING and
// became so at or before `before`, oldest first, reading only the sparse Open index
// (never a Scan), and the cursor of the next page (nil after the last). The index is
// eventually consistent: a caller re-reads an operation before acting on it.
func (s *Store) OpenOperations(ctx context.Context, before time.Time, after OpenCursor, limit int32) ([]OpenOp, OpenCursor, error) {
	page, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(OpenIndex),
		KeyConditionExpression: aws.String("open_kind = :k AND open_at <= :before"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": &types.AttributeValueMemberS{Value: OpenOperation}, ":before": &types.AttributeValueMemberS{Value: ts(before)},
		},
		ExclusiveStartKey: after, Limit: aws.Int32(limit),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("query open operations: %w", err)
	}
	var recs []operationRecord
	if err := attributevalue.UnmarshalListOfMaps(page.Items, &recs); err != nil {
		return nil, nil, fmt.Errorf("unmarshal open operations: %w", err)
	}
	out := make([]OpenOp, len(recs))
	for i, r := range recs {
		out[i] = OpenOp{Operation: r.toOperation(), OpenedAt: parseTS(r.OpenAt)}
	}
	if len(page.LastEvaluatedKey) == 0 {
		return out, nil, nil
	}
	return out, OpenCursor(page.LastEvaluatedKey), nil
}

func (r operationRecord) toOperation() *tenant.Operation {
	return &tenant.Operation{
		ID: r.OperationID, TenantID: r.TenantID, Kind: r.Kind, Status: tenant.OperationStatus(r.Status),
		FromPlan: tenant.Plan(r.FromPlan), ToPlan: tenant.Plan(r.ToPlan), AtPeriodEnd: r.AtPeriodEnd,
		EffectiveAt: parseTSPtr(r.EffectiveAt), RequestedBy: r.RequestedBy, Error: r.Error, Cause: r.Cause,
		CreatedAt: parseTS(r.CreatedAt), UpdatedAt: parseTS(r.UpdatedAt),
		PreviousState: tenant.State(r.PreviousState), RetentionDays: r.RetentionDays, Reason: r.Reason, Attempt: r.Attempt,
		Action: tenant.Action(r.Action), Actor: tenant.Actor(r.Actor), ToState: tenant.State(r.ToState), SuspendCause: r.SuspendCause,
		CompensationIncomplete: r.Incomplete, NeedsAttention: r.Attention, Resolution: r.Resolution, Marks: r.Marks,
	}
}

// DecodeOperation reads an operation item as the store writes it, for readers of the
// raw items (the tenant's export, through the ByTenant index).
func DecodeOperation(item map[string]types.AttributeValue) (*tenant.Operation, error) {
	var r operationRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return nil, fmt.Errorf("unmarshal operation item: %w", err)
	}
	return r.toOperation(), nil
}

// OpUpdate is a change of an operation's status written in the same transaction as a
// tenant change (Store.Change), so the tenant and its operation never disagree.
type OpUpdate struct {
	ID     string
	Status tenant.OperationStatus
	// Error and Cause describe a FAILED operation.
	Error, Cause string
	// Incomplete lists what a failed operation could not undo; a non-empty list sets
	// needs_attention.
	Incomplete []string
	// PreviousState, when set, records where the tenant was when the operation
	// claimed it.
	PreviousState tenant.State
	// Reopen moves a FAILED operation that needs attention back to RUNNING for the
	// operator retry numbered Attempt (instead of the usual "only unfinished
	// operations change" guard).
	Reopen  bool
	Attempt int
}

// item returns the TransactWriteItem of u. Unless reopening, only a SCHEDULED or
// RUNNING operation may change, or one already in u.Status (a repeated step). The
// Open index keys follow the status: set when it becomes RUNNING (a reopened one is
// open anew from now), kept while it stays RUNNING, kind ATTENTION when it ends with
// an incomplete compensation, removed by any other status.
func (u *OpUpdate) item(table string, now string) types.TransactWriteItem {
	names := map[string]string{"#st": "status"}
	vals := map[string]types.AttributeValue{
		":st": &types.AttributeValueMemberS{Value: string(u.Status)}, ":now": &types.AttributeValueMemberS{Value: now},
	}
	var set, cond string
	var remove []string
	if u.Reopen {
		vals[":true"] = &types.AttributeValueMemberBOOL{Value: true}
		vals[":prev"] = &types.AttributeValueMemberN{Value: strconv.Itoa(u.Attempt - 1)}
		vals[":n"] = &types.AttributeValueMemberN{Value: strconv.Itoa(u.Attempt)}
		set = "SET #st = :st, updated_at = :now, attempt = :n"
		cond = "attribute_exists(pk) AND needs_attention = :true AND attempt = :prev"
		if u.Status == tenant.OpRunning {
			vals[":ok"] = &types.AttributeValueMemberS{Value: OpenOperation}
			set += ", open_kind = :ok, open_at = :now"
		}
	} else {
		names["#e"] = "error"
		vals[":e"] = &types.AttributeValueMemberS{Value: u.Error}
		vals[":c"] = &types.AttributeValueMemberS{Value: u.Cause}
		vals[":att"] = &types.AttributeValueMemberBOOL{Value: len(u.Incomplete) > 0}
		vals[":sched"] = &types.AttributeValueMemberS{Value: string(tenant.OpScheduled)}
		vals[":run"] = &types.AttributeValueMemberS{Value: string(tenant.OpRunning)}
		set = "SET #st = :st, #e = :e, cause = :c, updated_at = :now, needs_attention = :att"
		if u.PreviousState != "" {
			vals[":prev_state"] = &types.AttributeValueMemberS{Value: string(u.PreviousState)}
			set += ", previous_state = :prev_state"
		}
		if len(u.Incomplete) > 0 {
			l := make([]types.AttributeValue, len(u.Incomplete))
			for i, x := range u.Incomplete {
				l[i] = &types.AttributeValueMemberS{Value: x}
			}
			vals[":inc"] = &types.AttributeValueMemberL{Value: l}
			set += ", compensation_incomplete = :inc"
		} else {
			remove = append(remove, "compensation_incomplete")
		}
		switch {
		case u.Status == tenant.OpRunning:
			vals[":ok"] = &types.AttributeValueMemberS{Value: OpenOperation}
			set += ", open_kind = :ok, open_at = if_not_exists(open_at, :now)"
		case len(u.Incomplete) > 0:
			// Waiting for an operator from now (opsindex.go).
			vals[":ok"] = &types.AttributeValueMemberS{Value: OpenAttention}
			set += ", open_kind = :ok, open_at = :now"
		default:
			remove = append(remove, "open_kind", "open_at")
		}
		cond = "attribute_exists(pk) AND (#st IN (:sched, :run) OR #st = :st)"
	}
	if len(remove) > 0 {
		set += " REMOVE " + strings.Join(remove, ", ")
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &table, Key: opKey(u.ID), UpdateExpression: aws.String(set), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
	}}
}

// SetOperationStatus moves an unfinished operation to status (with error and cause for
// FAILED). Repeating the same final status is a no-op; changing a finished operation is
// a *tenant.ConflictError.
func (s *Store) SetOperationStatus(ctx context.Context, id string, status tenant.OperationStatus, errName, cause string) error {
	return s.UpdateOperation(ctx, OpUpdate{ID: id, Status: status, Error: errName, Cause: cause})
}

// UpdateOperation writes u on its own (no tenant change). A refused update (finished
// operation, or nothing to reopen) is a *tenant.ConflictError.
func (s *Store) UpdateOperation(ctx context.Context, u OpUpdate) error {
	it := u.item(s.table, ts(s.now())).Update
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: it.TableName, Key: it.Key, UpdateExpression: it.UpdateExpression, ConditionExpression: it.ConditionExpression,
		ExpressionAttributeNames: it.ExpressionAttributeNames, ExpressionAttributeValues: it.ExpressionAttributeValues,
	})
	if err != nil {
		return conflictFrom(err, u.ID, "operation already finished", "update operation")
	}
	return nil
}

// Mark records fact m on an operation (a string set, so marking twice is one mark).
// Steps mark BEFORE a side effect they cannot cheaply read back.
func (s *Store) Mark(ctx context.Context, id, m string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: opKey(id),
		UpdateExpression:    aws.String("ADD marks :m SET updated_at = :now"),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":m": &types.AttributeValueMemberSS{Value: []string{m}}, ":now": &types.AttributeValueMemberS{Value: ts(s.now())},
		},
	})
	if err != nil {
		return conflictFrom(err, id, "operation does not exist", "mark operation")
	}
	return nil
}

// ResolveOperation ends the attention of a failed operation by an operator's decision:
// the operation keeps FAILED with note as its resolution, and the tenant, if it still
// points at it, is free for other flows. Both in one transaction.
func (s *Store) ResolveOperation(ctx context.Context, op *tenant.Operation, note string, by Actor) error {
	pk, sk := tenantKey(op.TenantID)
	now := s.now().UTC()
	cur, err := s.GetTenant(ctx, op.TenantID)
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: &s.table, Key: opKey(op.ID),
		UpdateExpression: aws.String("SET needs_attention = :f, resolution = :r, updated_at = :now REMOVE open_kind, open_at"),
		// Not while an operator retry runs (open as OP): that run decides whether it
		// still needs attention. Resolving takes it out of the attention list.
		ConditionExpression: aws.String("needs_attention = :t AND (attribute_not_exists(open_kind) OR open_kind = :att)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":f": &types.AttributeValueMemberBOOL{Value: false}, ":t": &types.AttributeValueMemberBOOL{Value: true},
			":att": &types.AttributeValueMemberS{Value: OpenAttention},
			":r":   &types.AttributeValueMemberS{Value: note}, ":now": &types.AttributeValueMemberS{Value: ts(now)},
		},
	}}}
	if cur.Attention == op.ID {
		next := *cur
		next.Attention, next.Version, next.UpdatedAt = "", cur.Version+1, now
		audit, err := s.auditItem(&next, cur.State, cur.State, Actor{Who: by.Who, OperationID: op.ID, Reason: "resolved by operator: " + note}, now)
		if err != nil {
			return err
		}
		items = append(items,
			types.TransactWriteItem{Update: &types.Update{
				TableName:           &s.table,
				Key:                 map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
				UpdateExpression:    aws.String("REMOVE attention_operation_id SET updated_at = :now ADD version :one"),
				ConditionExpression: aws.String("attention_operation_id = :op"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":op": &types.AttributeValueMemberS{Value: op.ID}, ":now": &types.AttributeValueMemberS{Value: ts(now)},
					":one": &types.AttributeValueMemberN{Value: "1"},
				},
			}},
			types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: audit, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	}
	if _, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return conflictFrom(err, op.TenantID, "operation "+op.ID+" does not need attention", "resolve operation")
	}
	return nil
}
