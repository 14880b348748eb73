package store

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The key layout a purge needs to find every control-plane item of a tenant, exported
// so the purge's own adapter (shared/purge) does not repeat the prefixes.

// TenantPartition is the partition key of every item of a tenant: the tenant item, its
// entitlements and its audit trail.
func TenantPartition(id string) string { return tenantPrefix + id }

// TenantSortKey is the sort key of the tenant item itself, which a purge keeps as the
// tombstone.
const TenantSortKey = skTenant

// IsAuditSortKey reports whether sk is an audit record's: a purge keeps the audit trail
// (scrubbed of personal data).
func IsAuditSortKey(sk string) bool { return strings.HasPrefix(sk, auditPrefix) }

// OperationKey is the primary key of an operation's record.
func OperationKey(id string) map[string]types.AttributeValue { return opKey(id) }

// ScrubAudit rewrites the audit trail of tenant id without personal data: each record
// keeps its time, transition, version and operation id, its `who` becomes role(who)
// (a role such as "system", "operator" or "tenant", never a person's subject), and its
// free-text reason is removed. Records already scrubbed are left alone, so repeating it
// is harmless. It returns how many records it rewrote.
func (s *Store) ScrubAudit(ctx context.Context, id string, role func(who string) string) (int, error) {
	n := 0
	err := s.auditPages(ctx, id, func(items []map[string]types.AttributeValue) error {
		for _, item := range items {
			who, _ := item["who"].(*types.AttributeValueMemberS)
			_, hasReason := item["reason"]
			scrubbed := role("")
			if who != nil {
				scrubbed = role(who.Value)
			}
			if !hasReason && who != nil && who.Value == scrubbed {
				continue
			}
			next := make(map[string]types.AttributeValue, len(item))
			for k, v := range item {
				next[k] = v
			}
			delete(next, "reason")
			next["who"] = &types.AttributeValueMemberS{Value: scrubbed}
			_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: next, ConditionExpression: aws.String("attribute_exists(pk)")})
			if err != nil {
				return conflictFrom(err, id, "audit record disappeared while it was scrubbed", "scrub audit")
			}
			n++
		}
		return nil
	})
	return n, err
}
