package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// Reset returns a running stack to its freshly seeded state without restarting any
// process: it waits for running executions to end, empties the tables and the event
// queue, forgets recorded Stripe requests and injected faults (Lambda, AWS endpoints), and seeds again. Tests
// that share one stack call it so each starts from the same data (and `go test
// -count=N` repeats them faithfully).
func (s *Stack) Reset(ctx context.Context, withData bool) error {
	if err := s.waitExecutions(ctx); err != nil {
		return err
	}
	for _, table := range []string{s.TenantsTable, s.DataTable} {
		if err := s.truncate(ctx, table); err != nil {
			return err
		}
	}
	for _, bucket := range s.Buckets {
		if err := s.emptyBucket(ctx, bucket); err != nil {
			return err
		}
	}
	if _, err := s.DrainEvents(ctx); err != nil {
		return err
	}
	s.Stripe.Reset()
	s.Lambda.ClearFaults()
	s.AWSFaults.Clear()
	return s.Seed(ctx, withData)
}

// waitExecutions waits until no execution of any state machine is RUNNING, so none
// writes into the data Reset is about to replace.
func (s *Stack) waitExecutions(ctx context.Context) error {
	client := s.SFNClient()
	for {
		running := 0
		for _, arn := range s.StateMachines {
			out, err := client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn), StatusFilter: sfntypes.ExecutionStatusRunning})
			if err != nil {
				return fmt.Errorf("reset: list executions: %w", err)
			}
			running += len(out.Executions)
		}
		if running == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reset: %d executions still running: %w", running, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// truncate deletes every item of a table, whatever its key schema.
func (s *Stack) truncate(ctx context.Context, table string) error {
	db := s.DynamoDB()
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("reset %s: %w", table, err)
	}
	var keys []string
	for _, k := range desc.Table.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName))
	}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("reset %s: scan: %w", table, err)
		}
		for start := 0; start < len(page.Items); start += 25 {
			var reqs []types.WriteRequest
			for _, item := range page.Items[start:min(start+25, len(page.Items))] {
				key := map[string]types.AttributeValue{}
				for _, k := range keys {
					key[k] = item[k]
				}
				reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key}})
			}
			if err := s.batchWrite(ctx, table, reqs); err != nil {
				return fmt.Errorf("reset %s: %w", table, err)
			}
		}
	}
	return nil
}

// emptyBucket deletes every object of a bucket.
func (s *Stack) emptyBucket(ctx context.Context, bucket string) error {
	client := s.S3()
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("reset bucket %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				return fmt.Errorf("reset bucket %s: %w", bucket, err)
			}
		}
	}
	return nil
}

// batchWrite sends one BatchWriteItem and retries what DynamoDB left unprocessed.
func (s *Stack) batchWrite(ctx context.Context, table string, reqs []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{table: reqs}
	for len(pending) > 0 {
		out, err := s.DynamoDB().BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return err
		}
		pending = out.UnprocessedItems
	}
	return nil
}
