package flow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// history builds events one second apart, ids and previous ids as Step Functions
// numbers them; each entry is "Type" or "Type:State" or "Type:State:Error".
func history(entries ...[3]string) []flow.HistoryEvent {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([]flow.HistoryEvent, len(entries))
	for i, e := range entries {
		out[i] = flow.HistoryEvent{ID: int64(i + 1), PreviousID: int64(i), Type: e[0], Time: t0.Add(time.Duration(i) * time.Second), State: e[1], Error: e[2]}
		if e[2] != "" {
			out[i].Cause = "cause of " + e[2]
		}
	}
	return out
}

func ev(typ string, rest ...string) [3]string {
	var e [3]string
	e[0] = typ
	copy(e[1:], rest)
	return e
}

// compensated is an upgrade whose Billing step failed twice (a retried service error,
// then a caught payment error) and was compensated, ending in the Failed state.
var compensated = history(
	ev("ExecutionStarted"),
	ev("ChoiceStateEntered", "Start"), ev("ChoiceStateExited", "Start"),
	ev("TaskStateEntered", "Validate"), ev("LambdaFunctionScheduled"), ev("LambdaFunctionStarted"), ev("LambdaFunctionSucceeded"), ev("TaskStateExited", "Validate"),
	ev("TaskStateEntered", "Billing"),
	ev("LambdaFunctionScheduled"), ev("LambdaFunctionStarted"), ev("LambdaFunctionFailed", "", "Lambda.ServiceException"),
	ev("LambdaFunctionScheduled"), ev("LambdaFunctionStarted"), ev("LambdaFunctionFailed", "", "PaymentFailedError"),
	ev("TaskStateEntered", "RollbackBilling"), ev("LambdaFunctionScheduled"), ev("LambdaFunctionStarted"), ev("LambdaFunctionSucceeded"), ev("TaskStateExited", "RollbackBilling"),
	ev("TaskStateEntered", "Release"), ev("LambdaFunctionScheduled"), ev("LambdaFunctionStarted"), ev("LambdaFunctionSucceeded"), ev("TaskStateExited", "Release"),
	ev("ChoiceStateEntered", "Outcome"), ev("ChoiceStateExited", "Outcome"),
	ev("FailStateEntered", "Failed"),
	ev("ExecutionFailed", "", "OperationFailed"),
)

type stepView struct {
	name, status string
	attempts     int
	err          string
	compensation bool
	durationMS   int64
}

func views(steps []flow.Step) []stepView {
	out := make([]stepView, len(steps))
	for i, s := range steps {
		out[i] = stepView{name: s.Name, status: s.Status, attempts: s.Attempts, compensation: s.Compensation}
		if s.Error != nil {
			out[i].err = *s.Error
		}
		if s.DurationMS != nil {
			out[i].durationMS = *s.DurationMS
		} else {
			out[i].durationMS = -1
		}
	}
	return out
}

func TestFoldHistory(t *testing.T) {
	steps, status := flow.FoldHistory("op_1", compensated, false)
	want := []stepView{
		{"Start", "SUCCEEDED", 0, "", false, 1000},
		{"Validate", "SUCCEEDED", 1, "", false, 4000},
		// Caught: ended by the next state's entry; what follows compensates.
		{"Billing", "FAILED", 2, "PaymentFailedError", false, 7000},
		{"RollbackBilling", "SUCCEEDED", 1, "", true, 4000},
		{"Release", "SUCCEEDED", 1, "", true, 4000},
		{"Outcome", "SUCCEEDED", 0, "", true, 1000},
		{"Failed", "FAILED", 0, "OperationFailed", true, 0},
	}
	if status != "FAILED" || !slices.Equal(views(steps), want) {
		t.Fatalf("status %s steps\n%+v\nwant\n%+v", status, views(steps), want)
	}
	if c := steps[2].Cause; c == nil || *c != "cause of PaymentFailedError" {
		t.Errorf("Billing cause %v", c)
	}
	if steps[0].Execution != "op_1" || steps[0].Type != "Choice" || steps[1].Type != "Task" || !steps[1].StartedAt.Equal(compensated[3].Time) {
		t.Errorf("first steps %+v %+v", steps[0], steps[1])
	}

	// A retry that succeeds keeps the failed try's error; a still running step has no
	// end; an operator retry (resume) is compensation throughout.
	running := history(
		ev("ExecutionStarted"),
		ev("TaskStateEntered", "Provision"), ev("LambdaFunctionScheduled"), ev("LambdaFunctionFailed", "", "TransientError"),
		ev("LambdaFunctionScheduled"), ev("LambdaFunctionSucceeded"), ev("TaskStateExited", "Provision"),
		ev("TaskStateEntered", "RollbackProvision"), ev("LambdaFunctionScheduled"),
	)
	steps, status = flow.FoldHistory("op_1-retry-1", running, true)
	want = []stepView{
		{"Provision", "SUCCEEDED", 2, "TransientError", true, 5000},
		{"RollbackProvision", "RUNNING", 1, "", true, -1},
	}
	if status != "RUNNING" || !slices.Equal(views(steps), want) || steps[1].EndedAt != nil {
		t.Fatalf("status %s steps %+v, want %+v", status, views(steps), want)
	}

	// Stopped while a step ran: that step is ABORTED; an uncaught failure ends the
	// execution with the step FAILED.
	aborted := history(ev("ExecutionStarted"), ev("TaskStateEntered", "Claim"), ev("LambdaFunctionScheduled"), ev("ExecutionAborted"))
	if steps, status := flow.FoldHistory("x", aborted, false); status != "ABORTED" || steps[0].Status != "ABORTED" || *steps[0].DurationMS != 2000 {
		t.Errorf("aborted: %s %+v", status, views(steps))
	}
	uncaught := history(ev("ExecutionStarted"), ev("TaskStateEntered", "Claim"), ev("LambdaFunctionScheduled"),
		ev("LambdaFunctionFailed", "", "Boom"), ev("ExecutionFailed", "", "Boom"))
	if steps, status := flow.FoldHistory("x", uncaught, false); status != "FAILED" || steps[0].Status != "FAILED" || *steps[0].Error != "Boom" {
		t.Errorf("uncaught: %s %+v", status, views(steps))
	}
	if steps, status := flow.FoldHistory("x", nil, false); status != "RUNNING" || steps == nil || len(steps) != 0 {
		t.Errorf("no events: %s %v", status, steps)
	}
}

