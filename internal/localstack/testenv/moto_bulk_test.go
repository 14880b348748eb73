package testenv

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestBulkPutReadsBackThroughTheAPI: items seeded with BulkPut (every attribute type,
// nested, across more than one bulk request) are what GetItem and Query return, so a
// benchmark that seeds this way measures the same table the API would have written.
func TestBulkPutReadsBackThroughTheAPI(t *testing.T) {
	m, err := StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(m.Config())
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String("bulk"),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := BulkPutBatch + 7
	items := make([]map[string]types.AttributeValue, n)
	for i := range items {
		items[i] = map[string]types.AttributeValue{
			"pk":   &types.AttributeValueMemberS{Value: "p"},
			"sk":   &types.AttributeValueMemberS{Value: fmt.Sprintf("%06d", i)},
			"n":    &types.AttributeValueMemberN{Value: fmt.Sprint(i)},
			"b":    &types.AttributeValueMemberB{Value: []byte{0, 1, byte(i)}},
			"ok":   &types.AttributeValueMemberBOOL{Value: i%2 == 0},
			"null": &types.AttributeValueMemberNULL{Value: true},
			"ss":   &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
			"ns":   &types.AttributeValueMemberNS{Value: []string{"1", "2"}},
			"bs":   &types.AttributeValueMemberBS{Value: [][]byte{{9}, {8, 7}}},
			"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "x"}, &types.AttributeValueMemberN{Value: "3"}}},
			}},
		}
	}
	if err := m.BulkPut(ctx, "bulk", items); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, BulkPutBatch, n - 1} {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("bulk"), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			"pk": items[i]["pk"], "sk": items[i]["sk"],
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normal(out.Item), normal(items[i])) {
			t.Fatalf("item %d read back as %#v, wrote %#v", i, out.Item, items[i])
		}
	}
	count, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("bulk"), KeyConditionExpression: aws.String("pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "p"}}, Select: types.SelectCount})
	if err != nil {
		t.Fatal(err)
	}
	if int(count.Count) != n {
		t.Fatalf("Query counts %d items, bulk put %d", count.Count, n)
	}
	if err := m.BulkPut(ctx, "no-such-table", items[:1]); err == nil {
		t.Fatal("BulkPut into a missing table succeeded")
	}
}

// normal renders an item as plain Go values so that two decodings compare equal
// (the SDK's member structs carry unexported no-copy fields).
func normal(item map[string]types.AttributeValue) map[string]any {
	out := map[string]any{}
	for k, v := range item {
		out[k] = plain(v)
	}
	return out
}

func plain(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberM:
		return normal(v.Value)
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = plain(e)
		}
		return l
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberB:
		return v.Value
	case *types.AttributeValueMemberBOOL:
		return v.Value
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberSS:
		return v.Value
	case *types.AttributeValueMemberNS:
		return "NS:" + fmt.Sprint(v.Value)
	case *types.AttributeValueMemberBS:
		return v.Value
	}
	return fmt.Sprintf("%T", v)
}
