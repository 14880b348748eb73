package sfnexec_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/flow/sfnexec"
)

// fakeSFN answers with err, or with out.
type fakeSFN struct {
	err     error
	out     *sfn.DescribeExecutionOutput
	started *sfn.StartExecutionInput
}

func (f *fakeSFN) StartExecution(_ context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	f.started = in
	if f.err != nil {
		return nil, f.err
	}
	return &sfn.StartExecutionOutput{ExecutionArn: aws.String("arn")}, nil
}

func (f *fakeSFN) DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	return f.out, f.err
}

func TestStart(t *testing.T) {
	ctx := context.Background()
	f := &fakeSFN{}
	if err := flow.StartExecution(ctx, sfnexec.New(f), "arn:sm", "op_1", map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	if in := f.started; aws.ToString(in.StateMachineArn) != "arn:sm" || aws.ToString(in.Name) != "op_1" || aws.ToString(in.Input) != `{"a":"b"}` {
		t.Errorf("started %+v", in)
	}
	// A finished execution of that name: already started, not an error.
	f.err = &sfntypes.ExecutionAlreadyExists{Message: aws.String("exists")}
	err := sfnexec.New(f).Start(ctx, "arn:sm", "op_1", "{}")
	var sdk *sfntypes.ExecutionAlreadyExists
	if !errors.Is(err, flow.ErrExecutionExists) || !errors.As(err, &sdk) {
		t.Errorf("err %v, want flow.ErrExecutionExists wrapping the SDK's error", err)
	}
	if err := flow.StartExecution(ctx, sfnexec.New(f), "arn:sm", "op_1", nil); err != nil {
		t.Errorf("StartExecution of an existing name: %v", err)
	}
	f.err = errors.New("throttled")
	if err := flow.StartExecution(ctx, sfnexec.New(f), "arn:sm", "op_1", nil); err == nil || errors.Is(err, flow.ErrExecutionExists) {
		t.Errorf("err %v, want the failure", err)
	}
}

func TestDescribe(t *testing.T) {
	ctx := context.Background()
	f := &fakeSFN{out: &sfn.DescribeExecutionOutput{Status: sfntypes.ExecutionStatusFailed, Error: aws.String("States.Timeout"), Cause: aws.String("slow")}}
	got, err := sfnexec.New(f).Describe(ctx, "arn:x")
	if err != nil || got != (flow.Execution{Status: flow.ExecutionFailed, Error: "States.Timeout", Cause: "slow"}) {
		t.Errorf("Describe = %+v, %v", got, err)
	}
	f.err = &sfntypes.ExecutionDoesNotExist{Message: aws.String("gone")}
	if _, err := sfnexec.New(f).Describe(ctx, "arn:x"); !errors.Is(err, flow.ErrNoExecution) {
		t.Errorf("err %v, want flow.ErrNoExecution", err)
	}
	f.err = errors.New("throttled")
	if _, err := sfnexec.New(f).Describe(ctx, "arn:x"); err == nil || errors.Is(err, flow.ErrNoExecution) {
		t.Errorf("err %v, want the failure", err)
	}
}

// The SDK's statuses are the kit's.
func TestStatuses(t *testing.T) {
	for sdk, kit := range map[sfntypes.ExecutionStatus]flow.ExecutionStatus{
		sfntypes.ExecutionStatusRunning: flow.ExecutionRunning, sfntypes.ExecutionStatusSucceeded: flow.ExecutionSucceeded,
		sfntypes.ExecutionStatusFailed: flow.ExecutionFailed, sfntypes.ExecutionStatusTimedOut: flow.ExecutionTimedOut,
		sfntypes.ExecutionStatusAborted: flow.ExecutionAborted, sfntypes.ExecutionStatusPendingRedrive: flow.ExecutionPendingRedrive,
	} {
		if string(sdk) != string(kit) {
			t.Errorf("SDK status %s, kit %s", sdk, kit)
		}
	}
}

// stoppingSFN is fakeSFN that can also stop executions.
type stoppingSFN struct {
	fakeSFN
	stopped *sfn.StopExecutionInput
}

func (f *stoppingSFN) StopExecution(_ context.Context, in *sfn.StopExecutionInput, _ ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	f.stopped = in
	return &sfn.StopExecutionOutput{}, f.err
}

// TestStop: Stop stops the execution with the cause; one that does not exist is
// nothing to stop; other errors come back; a client that cannot stop is an error.
func TestStop(t *testing.T) {
	ctx := context.Background()
	f := &stoppingSFN{}
	if err := sfnexec.New(f).Stop(ctx, "arn:x", "purged"); err != nil || aws.ToString(f.stopped.ExecutionArn) != "arn:x" || aws.ToString(f.stopped.Cause) != "purged" {
		t.Errorf("stop: %v %+v", err, f.stopped)
	}
	f.err = &sfntypes.ExecutionDoesNotExist{Message: aws.String("no")}
	if err := sfnexec.New(f).Stop(ctx, "arn:x", "purged"); err != nil {
		t.Errorf("stop of a missing execution: %v", err)
	}
	f.err = errors.New("throttled")
	if err := sfnexec.New(f).Stop(ctx, "arn:x", "purged"); err == nil {
		t.Error("a failed stop answered nil")
	}
	if err := sfnexec.New(&fakeSFN{}).Stop(ctx, "arn:x", "purged"); err == nil {
		t.Error("a client without StopExecution answered nil")
	}
}
