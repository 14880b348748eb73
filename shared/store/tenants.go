package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// CreateTenant stores a new tenant at version 1 together with its first audit record.
// An existing id is a *tenant.ConflictError; nothing is overwritten.
func (s *Store) CreateTenant(ctx context.Context, t *tenant.Tenant, by Actor) (*tenant.Tenant, error) {
	nt, item, audit, err := s.tenantItems(t, by)
	if err != nil {
		return nil, err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{TableName: &s.table, Item: audit, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
	}})
	if err != nil {
		return nil, conflictFrom(err, t.ID, "tenant already exists", "create tenant")
	}
	return nt, nil
}

// tenantItems are the tenant item (version 1) and its first audit record that
// CreateTenant writes.
func (s *Store) tenantItems(t *tenant.Tenant, by Actor) (*tenant.Tenant, map[string]types.AttributeValue, map[string]types.AttributeValue, error) {
	now := s.now().UTC()
	nt := *t
	nt.Version = 1
	nt.CreatedAt, nt.UpdatedAt = now, now
	item, err := attributevalue.MarshalMap(toRecord(&nt))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("marshal tenant %s: %w", t.ID, err)
	}
	audit, err := s.auditItem(&nt, "", nt.State, by, now)
	if err != nil {
		return nil, nil, nil, err
	}
	return &nt, item, audit, nil
}

// GetTenant reads one tenant (strongly consistent). Missing → *tenant.NotFoundError.
func (s *Store) GetTenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	pk, sk := tenantKey(id)
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
	})
	if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, &tenant.NotFoundError{Kind: "tenant", ID: id}
	}
	var r tenantRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("unmarshal tenant %s: %w", id, err)
	}
	return r.toTenant(), nil
}

// Page is one page of a listing; Next is empty on the last page.
type Page struct {
	Tenants []*tenant.Tenant
	Next    string
}

// ListByState returns tenants in state, ordered by id, limit per page. cursor is the
// opaque Next of the previous page ("" for the first).
func (s *Store) ListByState(ctx context.Context, state tenant.State, cursor string, limit int32) (Page, error) {
	start, err := decodeCursor(cursor, state)
	if err != nil {
		return Page{}, err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(StateIndex),
		KeyConditionExpression:    aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: string(state)}},
		ExclusiveStartKey:         start,
		Limit:                     aws.Int32(limit),
	})
	if err != nil {
		return Page{}, fmt.Errorf("list tenants in %s: %w", state, err)
	}
	var recs []tenantRecord
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &recs); err != nil {
		return Page{}, fmt.Errorf("unmarshal tenant list: %w", err)
	}
	p := Page{Tenants: make([]*tenant.Tenant, len(recs))}
	for i, r := range recs {
		p.Tenants[i] = r.toTenant()
	}
	if len(out.LastEvaluatedKey) > 0 {
		p.Next = encodeCursor(out.LastEvaluatedKey)
	}
	return p, nil
}

// encodeCursor turns a LastEvaluatedKey (all string attributes here) into an opaque token.
func encodeCursor(k map[string]types.AttributeValue) string {
	m := map[string]string{}
	for name, v := range k {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			m[name] = s.Value
		}
	}
	b, _ := json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor accepts only the shape ListByState hands out for this state, so a forged
// cursor is a validation error and never reaches DynamoDB.
func decodeCursor(c string, state tenant.State) (map[string]types.AttributeValue, error) {
	if c == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	var m map[string]string
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	pk, sk := tenantKey(m["tenant_id"])
	if err != nil || len(m) != 4 || m["tenant_id"] == "" || m["state"] != string(state) || m["pk"] != pk || m["sk"] != sk {
		return nil, &tenant.ValidationError{Field: "cursor", Reason: "not a cursor returned by this API"}
	}
	out := map[string]types.AttributeValue{}
	for k, v := range m {
		out[k] = &types.AttributeValueMemberS{Value: v}
	}
	return out, nil
}

