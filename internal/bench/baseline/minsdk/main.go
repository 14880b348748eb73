// Command minsdk is the baseline the functions' cold starts are judged against: the
// least a function of this project does before it serves, loading the AWS config from
// the environment and building a DynamoDB client. Anything a function's init costs
// beyond this is its own wiring. It is never deployed.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatalf("load AWS config: %v", err)
	}
	db := dynamodb.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context) (int, error) {
		out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
		if err != nil {
			return 0, err
		}
		return len(out.TableNames), nil
	})
}
