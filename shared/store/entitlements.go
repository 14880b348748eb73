package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

type entitlementsRecord struct {
	PK             string             `dynamodbav:"pk"`
	SK             string             `dynamodbav:"sk"`
	TenantID       string             `dynamodbav:"tenant_id"`
	Plan           string             `dynamodbav:"plan"`
	Limits         tenant.Limits      `dynamodbav:"limits"`
	Access         string             `dynamodbav:"access,omitempty"`
	OperationID    string             `dynamodbav:"operation_id,omitempty"`
	Previous       *tenant.PlanLimits `dynamodbav:"previous,omitempty"`
	EventPublished bool               `dynamodbav:"event_published"`
	Overrides      string             `dynamodbav:"overrides,omitempty"` // JSON, as on the tenant
	Revision       int64              `dynamodbav:"revision,omitempty"`
	ChangePending  bool               `dynamodbav:"change_pending,omitempty"`
	Version        int64              `dynamodbav:"version"`
	UpdatedAt      string             `dynamodbav:"updated_at"`
}

func entitlementsKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: tenantPrefix + id}, "sk": &types.AttributeValueMemberS{Value: skEntitle},
	}
}

// GetEntitlements reads a tenant's entitlements. Missing → *tenant.NotFoundError.
func (s *Store) GetEntitlements(ctx context.Context, id string) (*tenant.Entitlements, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: entitlementsKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get entitlements %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, &tenant.NotFoundError{Kind: "entitlements", ID: id}
	}
	var r entitlementsRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("unmarshal entitlements %s: %w", id, err)
	}
	e := &tenant.Entitlements{
		TenantID: r.TenantID, Plan: tenant.Plan(r.Plan), Limits: r.Limits, Access: r.Access, OperationID: r.OperationID,
		Previous: r.Previous, EventPublished: r.EventPublished, Revision: r.Revision, ChangePending: r.ChangePending,
		Version: r.Version, UpdatedAt: parseTS(r.UpdatedAt),
	}
	if r.Overrides != "" {
		var o tenant.Overrides
		if json.Unmarshal([]byte(r.Overrides), &o) == nil {
			e.Overrides = &o
		}
	}
	return e, nil
}

// PutEntitlements writes e if the stored version is still expectedVersion (0 = must not
// exist yet). The stored version becomes expectedVersion+1.
func (s *Store) PutEntitlements(ctx context.Context, e *tenant.Entitlements, expectedVersion int64) (*tenant.Entitlements, error) {
	put, n, err := s.entitlementsPut(e, expectedVersion)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.PutItemInput{TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
		ExpressionAttributeValues: put.ExpressionAttributeValues}
	if _, err := s.db.PutItem(ctx, in); err != nil {
		return nil, conflictFrom(err, n.TenantID, "entitlements changed concurrently", "put entitlements")
	}
	return n, nil
}

// entitlementsPut is the conditional put of e over version expectedVersion (0: the item
// must not exist), and the entitlements as written.
func (s *Store) entitlementsPut(e *tenant.Entitlements, expectedVersion int64) (*types.Put, *tenant.Entitlements, error) {
	n := *e
	n.Version, n.UpdatedAt = expectedVersion+1, s.now().UTC()
	r := entitlementsRecord{
		PK: tenantPrefix + n.TenantID, SK: skEntitle, TenantID: n.TenantID, Plan: string(n.Plan), Limits: n.Limits, Access: n.Access,
		OperationID: n.OperationID, Previous: n.Previous, EventPublished: n.EventPublished, Revision: n.Revision, ChangePending: n.ChangePending,
		Version: n.Version, UpdatedAt: ts(n.UpdatedAt),
	}
	if !n.Overrides.Empty() {
		b, _ := json.Marshal(n.Overrides) // strings, numbers, booleans and a time
		r.Overrides = string(b)
	}
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal entitlements %s: %w", n.TenantID, err)
	}
	put := &types.Put{TableName: &s.table, Item: item}
	if expectedVersion == 0 {
		put.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		put.ConditionExpression = aws.String("version = :v")
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(expectedVersion, 10)}}
	}
	return put, &n, nil
}