// fakeHistories answers the histories it holds and ErrNoExecution for the others.
type fakeHistories struct {
	byARN map[string][]flow.HistoryEvent
	err   error
	asked []string
}

func (f *fakeHistories) History(_ context.Context, arn string) ([]flow.HistoryEvent, error) {
	f.asked = append(f.asked, arn)
	if f.err != nil {
		return nil, f.err
	}
	evs, ok := f.byARN[arn]
	if !ok {
		return nil, fmt.Errorf("%w: %s", flow.ErrNoExecution, arn)
	}
	return evs, nil
}

func TestStepReader(t *testing.T) {
	ctx := context.Background()
	const sm = "arn:aws:states:us-east-1:123456789012:stateMachine:upgrade"
	exec := func(name string) string { return flow.ExecutionARN(sm, name) }
	retry := history(ev("ExecutionStarted"), ev("ChoiceStateEntered", "Start"), ev("ChoiceStateExited", "Start"),
		ev("TaskStateEntered", "RollbackBilling"), ev("LambdaFunctionScheduled"), ev("LambdaFunctionSucceeded"), ev("TaskStateExited", "RollbackBilling"),
		ev("SucceedStateEntered", "Done"), ev("SucceedStateExited", "Done"), ev("ExecutionSucceeded"))
	h := &fakeHistories{byARN: map[string][]flow.HistoryEvent{exec("op_1"): compensated, exec("op_1-retry-1"): retry}}
	r := flow.NewStepReader(h, &flow.Definition{Kind: tenant.KindUpgrade, StateMachineARN: sm})

	// Both attempts' executions, in order; the second is compensation throughout.
	got, err := r.Steps(ctx, &tenant.Operation{ID: "op_1", Kind: tenant.KindUpgrade, Status: tenant.OpSucceeded, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	// 7 steps of the first execution, 3 of the retry.
	if got.OperationID != "op_1" || got.ExecutionStatus != "SUCCEEDED" || len(got.Steps) != 10 {
		t.Fatalf("report %+v", got)
	}
	last := got.Steps[len(got.Steps)-3:]
	for _, s := range last {
		if s.Execution != "op_1-retry-1" || !s.Compensation {
			t.Errorf("retry step %+v", s)
		}
	}
	if got.Steps[0].Execution != "op_1" || got.Steps[0].Compensation {
		t.Errorf("first step %+v", got.Steps[0])
	}

	// No execution: not started for an unfinished operation, not found for a
	// finished one; a kind the reader does not follow; never an error.
	for _, c := range []struct {
		op   tenant.Operation
		want string
	}{
		{tenant.Operation{ID: "op_2", Kind: tenant.KindUpgrade, Status: tenant.OpRunning}, flow.ExecutionNotStarted},
		{tenant.Operation{ID: "op_2", Kind: tenant.KindUpgrade, Status: tenant.OpScheduled}, flow.ExecutionNotStarted},
		{tenant.Operation{ID: "op_2", Kind: tenant.KindUpgrade, Status: tenant.OpFailed}, flow.ExecutionNotFound},
		{tenant.Operation{ID: "op_2", Kind: tenant.KindPurge, Status: tenant.OpRunning}, flow.ExecutionNotFollowed},
	} {
		got, err := r.Steps(ctx, &c.op)
		if err != nil || got.ExecutionStatus != c.want || got.Steps == nil || len(got.Steps) != 0 {
			t.Errorf("%+v: %+v %v, want %s and no steps", c.op, got, err, c.want)
		}
	}
	// A failure to read is an error (the API answers 503), not an empty report.
	h.err = errors.New("throttled")
	if _, err := r.Steps(ctx, &tenant.Operation{ID: "op_1", Kind: tenant.KindUpgrade}); err == nil {
		t.Error("read failure: want an error")
	}
}
