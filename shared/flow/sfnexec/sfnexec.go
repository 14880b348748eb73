// Package sfnexec adapts the Step Functions client to flow.Executions. Only the
// wiring of the functions that start or describe executions imports it, so the
// others never link the Step Functions client.
package sfnexec

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/shared/flow"
)

// API is the part of the Step Functions client the adapter calls.
type API interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, optFns ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

var _ API = (*sfn.Client)(nil)

// Executions is flow.Executions on a Step Functions client.
type Executions struct{ API API }

var _ flow.Executions = Executions{}

// New adapts api.
func New(api API) Executions { return Executions{API: api} }

// Start calls StartExecution. ExecutionAlreadyExists comes back matching both
// flow.ErrExecutionExists and the SDK's error; other errors come back as they are.
func (x Executions) Start(ctx context.Context, stateMachineARN, name, input string) error {
	_, err := x.API.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(stateMachineARN), Name: aws.String(name), Input: aws.String(input)})
	var exists *sfntypes.ExecutionAlreadyExists
	if errors.As(err, &exists) {
		return fmt.Errorf("%w: %w", flow.ErrExecutionExists, err)
	}
	return err
}

// Describe calls DescribeExecution. ExecutionDoesNotExist comes back matching both
// flow.ErrNoExecution and the SDK's error.
func (x Executions) Describe(ctx context.Context, executionARN string) (flow.Execution, error) {
	out, err := x.API.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(executionARN)})
	var missing *sfntypes.ExecutionDoesNotExist
	switch {
	case errors.As(err, &missing):
		return flow.Execution{}, fmt.Errorf("%w: %w", flow.ErrNoExecution, err)
	case err != nil:
		return flow.Execution{}, err
	}
	return flow.Execution{Status: flow.ExecutionStatus(out.Status), Error: aws.ToString(out.Error), Cause: aws.ToString(out.Cause)}, nil
}
