package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

type operationRecord struct {
	PK               string `dynamodbav:"pk"`
	SK               string `dynamodbav:"sk"`
	OperationID      string `dynamodbav:"operation_id"`
	TenantID         string `dynamodbav:"tenant_id"`
	Kind             string `dynamodbav:"kind"`
	Status           string `dynamodbav:"status"`
	FromPlan         string `dynamodbav:"from_plan,omitempty"`
	ToPlan           string `dynamodbav:"to_plan,omitempty"`
	AtPeriodEnd      bool   `dynamodbav:"at_period_end,omitempty"`
	EffectiveAt      string `dynamodbav:"effective_at,omitempty"`
	RequestedBy      string `dynamodbav:"requested_by,omitempty"`
	Error            string `dynamodbav:"error,omitempty"`
	Cause            string `dynamodbav:"cause,omitempty"`
	CreatedAt        string `dynamodbav:"created_at"`
	UpdatedAt        string `dynamodbav:"updated_at"`
	BillingAttempted bool   `dynamodbav:"billing_attempted,omitempty"`
}

func opKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: opPrefix + id}, "sk": &types.AttributeValueMemberS{Value: skOp},
	}
}

// CreateOperation stores a new operation. An existing id is a *tenant.ConflictError.
func (s *Store) CreateOperation(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error) {
	now := s.now().UTC()
	o := *op
	o.CreatedAt, o.UpdatedAt = now, now
	r := operationRecord{
		PK: opPrefix + o.ID, SK: skOp, OperationID: o.ID, TenantID: o.TenantID, Kind: o.Kind, Status: string(o.Status),
		FromPlan: string(o.FromPlan), ToPlan: string(o.ToPlan), AtPeriodEnd: o.AtPeriodEnd, RequestedBy: o.RequestedBy,
		CreatedAt: ts(now), UpdatedAt: ts(now),
	}
	if o.EffectiveAt != nil {
		r.EffectiveAt = ts(*o.EffectiveAt)
	}
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return nil, fmt.Errorf("marshal operation %s: %w", o.ID, err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if err != nil {
		return nil, conflictFrom(err, o.TenantID, "operation "+o.ID+" already exists", "create operation")
	}
	return &o, nil
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
	return &tenant.Operation{
		ID: r.OperationID, TenantID: r.TenantID, Kind: r.Kind, Status: tenant.OperationStatus(r.Status),
		FromPlan: tenant.Plan(r.FromPlan), ToPlan: tenant.Plan(r.ToPlan), AtPeriodEnd: r.AtPeriodEnd,
		EffectiveAt: parseTSPtr(r.EffectiveAt), RequestedBy: r.RequestedBy, Error: r.Error, Cause: r.Cause,
		CreatedAt: parseTS(r.CreatedAt), UpdatedAt: parseTS(r.UpdatedAt), BillingAttempted: r.BillingAttempted,
	}, nil
}

// SetOperationStatus moves an unfinished operation to status (with error and cause for
// FAILED). Repeating the same final status is a no-op; changing a finished operation is
// a *tenant.ConflictError.
func (s *Store) SetOperationStatus(ctx context.Context, id string, status tenant.OperationStatus, errName, cause string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: opKey(id),
		UpdateExpression:         aws.String("SET #st = :st, #e = :e, cause = :c, updated_at = :now"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND (#st IN (:sched, :run) OR #st = :st)"),
		ExpressionAttributeNames: map[string]string{"#st": "status", "#e": "error"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":st": &types.AttributeValueMemberS{Value: string(status)}, ":e": &types.AttributeValueMemberS{Value: errName},
			":c": &types.AttributeValueMemberS{Value: cause}, ":now": &types.AttributeValueMemberS{Value: ts(s.now())},
			":sched": &types.AttributeValueMemberS{Value: string(tenant.OpScheduled)}, ":run": &types.AttributeValueMemberS{Value: string(tenant.OpRunning)},
		},
	})
	if err != nil {
		return conflictFrom(err, id, "operation already finished", "set operation status")
	}
	return nil
}

// MarkBillingAttempted records, before the billing system is called, that this
// operation may have changed billing.
func (s *Store) MarkBillingAttempted(ctx context.Context, id string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: opKey(id),
		UpdateExpression:          aws.String("SET billing_attempted = :t, updated_at = :now"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}, ":now": &types.AttributeValueMemberS{Value: ts(s.now())}},
	})
	if err != nil {
		return conflictFrom(err, id, "operation does not exist", "mark billing attempted")
	}
	return nil
}
