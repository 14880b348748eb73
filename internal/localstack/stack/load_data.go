package stack

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// LoadData bulk-writes n application items for a tenant into the data table, each
// with a body of itemBytes characters, for exports and purges at scale. The bodies
// are base64 of a SHA-256 chain seeded by tenant and index: deterministic (two loads
// give the same items) and hard to compress (gzip keeps about three quarters), so an
// export's parts fill up as they would with ids, hashes and media references rather
// than shrinking to nothing as repeated text would. Item ids are "item#<9 digits>",
// so they sort in load order.
func (s *Stack) LoadData(ctx context.Context, tenantID string, n, itemBytes int) error {
	const batch, writers = 25, 4
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		slots    = make(chan struct{}, writers)
	)
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }
	for start := 0; start < n && ctx.Err() == nil; start += batch {
		end := min(start+batch, n)
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			reqs := make([]types.WriteRequest, 0, end-start)
			for i := start; i < end; i++ {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
					"tenant_id": &types.AttributeValueMemberS{Value: tenantID},
					"item_id":   &types.AttributeValueMemberS{Value: fmt.Sprintf("item#%09d", i)},
					"kind":      &types.AttributeValueMemberS{Value: "record"},
					"seq":       &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
					"body":      &types.AttributeValueMemberS{Value: body(tenantID, i, itemBytes)},
				}}})
			}
			if err := s.batchWrite(ctx, s.DataTable, reqs); err != nil {
				fail(fmt.Errorf("load data %s [%d,%d): %w", tenantID, start, end, err))
			}
		}()
	}
	wg.Wait()
	return firstErr
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