// UpdateUsage records the usage the application reports. It is not a state change but
// still bumps the version, so a flow holding an older version notices. PURGED tenants
// are refused with a conflict.
func (s *Store) UpdateUsage(ctx context.Context, id string, u tenant.Usage) (*tenant.Tenant, error) {
	pk, sk := tenantKey(id)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
		UpdateExpression:         aws.String("SET usage_users = :u, usage_storage_gb = :g, usage_api_calls = :a, updated_at = :now ADD version :one"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND #s <> :purged"),
		ExpressionAttributeNames: map[string]string{"#s": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":u":      &types.AttributeValueMemberN{Value: strconv.FormatInt(u.Users, 10)},
			":g":      &types.AttributeValueMemberN{Value: strconv.FormatFloat(u.StorageGB, 'f', -1, 64)},
			":a":      &types.AttributeValueMemberN{Value: strconv.FormatInt(u.APICallsPerMonth, 10)},
			":now":    &types.AttributeValueMemberS{Value: ts(s.now())},
			":one":    &types.AttributeValueMemberN{Value: "1"},
			":purged": &types.AttributeValueMemberS{Value: string(tenant.Purged)},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		if c := conflictFrom(err, id, "", "update usage"); isConflict(c) {
			// Tell missing apart from purged for the caller.
			if _, gerr := s.GetTenant(ctx, id); gerr != nil {
				return nil, gerr
			}
			return nil, &tenant.ConflictError{TenantID: id, Reason: "tenant is purged"}
		}
		return nil, fmt.Errorf("update usage %s: %w", id, err)
	}
	var r tenantRecord
	if err := attributevalue.UnmarshalMap(out.Attributes, &r); err != nil {
		return nil, fmt.Errorf("unmarshal tenant %s: %w", id, err)
	}
	return r.toTenant(), nil
}

// Transition moves tenant id from → to if it is still in from at expectedVersion.
// mutate (may be nil) changes other fields in the same write. The tenant item and its
// audit record are written in one TransactWriteItems; a lost race or a stale version is a
// *tenant.ConflictError and writes nothing; a transition outside the table is a
// *tenant.InvalidTransitionError and is never attempted.
func (s *Store) Transition(ctx context.Context, id string, from, to tenant.State, expectedVersion int64, mutate func(*tenant.Tenant), by Actor) (*tenant.Tenant, error) {
	if err := tenant.CheckTransition(from, to); err != nil {
		return nil, err
	}
	cur, err := s.GetTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	if cur.State != from || cur.Version != expectedVersion {
		return nil, &tenant.ConflictError{TenantID: id, Reason: fmt.Sprintf("expected %s at version %d, found %s at version %d", from, expectedVersion, cur.State, cur.Version)}
	}
	return s.write(ctx, cur, from, to, mutate, by)
}

// Update changes fields of a tenant without changing its state (pending change, billing
// reference), guarded by version like a transition. No audit record is written unless
// by.Reason is set.
func (s *Store) Update(ctx context.Context, id string, expectedVersion int64, mutate func(*tenant.Tenant), by Actor) (*tenant.Tenant, error) {
	cur, err := s.GetTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	if cur.Version != expectedVersion {
		return nil, &tenant.ConflictError{TenantID: id, Reason: fmt.Sprintf("expected version %d, found %d", expectedVersion, cur.Version)}
	}
	return s.write(ctx, cur, cur.State, cur.State, mutate, by)
}

func (s *Store) write(ctx context.Context, cur *tenant.Tenant, from, to tenant.State, mutate func(*tenant.Tenant), by Actor) (*tenant.Tenant, error) {
	next, lost, err := s.writeChange(ctx, cur, to, Write{To: to, Mutate: mutate, Reason: by.Reason}, by)
	if lost {
		return nil, &tenant.ConflictError{TenantID: cur.ID, Reason: fmt.Sprintf("tenant left %s at version %d", from, cur.Version)}
	}
	return next, err
}

func (s *Store) auditItem(t *tenant.Tenant, from, to tenant.State, by Actor, at time.Time) (map[string]types.AttributeValue, error) {
	pk, _ := tenantKey(t.ID)
	// The version makes the sort key unique per tenant: two writers of the same version
	// cannot both succeed, and each successful write has exactly one audit line.
	r := auditRecord{
		PK: pk, SK: fmt.Sprintf("%s%s#v%010d", auditPrefix, ts(at), t.Version),
		TenantID: t.ID, At: ts(at), Who: by.Who, From: string(from), To: string(to),
		OperationID: by.OperationID, Reason: by.Reason, Version: t.Version,
	}
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return nil, fmt.Errorf("marshal audit %s: %w", t.ID, err)
	}
	return item, nil
}

