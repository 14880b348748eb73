package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// ErrUnchanged is what a Decide function returns when the tenant already is as the
// caller wants it (a repeated step): Change then writes nothing and succeeds.
var ErrUnchanged = errors.New("store: nothing to change")

// ErrContended means a tenant kept changing under a Change (every attempt lost its
// race to another writer). It is transient: the same change may succeed a moment later.
var ErrContended = errors.New("store: tenant kept changing; try again")

// Write is what a Decide function asks Change to write.
type Write struct {
	// To is the new state; empty keeps the current one. A state change must be in the
	// transition table.
	To tenant.State
	// Mutate changes other fields of the tenant (called on a copy of the current item).
	Mutate func(*tenant.Tenant)
	// Reason goes to the audit record. A state change is always audited; a write that
	// keeps the state is audited when Reason is set.
	Reason string
	// Op, when set, updates the operation in the same transaction.
	Op *OpUpdate
	// Create, when set, creates this operation (its id must be new) in the same
	// transaction: the API records an operation and reserves its tenant in one write.
	Create *tenant.Operation
	// Entitlements, when set, writes the tenant's entitlements item in the same
	// transaction, conditioned on its version (EntitlementsVersion; 0: it must not
	// exist): overrides change the tenant and its entitlements together. A lost race
	// on it reads both again, like one on the tenant.
	Entitlements        *tenant.Entitlements
	EntitlementsVersion int64
}

// Decide looks at the current tenant and says what to write: a Write, ErrUnchanged,
// or an error that stops the change (returned as is, so typed errors stay typed).
type Decide func(cur *tenant.Tenant) (Write, error)

// changeAttempts bounds how often Change re-reads a tenant that changed under it.
const changeAttempts = 8

// Change is the guarded read-modify-write every flow step uses. It reads the tenant,
// lets decide choose the write, and writes the tenant (conditioned on the version it
// read), its audit record and w.Op in one TransactWriteItems. When another writer got
// there first — typically a usage report, which bumps the version — it reads again and
// asks decide again, so a step fails only when the tenant really moved away from what
// decide requires (ownership, state), never because of an unrelated write.
func (s *Store) Change(ctx context.Context, id string, by Actor, decide Decide) (*tenant.Tenant, error) {
	return s.ChangeFrom(ctx, id, nil, by, decide)
}

// ChangeFrom is Change starting from a tenant the caller has just read (e.g. from an
// index page), saving the first read; a stale copy only costs one lost race, after
// which it reads the item again. seen may be nil.
func (s *Store) ChangeFrom(ctx context.Context, id string, seen *tenant.Tenant, by Actor, decide Decide) (*tenant.Tenant, error) {
	for range changeAttempts {
		cur := seen
		seen = nil
		if cur == nil {
			var err error
			if cur, err = s.GetTenant(ctx, id); err != nil {
				return nil, err
			}
		}
		w, err := decide(cur)
		if errors.Is(err, ErrUnchanged) {
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		to := w.To
		if to == "" {
			to = cur.State
		}
		if to != cur.State {
			if err := tenant.CheckTransition(cur.State, to); err != nil {
				return nil, err
			}
		}
		next, lost, err := s.writeChange(ctx, cur, to, w, by)
		if lost {
			continue
		}
		return next, err
	}
	return nil, fmt.Errorf("change tenant %s: %w", id, ErrContended)
}

// writeChange makes one attempt. lost reports that the tenant item's condition failed
// (someone else wrote it since it was read): the caller reads again.
func (s *Store) writeChange(ctx context.Context, cur *tenant.Tenant, to tenant.State, w Write, by Actor) (*tenant.Tenant, bool, error) {
	now := s.now().UTC()
	next := *cur
	if w.Mutate != nil {
		w.Mutate(&next)
	}
	next.ID, next.State, next.Version, next.UpdatedAt = cur.ID, to, cur.Version+1, now
	item, err := attributevalue.MarshalMap(toRecord(&next))
	if err != nil {
		return nil, false, fmt.Errorf("marshal tenant %s: %w", cur.ID, err)
	}
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: &s.table, Item: item,
		ConditionExpression:      aws.String("#s = :from AND version = :v"),
		ExpressionAttributeNames: map[string]string{"#s": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":from": &types.AttributeValueMemberS{Value: string(cur.State)},
			":v":    &types.AttributeValueMemberN{Value: strconv.FormatInt(cur.Version, 10)},
		},
	}}}
	if cur.State != to || w.Reason != "" {
		if w.Reason != "" {
			by.Reason = w.Reason // decided with the write, on the tenant it was decided on
		}
		audit, err := s.auditItem(&next, cur.State, to, by, now)
		if err != nil {
			return nil, false, err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: audit, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	}
	opIndex := -1
	if w.Op != nil {
		opIndex = len(items)
		items = append(items, w.Op.item(s.table, ts(now)))
	}
	createIndex := -1
	if w.Create != nil {
		_, op, err := s.operationItem(w.Create)
		if err != nil {
			return nil, false, err
		}
		createIndex = len(items)
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: op, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	}
	entIndex := -1
	if w.Entitlements != nil {
		put, _, err := s.entitlementsPut(w.Entitlements, w.EntitlementsVersion)
		if err != nil {
			return nil, false, err
		}
		entIndex = len(items)
		items = append(items, types.TransactWriteItem{Put: put})
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return &next, false, nil
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		reasons := tce.CancellationReasons
		code := func(i int) string {
			if i < 0 || i >= len(reasons) {
				return ""
			}
			return aws.ToString(reasons[i].Code)
		}
		switch {
		case code(0) == "ConditionalCheckFailed", code(0) == "TransactionConflict", code(entIndex) == "ConditionalCheckFailed":
			return nil, true, nil
		case code(opIndex) == "ConditionalCheckFailed":
			return nil, false, &tenant.ConflictError{TenantID: cur.ID, Reason: "operation " + w.Op.ID + " cannot move to " + string(w.Op.Status)}
		case code(createIndex) == "ConditionalCheckFailed":
			return nil, false, &tenant.ConflictError{TenantID: cur.ID, Reason: "operation " + w.Create.ID + " already exists"}
		}
	}
	return nil, false, conflictFrom(err, cur.ID, "tenant changed concurrently", "change tenant")
}
