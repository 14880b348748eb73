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

// WebhookMark is the order record of one Stripe subscription. Events are ordered by
// (Created, EventID), so two events of the same second still have one order whatever
// order they arrive in. A delivery first accepts its event with one conditional write
// of the whole record (AcceptWebhookMark, on the Version it read), and only then may
// start a flow; it ends by settling or releasing the event. So of two concurrent
// deliveries of one subscription only one holds it at a time, and no older event is
// applied after a newer one.
type WebhookMark struct {
	// Created and EventID are the newest event accepted for the subscription.
	Created int64
	EventID string
	// Canceled is set once the subscription's deletion was accepted, in any order: a
	// deleted subscription never comes back.
	Canceled bool
	// OperationID is the flow the last applied event started, if any: until it is
	// done the tenant counts as busy for the next event, even before the flow's claim
	// step has marked the tenant (the flows run asynchronously).
	OperationID string
	// Pending is the event accepted and not yet applied ("" when none), PendingOp the
	// operation id reserved for the flow it may start, and LeaseUntil (epoch seconds)
	// how long the delivery that accepted it holds the subscription. A lease given up
	// (a 5xx answer) or expired (the delivery died) lets Stripe's retry of the same
	// event apply it with the same operation id, or a newer event supersede it.
	Pending    string
	PendingOp  string
	LeaseUntil int64
	// Version counts the writes of the record (0: never written by this version of
	// the webhook); every write is conditioned on it or on Pending.
	Version int64
}

// Before reports whether an event (created, id) is older than the mark.
func (m WebhookMark) Before(created int64, id string) bool {
	return created < m.Created || created == m.Created && id < m.EventID
}

// Held reports whether a delivery holds the pending event at now.
func (m WebhookMark) Held(now time.Time) bool {
	return m.Pending != "" && m.LeaseUntil > now.Unix()
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

// FinishWebhookEvent marks event id handled, with what was done (for operators).
func (s *Store) FinishWebhookEvent(ctx context.Context, id, tenantID, outcome string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: webhookEventKey(id),
		UpdateExpression:         aws.String("SET #s = :done, outcome = :o, tenant_id = :t, finished_at = :now"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":done": &types.AttributeValueMemberS{Value: webhookDone}, ":o": &types.AttributeValueMemberS{Value: outcome},
			":t": &types.AttributeValueMemberS{Value: tenantID}, ":now": &types.AttributeValueMemberS{Value: ts(s.now())},
		},
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

// WebhookMark returns the order record of a subscription (zero: none yet).
func (s *Store) WebhookMark(ctx context.Context, subscriptionID string) (WebhookMark, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: webhookSubKey(subscriptionID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return WebhookMark{}, fmt.Errorf("read webhook order of %s: %w", subscriptionID, err)
	}
	var m WebhookMark
	m.Created, m.LeaseUntil, m.Version = numAttr(out.Item, "last_created"), numAttr(out.Item, "lease_until"), numAttr(out.Item, "version")
	m.EventID, m.OperationID = strAttr(out.Item, "last_event"), strAttr(out.Item, "operation_id")
	m.Pending, m.PendingOp = strAttr(out.Item, "pending_event"), strAttr(out.Item, "pending_op")
	if v, ok := out.Item["canceled"].(*types.AttributeValueMemberBOOL); ok {
		m.Canceled = v.Value
	}
	return m, nil
}

func numAttr(item map[string]types.AttributeValue, name string) int64 {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(v.Value, 10, 64)
	return n
}

func strAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// AcceptWebhookMark writes next as the subscription's order record, for tenantID, if
// the record is still at version seen (the mark the caller decided on); next.Version
// is ignored, the record gets seen+1. False means another delivery wrote the record
// since it was read: read it again and decide again.
func (s *Store) AcceptWebhookMark(ctx context.Context, subscriptionID, tenantID string, seen int64, next WebhookMark) (bool, error) {
	item := webhookSubKey(subscriptionID)
	item["last_created"], item["last_event"] = num(next.Created), &types.AttributeValueMemberS{Value: next.EventID}
	item["canceled"] = &types.AttributeValueMemberBOOL{Value: next.Canceled}
	item["tenant_id"], item["version"] = &types.AttributeValueMemberS{Value: tenantID}, num(seen+1)
	item[TTLAttribute] = num(s.now().Add(WebhookRetention).Unix())
	for name, v := range map[string]string{"operation_id": next.OperationID, "pending_event": next.Pending, "pending_op": next.PendingOp} {
		if v != "" {
			item[name] = &types.AttributeValueMemberS{Value: v}
		}
	}
	if next.Pending != "" {
		item["lease_until"] = num(next.LeaseUntil)
	}
	in := &dynamodb.PutItemInput{TableName: &s.table, Item: item}
	if seen == 0 {
		// No record yet, or one written before records had a version.
		in.ConditionExpression = aws.String("attribute_not_exists(version)")
	} else {
		in.ConditionExpression = aws.String("version = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(seen)}
	}
	_, err := s.db.PutItem(ctx, in)
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("accept webhook event %s of %s: %w", next.EventID, subscriptionID, err)
	}
	return true, nil
}

// SettleWebhookMark records that the pending event eventID was applied: opID, the
// flow it started ("" none), becomes the record's operation, and the subscription is
// free for its next event. False: the event is no longer the pending one (its lease
// ran out and a newer event superseded it).
func (s *Store) SettleWebhookMark(ctx context.Context, subscriptionID, eventID, opID string) (bool, error) {
	set := "SET version = version + :one, #x = :x"
	vals := map[string]types.AttributeValue{
		":e": &types.AttributeValueMemberS{Value: eventID}, ":one": num(1), ":x": num(s.now().Add(WebhookRetention).Unix()),
	}
	if opID != "" {
		set += ", operation_id = :op"
		vals[":op"] = &types.AttributeValueMemberS{Value: opID}
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: webhookSubKey(subscriptionID),
		UpdateExpression:          aws.String(set + " REMOVE pending_event, pending_op, lease_until"),
		ConditionExpression:       aws.String("pending_event = :e"),
		ExpressionAttributeNames:  map[string]string{"#x": TTLAttribute},
		ExpressionAttributeValues: vals,
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("settle webhook event %s of %s: %w", eventID, subscriptionID, err)
	}
	return true, nil
}

// ReleaseWebhookMark gives up the lease of the pending event eventID (its delivery
// answers 5xx), so Stripe's retry of it, or a newer event, can take the subscription
// at once. The reserved operation id is forgotten too: an operation of that id may
// exist, FAILED because its start failed, and the retry needs a new one.
func (s *Store) ReleaseWebhookMark(ctx context.Context, subscriptionID, eventID string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: webhookSubKey(subscriptionID),
		UpdateExpression:    aws.String("SET version = version + :one, lease_until = :zero REMOVE pending_op"),
		ConditionExpression: aws.String("pending_event = :e"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":e": &types.AttributeValueMemberS{Value: eventID}, ":one": num(1), ":zero": num(0),
		},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release webhook event %s of %s: %w", eventID, subscriptionID, err)
	}
	return nil
}