// Audit returns the tenant's audit trail, oldest first.
func (s *Store) Audit(ctx context.Context, id string) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.auditPages(ctx, id, func(items []map[string]types.AttributeValue) error {
		for _, item := range items {
			e, err := DecodeAuditEntry(item)
			if err != nil {
				return fmt.Errorf("audit of %s: %w", id, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeAuditEntry reads an audit item as the store writes it (Audit, and readers of
// the tenant's partition such as the tenant's export).
func DecodeAuditEntry(item map[string]types.AttributeValue) (AuditEntry, error) {
	var r auditRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return AuditEntry{}, fmt.Errorf("unmarshal audit item: %w", err)
	}
	return AuditEntry{At: parseTS(r.At), Who: r.Who, From: tenant.State(r.From), To: tenant.State(r.To), OperationID: r.OperationID, Reason: r.Reason, Version: r.Version}, nil
}

// auditPages hands each page of the tenant's audit records, oldest first, to fn
// (strongly consistent), until the last page or fn's first error.
func (s *Store) auditPages(ctx context.Context, id string, fn func(items []map[string]types.AttributeValue) error) error {
	pk, _ := tenantKey(id)
	var start map[string]types.AttributeValue
	for {
		page, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.table, ConsistentRead: aws.Bool(true),
			KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :a)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: pk}, ":a": &types.AttributeValueMemberS{Value: auditPrefix},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return fmt.Errorf("read audit %s: %w", id, err)
		}
		if err := fn(page.Items); err != nil {
			return err
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		start = page.LastEvaluatedKey
	}
}

// DueCursor is where the next Due page starts; nil starts at the oldest entry. It is
// opaque to callers.
type DueCursor map[string]types.AttributeValue

// Due returns one page of at most limit tenants with something of kind due at or
// before now, oldest first, reading only the sparse Due index (never a Scan), and the
// cursor of the next page (nil after the last). A caller that removes what it handled
// from the index (clearing the pending change, purging) starts again at nil and never
// re-reads it.
func (s *Store) Due(ctx context.Context, kind string, now time.Time, after DueCursor, limit int32) ([]*tenant.Tenant, DueCursor, error) {
	page, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(DueIndex),
		KeyConditionExpression: aws.String("due_kind = :k AND due_at <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": &types.AttributeValueMemberS{Value: kind}, ":now": &types.AttributeValueMemberS{Value: ts(now)},
		},
		ExclusiveStartKey: after, Limit: aws.Int32(limit),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("query due %s: %w", kind, err)
	}
	var recs []tenantRecord
	if err := attributevalue.UnmarshalListOfMaps(page.Items, &recs); err != nil {
		return nil, nil, fmt.Errorf("unmarshal due tenants: %w", err)
	}
	out := make([]*tenant.Tenant, len(recs))
	for i, r := range recs {
		out[i] = r.toTenant()
	}
	if len(page.LastEvaluatedKey) == 0 {
		return out, nil, nil
	}
	return out, DueCursor(page.LastEvaluatedKey), nil
}

func isConflict(err error) bool {
	_, ok := err.(*tenant.ConflictError)
	return ok
}
