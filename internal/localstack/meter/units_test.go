package meter_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/internal/localstack/meter"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// TestRequestUnits checks the emulator's meter against DynamoDB's on-demand rules, on
// a private moto: write units per KB (the larger of the item before and after),
// transactional writes twice, a failed condition billed all the same, index writes (a
// key change is a delete and a put), read units per 4 KB (eventually consistent
// half), a Query billed on the summed size of the items it read whatever its
// projection or filter, and item sizes counted as DynamoDB counts them.
func TestRequestUnits(t *testing.T) {
	t.Parallel()
	m, err := testenv.StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(m.Config())
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String("units"), BillingMode: types.BillingModePayPerRequest,
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange}},
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}, {AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("g"), AttributeType: types.ScalarAttributeTypeS},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{IndexName: aws.String("ByG"),
			KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("g"), KeyType: types.KeyTypeHash}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := meter.ResetUsage(ctx, m.Endpoint); err != nil {
		t.Fatal(err)
	}
	// 1,512 bytes: pk 2+1, sk 2+1, g 1+1, body 4+1,500; its index entry the same plus
	// 100 bytes of overhead.
	big := map[string]types.AttributeValue{"pk": s("a"), "sk": s("1"), "g": s("x"), "body": s(strings.Repeat("z", 1500))}
	steps := []func() error{
		func() error {
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("units"), Item: big})
			return err
		},
		func() error { // a new index key: the index deletes the old entry and puts the new one
			_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("units"), Key: map[string]types.AttributeValue{"pk": s("a"), "sk": s("1")},
				UpdateExpression: aws.String("SET g = :g"), ExpressionAttributeValues: map[string]types.AttributeValue{":g": s("y")}})
			return err
		},
		func() error { // the condition fails: the existing item's units are billed all the same
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("units"), Item: map[string]types.AttributeValue{"pk": s("a"), "sk": s("1")},
				ConditionExpression: aws.String("attribute_not_exists(pk)")})
			var cf *types.ConditionalCheckFailedException
			if !errors.As(err, &cf) {
				return errors.Join(errors.New("the condition should have failed"), err)
			}
			return nil
		},
		func() error { // two 6-byte items in a transaction: 2 units each
			_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{TableName: aws.String("units"), Item: map[string]types.AttributeValue{"pk": s("b"), "sk": s("1")}}},
				{Put: &types.Put{TableName: aws.String("units"), Item: map[string]types.AttributeValue{"pk": s("b"), "sk": s("2")}}},
			}})
			return err
		},
		func() error { // strongly consistent: 1 unit; a missing item, eventually consistent: 0.5
			if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("units"), Key: map[string]types.AttributeValue{"pk": s("a"), "sk": s("1")}, ConsistentRead: aws.Bool(true)}); err != nil {
				return err
			}
			_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("units"), Key: map[string]types.AttributeValue{"pk": s("a"), "sk": s("9")}})
			return err
		},
		func() error { // two more 1,510-byte items (pk 2+1, sk 2+1, body 4+1,500)
			for _, sk := range []string{"2", "3"} {
				if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("units"), Item: map[string]types.AttributeValue{"pk": s("a"), "sk": s(sk), "body": s(strings.Repeat("z", 1500))}}); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { // 1,512 + 1,510 + 1,510 bytes read (the projection changes nothing): 4,532 → 2 units
			_, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("units"), KeyConditionExpression: aws.String("pk = :p"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("a")}, ProjectionExpression: aws.String("pk"), ConsistentRead: aws.Bool(true)})
			return err
		},
		func() error { // the index holds one entry of 1,512 bytes: eventually consistent, 0.5
			_, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("units"), IndexName: aws.String("ByG"), KeyConditionExpression: aws.String("g = :g"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":g": s("y")}, Select: types.SelectCount})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	u, err := meter.ReadUsage(ctx, m.Endpoint, true)
	if err != nil {
		t.Fatal(err)
	}
	got := u.Principals["test"]["dynamodb"]
	want := meter.Actions{
		// 2 + 2 (index) for the big item, 2 for the failed condition, 2 + 2 for the two more.
		"PutItem": {Requests: 4, Errors: 1, ConditionalFailures: 1, ItemsWritten: 3, BytesWritten: 1512 + 1510 + 1510, WRU: 10, IndexWRU: 2},
		// 2 for the item, 2 + 2 for the index entry moving from x to y.
		"UpdateItem":         {Requests: 1, ItemsWritten: 1, BytesWritten: 1512, WRU: 6, IndexWRU: 4},
		"TransactWriteItems": {Requests: 1, ItemsWritten: 2, BytesWritten: 12, WRU: 4},
		"GetItem":            {Requests: 2, ItemsRead: 1, BytesRead: 1512, RRU: 1.5},
		"Query":              {Requests: 2, ItemsRead: 4, BytesRead: 1512 + 1510 + 1510 + 1512, RRU: 2.5},
	}
	for action, w := range want {
		if g := got[action]; g != w {
			t.Errorf("%s: got %+v, want %+v", action, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("actions metered: %v", got)
	}
	// Storage: the items and their index entries, 100 bytes of overhead each.
	table := u.Tables["units"]
	if table.Items != 5 || table.Bytes != 1512+1510+1510+6+6+5*100 || table.Indexes["ByG"].Items != 1 || table.Indexes["ByG"].Bytes != 1512+100 {
		t.Errorf("storage: %+v", table)
	}
}

// TestHappyPath walks the upgrade machine's default path.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	got, err := meter.HappyPath(testenv.RepoRoot() + "/statemachines/upgrade.asl.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "Configure Start Validate Provision AppProvisionHook Billing Commit Done" {
		t.Errorf("upgrade happy path: %v", got)
	}
}
