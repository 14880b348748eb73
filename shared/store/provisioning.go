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

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// ProvisioningSortKeyPrefix starts the sort key of a provisioning request of the
// hook (shared/apphook): the requests live in their tenant's partition, so the purge
// erases them with it, and an export leaves them out (they hold task tokens).
const ProvisioningSortKeyPrefix = "PROVISIONING#"

type provisioningRecord struct {
	PK               string        `dynamodbav:"pk"`
	SK               string        `dynamodbav:"sk"`
	ID               string        `dynamodbav:"request_id"`
	TenantID         string        `dynamodbav:"tenant_id"`
	OperationID      string        `dynamodbav:"operation_id"`
	Kind             string        `dynamodbav:"kind"`
	Action           string        `dynamodbav:"action"`
	Attempt          int           `dynamodbav:"attempt"`
	FromPlan         string        `dynamodbav:"from_plan"`
	ToPlan           string        `dynamodbav:"to_plan"`
	Limits           tenant.Limits `dynamodbav:"limits"`
	Status           string        `dynamodbav:"status"`
	Token            string        `dynamodbav:"task_token,omitempty"`
	Error            string        `dynamodbav:"error,omitempty"`
	Cause            string        `dynamodbav:"cause,omitempty"`
	Output           string        `dynamodbav:"output,omitempty"`
	Published        bool          `dynamodbav:"published"`
	TimeoutSeconds   int           `dynamodbav:"timeout_seconds"`
	HeartbeatSeconds int           `dynamodbav:"heartbeat_seconds"`
	RequestedAt      string        `dynamodbav:"requested_at"`
	AnsweredAt       string        `dynamodbav:"answered_at,omitempty"`
	Version          int64         `dynamodbav:"version"`
}

func provisioningKey(tenantID, id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: tenantPrefix + tenantID}, "sk": &types.AttributeValueMemberS{Value: ProvisioningSortKeyPrefix + id},
	}
}

// GetProvisioning reads a provisioning request. Missing → *tenant.NotFoundError.
func (s *Store) GetProvisioning(ctx context.Context, tenantID, id string) (*apphook.Request, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: provisioningKey(tenantID, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get provisioning request %s of %s: %w", id, tenantID, err)
	}
	if out.Item == nil {
		return nil, &tenant.NotFoundError{Kind: "provisioning request", ID: id}
	}
	var r provisioningRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("unmarshal provisioning request %s: %w", id, err)
	}
	req := &apphook.Request{ID: r.ID, TenantID: r.TenantID, OperationID: r.OperationID, Kind: r.Kind, Action: r.Action, Attempt: r.Attempt,
		FromPlan: tenant.Plan(r.FromPlan), ToPlan: tenant.Plan(r.ToPlan), Limits: r.Limits, Status: r.Status, Token: r.Token,
		Error: r.Error, Cause: r.Cause, Published: r.Published, TimeoutSeconds: r.TimeoutSeconds, HeartbeatSeconds: r.HeartbeatSeconds,
		RequestedAt: parseTS(r.RequestedAt), Version: r.Version}
	if r.Output != "" {
		req.Output = json.RawMessage(r.Output)
	}
	if r.AnsweredAt != "" {
		at := parseTS(r.AnsweredAt)
		req.AnsweredAt = &at
	}
	return req, nil
}

// PutProvisioning writes r if the stored version is still expected (0: the request
// must not exist yet); r.Version becomes expected+1. A lost condition is
// *tenant.ConflictError.
func (s *Store) PutProvisioning(ctx context.Context, r *apphook.Request, expected int64) error {
	rec := provisioningRecord{PK: tenantPrefix + r.TenantID, SK: ProvisioningSortKeyPrefix + r.ID, ID: r.ID, TenantID: r.TenantID,
		OperationID: r.OperationID, Kind: r.Kind, Action: r.Action, Attempt: r.Attempt, FromPlan: string(r.FromPlan), ToPlan: string(r.ToPlan),
		Limits: r.Limits, Status: r.Status, Token: r.Token, Error: r.Error, Cause: r.Cause, Output: string(r.Output), Published: r.Published,
		TimeoutSeconds: r.TimeoutSeconds, HeartbeatSeconds: r.HeartbeatSeconds, RequestedAt: ts(r.RequestedAt), Version: expected + 1}
	if r.AnsweredAt != nil {
		rec.AnsweredAt = ts(*r.AnsweredAt)
	}
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return fmt.Errorf("marshal provisioning request %s: %w", r.ID, err)
	}
	in := &dynamodb.PutItemInput{TableName: &s.table, Item: item}
	if expected == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("version = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(expected, 10)}}
	}
	if _, err := s.db.PutItem(ctx, in); err != nil {
		return conflictFrom(err, r.TenantID, "provisioning request "+r.ID+" changed meanwhile", "put provisioning request")
	}
	r.Version = expected + 1
	return nil
}

var _ apphook.Store = (*Store)(nil)
