package stack

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// LoadData bulk-writes n application items for a tenant into the data table, each
// with a body of itemBytes characters, for exports and purges at scale. The bodies
// are base64 of a SHA-256 chain seeded by tenant and index: deterministic (two loads
// give the same items) and hard to compress (gzip keeps about three quarters), so an
// export's parts fill up as they would with ids, hashes and media references rather
// than shrinking to nothing as repeated text would. Item ids are "item#<9 digits>",
// so they sort in load order. Items go in through BulkPut (seeding, not the API).
func (s *Stack) LoadData(ctx context.Context, tenantID string, n, itemBytes int) error {
	for start := 0; start < n; start += testenv.BulkPutBatch {
		end := min(start+testenv.BulkPutBatch, n)
		items := make([]map[string]types.AttributeValue, 0, end-start)
		for i := start; i < end; i++ {
			items = append(items, map[string]types.AttributeValue{
				"tenant_id": &types.AttributeValueMemberS{Value: tenantID},
				"item_id":   &types.AttributeValueMemberS{Value: fmt.Sprintf("item#%09d", i)},
				"kind":      &types.AttributeValueMemberS{Value: "record"},
				"seq":       &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
				"body":      &types.AttributeValueMemberS{Value: body(tenantID, i, itemBytes)},
			})
		}
		if err := s.BulkPut(ctx, s.DataTable, items); err != nil {
			return fmt.Errorf("load data %s: %w", tenantID, err)
		}
	}
	return nil
}

func body(tenantID string, i, size int) string {
	out := make([]byte, 0, size+64)
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tenantID, i))
	for len(out) < size {
		out = base64.RawStdEncoding.AppendEncode(out, sum[:])
		sum = sha256.Sum256(sum[:])
	}
	return string(out[:size])
}

// BulkPut writes items straight into a table of the stack's moto (testenv.Moto.BulkPut):
// seeding at scale, not an API call.
func (s *Stack) BulkPut(ctx context.Context, table string, items []map[string]types.AttributeValue) error {
	return s.Moto.BulkPut(ctx, table, items)
}
