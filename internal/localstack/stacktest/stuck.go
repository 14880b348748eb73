package stacktest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// ExecutionARN is the ARN of execution name of a state machine (template logical id).
func ExecutionARN(s *stack.Stack, machine, name string) string {
	return strings.Replace(s.StateMachines[machine], ":stateMachine:", ":execution:", 1) + ":" + name
}

// ExecutionStatus reads an execution's status from the local Step Functions service
// ("" when it does not exist).
func ExecutionStatus(t *testing.T, s *stack.Stack, machine, name string) string {
	t.Helper()
	out, err := s.SFNClient().DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(ExecutionARN(s, machine, name))})
	var nf *sfntypes.ExecutionDoesNotExist
	if errors.As(err, &nf) {
		return ""
	}
	if err != nil {
		t.Fatalf("describe %s: %v", name, err)
	}
	return string(out.Status)
}

// WaitExecutionEnded waits until an execution exists and is no longer RUNNING, and
// returns its status.
func WaitExecutionEnded(t *testing.T, s *stack.Stack, machine, name string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if st := ExecutionStatus(t, s, machine, name); st != "" && st != string(sfntypes.ExecutionStatusRunning) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("execution %s did not end in time", name)
	return ""
}

// Reconcile runs ReconcileFunction with the scheduled event of time at (a time past
// its grace period lets it end operations that never got an execution) and returns
// its answer.
func Reconcile(t *testing.T, s *stack.Stack, at time.Time) map[string]any {
	t.Helper()
	var out map[string]any
	Scheduled(t, s, "ReconcileFunction", at, &out)
	return out
}

// RunningOperations lists the ids of a tenant's operations whose record says RUNNING
// (a Scan: tests only).
func RunningOperations(t *testing.T, s *stack.Stack, tenantID string) []string {
	t.Helper()
	p := dynamodb.NewScanPaginator(s.DynamoDB(), &dynamodb.ScanInput{
		TableName:                aws.String(s.TenantsTable),
		FilterExpression:         aws.String("begins_with(pk, :op) AND #st = :run AND tenant_id = :t"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":op": &types.AttributeValueMemberS{Value: "OP#"}, ":run": &types.AttributeValueMemberS{Value: string(tenant.OpRunning)},
			":t": &types.AttributeValueMemberS{Value: tenantID},
		},
	})
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if v, ok := it["operation_id"].(*types.AttributeValueMemberS); ok {
				out = append(out, v.Value)
			}
		}
	}
	return out
}

// OpenOperations lists the operation ids the sparse Open index holds (open_kind OP)
// for one tenant: the operations the store says are open.
func OpenOperations(t *testing.T, s *stack.Stack, tenantID string) []string {
	t.Helper()
	p := dynamodb.NewQueryPaginator(s.DynamoDB(), &dynamodb.QueryInput{
		TableName: aws.String(s.TenantsTable), IndexName: aws.String("Open"),
		KeyConditionExpression: aws.String("open_kind = :k"),
		FilterExpression:       aws.String("tenant_id = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": &types.AttributeValueMemberS{Value: "OP"}, ":t": &types.AttributeValueMemberS{Value: tenantID},
		},
	})
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("query the Open index: %v", err)
		}
		for _, it := range page.Items {
			if v, ok := it["operation_id"].(*types.AttributeValueMemberS); ok {
				out = append(out, v.Value)
			}
		}
	}
	return out
}
