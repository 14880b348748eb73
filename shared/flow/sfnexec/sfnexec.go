// Package sfnexec adapts the Step Functions client to flow.Executions (and stops
// executions for the purge). Only the wiring of the functions that start, describe or
// stop executions imports it, so the others never link the Step Functions client.
package sfnexec

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/shared/apphook"
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

// Stopper is the part of the Step Functions client Stop calls (the SDK client has it).
type Stopper interface {
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
}

var _ Stopper = (*sfn.Client)(nil)

// Stop calls StopExecution with cause. An execution that does not exist (it was never
// started) is nothing to stop; one that has already ended stays as it ended.
func (x Executions) Stop(ctx context.Context, executionARN, cause string) error {
	st, ok := x.API.(Stopper)
	if !ok {
		return fmt.Errorf("stop execution %s: the Step Functions client given cannot stop executions", executionARN)
	}
	_, err := st.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(executionARN), Cause: aws.String(cause)})
	var missing *sfntypes.ExecutionDoesNotExist
	if errors.As(err, &missing) {
		return nil
	}
	return err
}

// TaskAPI is the part of the Step Functions client that answers callback Tasks.
type TaskAPI interface {
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
	SendTaskHeartbeat(ctx context.Context, in *sfn.SendTaskHeartbeatInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error)
}

var _ TaskAPI = (*sfn.Client)(nil)

// Tasks is apphook.Tasks on a Step Functions client: a token Step Functions no longer
// waits on (TaskTimedOut, TaskDoesNotExist, InvalidToken) comes back matching
// apphook.ErrTaskClosed and the SDK's error.
type Tasks struct{ API TaskAPI }

var _ apphook.Tasks = Tasks{}

// SendTaskSuccess hands output (a JSON document) to the Task waiting with token.
func (t Tasks) SendTaskSuccess(ctx context.Context, token, output string) error {
	_, err := t.API.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(output)})
	return closed(err)
}

// SendTaskFailure fails the Task waiting with token with errName and cause.
func (t Tasks) SendTaskFailure(ctx context.Context, token, errName, cause string) error {
	if len(cause) > 32768 {
		cause = cause[:32768]
	}
	_, err := t.API.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token), Error: aws.String(errName), Cause: aws.String(cause)})
	return closed(err)
}

// SendTaskHeartbeat tells the Task waiting with token that the work goes on.
func (t Tasks) SendTaskHeartbeat(ctx context.Context, token string) error {
	_, err := t.API.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)})
	return closed(err)
}

func closed(err error) error {
	var timedOut *sfntypes.TaskTimedOut
	var missing *sfntypes.TaskDoesNotExist
	var invalid *sfntypes.InvalidToken
	if errors.As(err, &timedOut) || errors.As(err, &missing) || errors.As(err, &invalid) {
		return fmt.Errorf("%w: %w", apphook.ErrTaskClosed, err)
	}
	return err
}
