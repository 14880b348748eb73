package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// bulkPutPath is the seeding path tools/moto_server.py serves besides the AWS API.
const bulkPutPath = "/_tenantflow/dynamodb/bulk-put"

// BulkPutBatch is how many items one bulk request carries: large enough that the
// HTTP round trip is noise, small enough that a request stays a few MB.
const BulkPutBatch = 5000

// BulkPut writes items into a table of the emulator directly, about four times
// faster than BatchWriteItem through moto's request parser: it is how benchmarks and
// scale tests seed hundreds of thousands of items. It bypasses IAM and conditions,
// so it is for seeding only; what it writes is read back through the real API.
func (m *Moto) BulkPut(ctx context.Context, table string, items []map[string]types.AttributeValue) error {
	for start := 0; start < len(items); start += BulkPutBatch {
		batch := items[start:min(start+BulkPutBatch, len(items))]
		wire := make([]map[string]any, len(batch))
		for i, it := range batch {
			m, err := wireItem(it)
			if err != nil {
				return fmt.Errorf("bulk put %s: item %d: %w", table, start+i, err)
			}
			wire[i] = m
		}
		body, err := json.Marshal(map[string]any{"table": table, "region": Region, "items": wire})
		if err != nil {
			return fmt.Errorf("bulk put %s: %w", table, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+bulkPutPath, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("bulk put %s: %w", table, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("bulk put %s: %w", table, err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("bulk put %s [%d,%d): HTTP %d: %s", table, start, start+len(batch), resp.StatusCode, answer)
		}
	}
	return nil
}

// wireItem is an item in DynamoDB's JSON wire format ({"attr": {"S": "..."}}), the
// form moto stores.
func wireItem(item map[string]types.AttributeValue) (map[string]any, error) {
	out := make(map[string]any, len(item))
	for k, v := range item {
		w, err := wireValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		out[k] = w
	}
	return out, nil
}

func wireValue(v types.AttributeValue) (map[string]any, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": v.Value}, nil
	case *types.AttributeValueMemberN:
		return map[string]any{"N": v.Value}, nil
	case *types.AttributeValueMemberB:
		return map[string]any{"B": base64.StdEncoding.EncodeToString(v.Value)}, nil
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}, nil
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": v.Value}, nil
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}, nil
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}, nil
	case *types.AttributeValueMemberBS:
		enc := make([]string, len(v.Value))
		for i, b := range v.Value {
			enc[i] = base64.StdEncoding.EncodeToString(b)
		}
		return map[string]any{"BS": enc}, nil
	case *types.AttributeValueMemberM:
		m, err := wireItem(v.Value)
		if err != nil {
			return nil, err
		}
		return map[string]any{"M": m}, nil
	case *types.AttributeValueMemberL:
		l := make([]map[string]any, len(v.Value))
		for i, e := range v.Value {
			w, err := wireValue(e)
			if err != nil {
				return nil, err
			}
			l[i] = w
		}
		return map[string]any{"L": l}, nil
	default:
		return nil, fmt.Errorf("unsupported attribute value %T", v)
	}
}
