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

// HistoryReader is the part of the Step Functions client History calls (the SDK client
// has it).
type HistoryReader interface {
	GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, optFns ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
}

var _ HistoryReader = (*sfn.Client)(nil)

var _ flow.Histories = Executions{}

// History pages size and bound: 1,000 events a call (the most Step Functions
// returns), at most 25 calls (25,000 events, the most a history holds).
const (
	historyPage     = 1000
	maxHistoryPages = 25
)

// History reads the execution's history, oldest first, page by page, without the
// states' input and output (which the steps do not show and may be large).
// ExecutionDoesNotExist comes back matching flow.ErrNoExecution.
func (x Executions) History(ctx context.Context, executionARN string) ([]flow.HistoryEvent, error) {
	hr, ok := x.API.(HistoryReader)
	if !ok {
		return nil, fmt.Errorf("history of %s: the Step Functions client given cannot read histories", executionARN)
	}
	in := &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(executionARN), MaxResults: historyPage, IncludeExecutionData: aws.Bool(false)}
	var out []flow.HistoryEvent
	for range maxHistoryPages {
		page, err := hr.GetExecutionHistory(ctx, in)
		var missing *sfntypes.ExecutionDoesNotExist
		switch {
		case errors.As(err, &missing):
			return nil, fmt.Errorf("%w: %w", flow.ErrNoExecution, err)
		case err != nil:
			return nil, err
		}
		for _, e := range page.Events {
			out = append(out, historyEvent(e))
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	return out, nil
}

// historyEvent keeps what the steps need of e: its state name and its failure.
func historyEvent(e sfntypes.HistoryEvent) flow.HistoryEvent {
	out := flow.HistoryEvent{ID: e.Id, PreviousID: e.PreviousEventId, Type: string(e.Type), Time: aws.ToTime(e.Timestamp)}
	if d := e.StateEnteredEventDetails; d != nil {
		out.State = aws.ToString(d.Name)
	}
	if d := e.StateExitedEventDetails; d != nil {
		out.State = aws.ToString(d.Name)
	}
	fail := func(errName, cause *string) { out.Error, out.Cause = aws.ToString(errName), aws.ToString(cause) }
	switch {
	case e.LambdaFunctionFailedEventDetails != nil:
		fail(e.LambdaFunctionFailedEventDetails.Error, e.LambdaFunctionFailedEventDetails.Cause)
	case e.LambdaFunctionTimedOutEventDetails != nil:
		fail(e.LambdaFunctionTimedOutEventDetails.Error, e.LambdaFunctionTimedOutEventDetails.Cause)
	case e.LambdaFunctionStartFailedEventDetails != nil:
		fail(e.LambdaFunctionStartFailedEventDetails.Error, e.LambdaFunctionStartFailedEventDetails.Cause)
	case e.LambdaFunctionScheduleFailedEventDetails != nil:
		fail(e.LambdaFunctionScheduleFailedEventDetails.Error, e.LambdaFunctionScheduleFailedEventDetails.Cause)
	case e.TaskFailedEventDetails != nil:
		fail(e.TaskFailedEventDetails.Error, e.TaskFailedEventDetails.Cause)
	case e.TaskTimedOutEventDetails != nil:
		fail(e.TaskTimedOutEventDetails.Error, e.TaskTimedOutEventDetails.Cause)
	case e.TaskStartFailedEventDetails != nil:
		fail(e.TaskStartFailedEventDetails.Error, e.TaskStartFailedEventDetails.Cause)
	case e.TaskSubmitFailedEventDetails != nil:
		fail(e.TaskSubmitFailedEventDetails.Error, e.TaskSubmitFailedEventDetails.Cause)
	case e.ActivityFailedEventDetails != nil:
		fail(e.ActivityFailedEventDetails.Error, e.ActivityFailedEventDetails.Cause)
	case e.ActivityTimedOutEventDetails != nil:
		fail(e.ActivityTimedOutEventDetails.Error, e.ActivityTimedOutEventDetails.Cause)
	case e.ActivityScheduleFailedEventDetails != nil:
		fail(e.ActivityScheduleFailedEventDetails.Error, e.ActivityScheduleFailedEventDetails.Cause)
	case e.ExecutionFailedEventDetails != nil:
		fail(e.ExecutionFailedEventDetails.Error, e.ExecutionFailedEventDetails.Cause)
	case e.ExecutionAbortedEventDetails != nil:
		fail(e.ExecutionAbortedEventDetails.Error, e.ExecutionAbortedEventDetails.Cause)
	case e.ExecutionTimedOutEventDetails != nil:
		fail(e.ExecutionTimedOutEventDetails.Error, e.ExecutionTimedOutEventDetails.Cause)
	}
	return out
}
