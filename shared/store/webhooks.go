package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Items of the Stripe webhook (shared/webhook) in the control-plane table. Both carry
// TTLAttribute, so DynamoDB forgets them on its own: Stripe retries a delivery for at
// most three days, so after WebhookRetention no copy of an event and no event older
// than a watermark can still arrive.
const (
	webhookEventPrefix = "WEBHOOK#"
	webhookSubPrefix   = "WEBHOOKSUB#"
	skWebhookEvent     = "EVENT"
	skWebhookOrder     = "ORDER"
	// TTLAttribute is the table's TimeToLiveSpecification attribute (epoch seconds).
	TTLAttribute = "expires_at"
	// WebhookRetention is how long event and ordering records are kept.
	WebhookRetention = 30 * 24 * time.Hour
)

// Status of a webhook event record.
const (
	webhookPending = "PENDING"
	webhookDone    = "DONE"
)

// WebhookMark is the newest event applied to one Stripe subscription: events are
// ordered by (Created, EventID), so two events of the same second still have one
// order whatever order they arrive in. Canceled is set once the subscription's
// deletion was seen, in any order: a deleted subscription never comes back.
type WebhookMark struct {
	Created  int64
	EventID  string
	Canceled bool
	// OperationID is the flow the last applied event started, if any: until it is
	// done the tenant counts as busy for the next event, even before the flow's claim
	// step has marked the tenant (the flows run asynchronously).
	OperationID string
}

// Before reports whether an event (created, id) is older than the mark.
func (m WebhookMark) Before(created int64, id string) bool {
	return created < m.Created || created == m.Created && id < m.EventID
}

func webhookEventKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: webhookEventPrefix + id}, "sk": &types.AttributeValueMemberS{Value: skWebhookEvent},
	}
}

func webhookSubKey(sub string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: webhookSubPrefix + sub}, "sk": &types.AttributeValueMemberS{Value: skWebhookOrder},
	}
}

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// ClaimWebhookEvent records that this delivery handles event id, for lease. It is
// false when the event was handled already, or another delivery holds an unexpired
// lease on it (Stripe may deliver one event twice at once); a lease left by a delivery
// that died or gave up (ReleaseWebhookEvent) can be claimed again.
func (s *Store) ClaimWebhookEvent(ctx context.Context, id, eventType string, lease time.Duration) (bool, error) {
	now := s.now()
	item := webhookEventKey(id)
	item["status"] = &types.AttributeValueMemberS{Value: webhookPending}
	item["event_type"] = &types.AttributeValueMemberS{Value: eventType}
	item["lease_until"] = num(now.Add(lease).Unix())
	item[TTLAttribute] = num(now.Add(WebhookRetention).Unix())
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR (#s <> :done AND lease_until < :now)"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":done": &types.AttributeValueMemberS{Value: webhookDone}, ":now": num(now.Unix()),
		},
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim webhook event %s: %w", id, err)
	}
	return true, nil
}

// FinishWebhookEvent marks event id handled, with what was done (for operators). The
// record names its tenant (tenant_id, and tenant_ref for the ByTenant index), so a
// purge finds and erases it.
func (s *Store) FinishWebhookEvent(ctx context.Context, id, tenantID, outcome string) error {
	set := "SET #s = :done, outcome = :o, finished_at = :now"
	vals := map[string]types.AttributeValue{
		":done": &types.AttributeValueMemberS{Value: webhookDone}, ":o": &types.AttributeValueMemberS{Value: outcome},
		":now": &types.AttributeValueMemberS{Value: ts(s.now())},
	}
	if tenantID != "" { // tenant_id and tenant_ref are index keys, which may not be empty
		set += ", tenant_id = :t, " + TenantRefAttribute + " = :t"
		vals[":t"] = &types.AttributeValueMemberS{Value: tenantID}
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: webhookEventKey(id),
		UpdateExpression:          aws.String(set),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: vals,
	})
	if err != nil {
		return fmt.Errorf("finish webhook event %s: %w", id, err)
	}
	return nil
}

// ReleaseWebhookEvent gives up this delivery's lease so Stripe's next retry of the
// event is handled (the delivery is answered 5xx).
func (s *Store) ReleaseWebhookEvent(ctx context.Context, id string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: webhookEventKey(id),
		UpdateExpression:          aws.String("SET lease_until = :zero"),
		ConditionExpression:       aws.String("#s = :pending"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":pending": &types.AttributeValueMemberS{Value: webhookPending}},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release webhook event %s: %w", id, err)
	}
	return nil
}

// WebhookMark returns the newest event applied to a subscription (zero: none yet).
func (s *Store) WebhookMark(ctx context.Context, subscriptionID string) (WebhookMark, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: webhookSubKey(subscriptionID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return WebhookMark{}, fmt.Errorf("read webhook order of %s: %w", subscriptionID, err)
	}
	var m WebhookMark
	if v, ok := out.Item["last_created"].(*types.AttributeValueMemberN); ok {
		m.Created, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	if v, ok := out.Item["last_event"].(*types.AttributeValueMemberS); ok {
		m.EventID = v.Value
	}
	if v, ok := out.Item["canceled"].(*types.AttributeValueMemberBOOL); ok {
		m.Canceled = v.Value
	}
	if v, ok := out.Item["operation_id"].(*types.AttributeValueMemberS); ok {
		m.OperationID = v.Value
	}
	return m, nil
}

// AdvanceWebhookMark records event (created, id) as the newest applied to a
// subscription, unless a newer one is recorded already (then false: a concurrent
// delivery of a newer event won). canceled also marks the subscription deleted; that
// mark is set whatever the order. opID is the flow the event started ("" none).
func (s *Store) AdvanceWebhookMark(ctx context.Context, subscriptionID, tenantID string, created int64, id string, canceled bool, opID string) (bool, error) {
	vals := map[string]types.AttributeValue{
		":c": num(created), ":id": &types.AttributeValueMemberS{Value: id}, ":t": &types.AttributeValueMemberS{Value: tenantID},
		":x": num(s.now().Add(WebhookRetention).Unix()), ":op": &types.AttributeValueMemberS{Value: opID},
	}
	names := map[string]string{"#x": TTLAttribute}
	if canceled {
		vals[":true"] = &types.AttributeValueMemberBOOL{Value: true}
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: webhookSubKey(subscriptionID),
			UpdateExpression:          aws.String("SET canceled = :true, tenant_id = :t, " + TenantRefAttribute + " = :t, #x = :x, operation_id = :op, last_created = if_not_exists(last_created, :c), last_event = if_not_exists(last_event, :id)"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: vals,
		})
		if err != nil {
			return false, fmt.Errorf("mark subscription %s canceled: %w", subscriptionID, err)
		}
		return true, nil
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: webhookSubKey(subscriptionID),
		UpdateExpression:          aws.String("SET last_created = :c, last_event = :id, tenant_id = :t, " + TenantRefAttribute + " = :t, #x = :x, operation_id = :op"),
		ConditionExpression:       aws.String("attribute_not_exists(last_created) OR last_created < :c OR (last_created = :c AND last_event <= :id)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("advance webhook order of %s: %w", subscriptionID, err)
	}
	return true, nil
}
