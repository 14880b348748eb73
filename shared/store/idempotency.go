package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Idempotency records of the HTTP API (shared/httpapi idempotency.go) live in the same
// table: pk IDEMP#<scoped key>, sk IDEMP. expires_at is an epoch in seconds, the
// table's DynamoDB TTL attribute (template.yaml TimeToLiveSpecification), so records
// vanish on their own; TTL deletes lazily, so reads treat an expired record as absent.
const (
	idempPrefix = "IDEMP#"
	skIdemp     = "IDEMP"
)

// Idempotency record statuses.
const (
	IdempotencyInProgress = "in_progress"
	IdempotencyDone       = "done"
)

// IdempotencyRecord is one claimed Idempotency-Key.
type IdempotencyRecord struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Status      string `dynamodbav:"idem_status"`
	RequestHash string `dynamodbav:"request_hash"`
	// Owner is a random token of the claim; only its owner may complete it.
	Owner string `dynamodbav:"owner"`
	// LeaseUntil (epoch ms): an in_progress claim older than this may be taken over.
	LeaseUntil int64 `dynamodbav:"lease_until"`
	// ExpiresAt (epoch s) is the TTL attribute.
	ExpiresAt int64 `dynamodbav:"expires_at"`

	// TenantRef is the tenant the request was about, set by the caller before
	// CompleteIdempotency: the answer kept holds the tenant's data, so the record is
	// found by tenant (the ByTenant index) and erased with it by a purge. A claim
	// without an answer holds only the request's hash and carries none.
	TenantRef string `dynamodbav:"tenant_ref,omitempty"`

	ResponseStatus  int               `dynamodbav:"response_status,omitempty"`
	ResponseHeaders map[string]string `dynamodbav:"response_headers,omitempty"`
	ResponseBody    string            `dynamodbav:"response_body,omitempty"`
}

func idempKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: idempPrefix + key}, "sk": &types.AttributeValueMemberS{Value: skIdemp},
	}
}

// ClaimIdempotency claims key for a request whose fingerprint is hash. It succeeds
// (claimed true, the new record) when the key is unused, expired, or held in_progress
// for the same hash by a claim whose lease has run out (a crashed attempt). Otherwise it
// returns claimed false and the record that holds the key, for the caller to replay,
// refuse (another hash) or report in progress.
func (s *Store) ClaimIdempotency(ctx context.Context, key, hash string, lease, ttl time.Duration) (claimed bool, rec *IdempotencyRecord, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		now := s.now()
		var tok [12]byte
		_, _ = rand.Read(tok[:])
		rec := &IdempotencyRecord{
			PK: idempPrefix + key, SK: skIdemp, Status: IdempotencyInProgress, RequestHash: hash, Owner: hex.EncodeToString(tok[:]),
			LeaseUntil: now.Add(lease).UnixMilli(), ExpiresAt: now.Add(ttl).Unix(),
		}
		item, err := attributevalue.MarshalMap(rec)
		if err != nil {
			return false, nil, fmt.Errorf("marshal idempotency record: %w", err)
		}
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table, Item: item,
			ConditionExpression: aws.String("attribute_not_exists(pk) OR expires_at < :now_s OR " +
				"(idem_status = :inprog AND request_hash = :hash AND lease_until < :now_ms)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now_s":  &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
				":now_ms": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
				":inprog": &types.AttributeValueMemberS{Value: IdempotencyInProgress},
				":hash":   &types.AttributeValueMemberS{Value: hash},
			},
		})
		if err == nil {
			return true, rec, nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return false, nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		cur, err := s.getIdempotency(ctx, key)
		if err != nil {
			return false, nil, err
		}
		if cur != nil && cur.ExpiresAt >= now.Unix() {
			return false, cur, nil
		}
		// Gone or expired between the put and the read: claim again.
	}
	return false, nil, errors.New("claim idempotency key: the record kept changing")
}

func (s *Store) getIdempotency(ctx context.Context, key string) (*IdempotencyRecord, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, ConsistentRead: aws.Bool(true), Key: idempKey(key)})
	if err != nil {
		return nil, fmt.Errorf("get idempotency key: %w", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var rec IdempotencyRecord
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return nil, fmt.Errorf("unmarshal idempotency record: %w", err)
	}
	return &rec, nil
}

// CompleteIdempotency stores the answer of the claim rec made. A claim that was taken
// over meanwhile (its owner changed) is left alone: ErrIdempotencyLost.
func (s *Store) CompleteIdempotency(ctx context.Context, rec *IdempotencyRecord, status int, headers map[string]string, body string) error {
	hdr, err := attributevalue.Marshal(headers)
	if err != nil {
		return fmt.Errorf("marshal headers: %w", err)
	}
	set := "SET idem_status = :done, response_status = :st, response_headers = :h, response_body = :b"
	vals := map[string]types.AttributeValue{
		":done": &types.AttributeValueMemberS{Value: IdempotencyDone}, ":st": &types.AttributeValueMemberN{Value: strconv.Itoa(status)},
		":h": hdr, ":b": &types.AttributeValueMemberS{Value: body}, ":owner": &types.AttributeValueMemberS{Value: rec.Owner},
	}
	if rec.TenantRef != "" {
		set += ", " + TenantRefAttribute + " = :tenant"
		vals[":tenant"] = &types.AttributeValueMemberS{Value: rec.TenantRef}
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: idempKey(rec.PK[len(idempPrefix):]),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: vals,
	})
	return idempUpdateErr(err)
}

// ReleaseIdempotency ends the lease of an unfinished claim at once, so that the same
// request may be retried right away (after an answer that is not kept, e.g. a 503).
func (s *Store) ReleaseIdempotency(ctx context.Context, rec *IdempotencyRecord) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: idempKey(rec.PK[len(idempPrefix):]),
		UpdateExpression:         aws.String("SET lease_until = :zero"),
		ConditionExpression:      aws.String("#owner = :owner AND idem_status = :inprog"),
		ExpressionAttributeNames: map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": &types.AttributeValueMemberN{Value: "0"}, ":owner": &types.AttributeValueMemberS{Value: rec.Owner},
			":inprog": &types.AttributeValueMemberS{Value: IdempotencyInProgress},
		},
	})
	return idempUpdateErr(err)
}

// ErrIdempotencyLost is a claim that another request took over after its lease ran out.
var ErrIdempotencyLost = errors.New("idempotency claim was taken over after its lease expired")

func idempUpdateErr(err error) error {
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ccf):
		return ErrIdempotencyLost
	}
	return fmt.Errorf("update idempotency key: %w", err)
}
