package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Items about a tenant that live outside its partition TENANT#<id> carry the tenant's
// id in TenantRefAttribute: operation records (OP#<id>), the API's Idempotency-Key
// records once they keep an answer (IDEMP#...), and the Stripe webhook's event and
// subscription-order records (WEBHOOK#..., WEBHOOKSUB#...). The sparse ByTenant index
// (HASH tenant_ref, RANGE pk) finds them all with one Query per tenant, never a Scan:
// the purge erases them, the export reads the operations. Tenant items, entitlements,
// audit records and export jobs live in the tenant's partition and carry no tenant_ref.
const (
	// ByTenantIndex is the sparse index of items about a tenant outside its partition.
	ByTenantIndex = "ByTenant"
	// TenantRefAttribute is its hash key: the id of the tenant an item is about.
	TenantRefAttribute = "tenant_ref"
)

// RefSource names the certificate source (tenant.Source*) an item of the ByTenant
// index belongs to, from its partition key; "" for a key of no known kind.
func RefSource(pk string) string {
	switch {
	case strings.HasPrefix(pk, opPrefix):
		return tenant.SourceOperations
	case strings.HasPrefix(pk, idempPrefix):
		return tenant.SourceIdempotency
	case strings.HasPrefix(pk, webhookEventPrefix), strings.HasPrefix(pk, webhookSubPrefix):
		return tenant.SourceWebhooks
	}
	return ""
}

// operationsPage is how many operations one ListTenantOperations call returns at most.
const operationsPage = 100

// ListTenantOperations returns the operations recorded for tenantID, ordered by
// operation id (ids start with their creation time, so oldest first), at most 100 per
// call, whatever their status, audited or not: an operation whose claim was refused
// or whose start failed is there too. cursor is the next of the previous call (""
// for the first); next is "" after the last page. The index is eventually
// consistent: an operation created a moment ago may be missing.
func (s *Store) ListTenantOperations(ctx context.Context, tenantID, cursor string) (ops []*tenant.Operation, next string, err error) {
	start, err := decodeRefCursor(cursor, tenantID)
	if err != nil {
		return nil, "", err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(ByTenantIndex),
		KeyConditionExpression:   aws.String("#t = :t AND begins_with(pk, :op)"),
		ExpressionAttributeNames: map[string]string{"#t": TenantRefAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberS{Value: tenantID}, ":op": &types.AttributeValueMemberS{Value: opPrefix},
		},
		ExclusiveStartKey: start,
		Limit:             aws.Int32(operationsPage),
	})
	if err != nil {
		return nil, "", fmt.Errorf("list operations of %s: %w", tenantID, err)
	}
	var recs []operationRecord
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &recs); err != nil {
		return nil, "", fmt.Errorf("unmarshal operations of %s: %w", tenantID, err)
	}
	ops = make([]*tenant.Operation, len(recs))
	for i, r := range recs {
		ops[i] = r.toOperation()
	}
	if len(out.LastEvaluatedKey) > 0 {
		next = encodeRefCursor(out.LastEvaluatedKey)
	}
	return ops, next, nil
}

// A ByTenant cursor is the index's LastEvaluatedKey (string attributes only) as
// base64 JSON; it is only valid for the tenant it was made for.
func encodeRefCursor(k map[string]types.AttributeValue) string {
	m := map[string]string{}
	for name, v := range k {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			m[name] = s.Value
		}
	}
	b, _ := json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeRefCursor(cursor, tenantID string) (map[string]types.AttributeValue, error) {
	if cursor == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	var m map[string]string
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || m[TenantRefAttribute] != tenantID || m["pk"] == "" || m["sk"] == "" {
		return nil, &tenant.ValidationError{Field: "cursor", Reason: "not a cursor of this tenant's operations"}
	}
	out := map[string]types.AttributeValue{}
	for k, v := range m {
		out[k] = &types.AttributeValueMemberS{Value: v}
	}
	return out, nil
}
