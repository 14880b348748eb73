package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// HistoryEvent is one event of an execution's history, as far as the steps of an
// operation need it. Type is Step Functions' event type (TaskStateEntered,
// LambdaFunctionFailed, ExecutionSucceeded, ...).
type HistoryEvent struct {
	ID, PreviousID int64
	Type           string
	Time           time.Time
	// State is the state's name on <Type>StateEntered and <Type>StateExited events.
	State string
	// Error and Cause are set on failure events (task, Lambda, execution).
	Error, Cause string
}

// Histories reads execution histories; shared/flow/sfnexec implements it on
// GetExecutionHistory.
type Histories interface {
	// History returns the execution's events, oldest first. One that does not exist
	// gives an error matching ErrNoExecution.
	History(ctx context.Context, executionARN string) ([]HistoryEvent, error)
}

// Step is one visit of a state of an operation's execution, folded from its history.
type Step struct {
	Name string `json:"name"`
	// Type is the state's type: Task, Choice, Pass, Fail, Succeed, ...
	Type string `json:"type"`
	// Status is RUNNING, SUCCEEDED, FAILED (its last try failed; when the failure was
	// caught the execution went on to compensate), ABORTED or TIMED_OUT (the
	// execution was stopped or timed out while the state ran).
	Status    string     `json:"status"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	// DurationMS is EndedAt - StartedAt; null while the state runs.
	DurationMS *int64 `json:"duration_ms"`
	// Attempts counts the tries of the state's task: 1 without retries, 0 for states
	// that run none (Choice, Pass, Fail, Succeed).
	Attempts int `json:"attempts"`
	// Error and Cause are those of the state's last failed try (also when a later try
	// succeeded), or of the execution's failure on a Fail state.
	Error *string `json:"error"`
	Cause *string `json:"cause"`
	// Compensation is true for the states that undo: every state after a failure was
	// caught, and every state of an operator retry (which starts at the compensation).
	Compensation bool `json:"compensation"`
	// Execution is the name of the execution the visit belongs to: the operation id,
	// then "<id>-retry-<n>" for operator retry n.
	Execution string `json:"execution"`
}

// Execution statuses StepReader reports beyond Step Functions' own.
const (
	// ExecutionNotStarted: no execution of the operation exists and it has not
	// finished (scheduled, or its start is pending or was lost).
	ExecutionNotStarted = "NOT_STARTED"
	// ExecutionNotFound: the operation finished but no execution of it exists any
	// more (Step Functions keeps a closed execution's history for 90 days) or ever
	// did (it failed before its start).
	ExecutionNotFound = "NOT_FOUND"
	// ExecutionNotFollowed: the operation's kind is not one whose executions the
	// reader may read (the purge: its sweep restarts it, and its steps are in its
	// certificate).
	ExecutionNotFollowed = "NOT_FOLLOWED"
)

// Steps is what StepReader reports of an operation.
type Steps struct {
	OperationID string `json:"operation_id"`
	// ExecutionStatus is the status of the operation's current execution (its latest
	// attempt): RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, or one of
	// ExecutionNotStarted, ExecutionNotFound, ExecutionNotFollowed.
	ExecutionStatus string `json:"execution_status"`
	// Steps are the visits of every attempt's execution, in order.
	Steps []Step `json:"steps"`
}

// maxHistoryAttempts bounds how many executions (the most recent attempts) one
// report reads.
const maxHistoryAttempts = 10

// StepReader folds the execution histories of operations into steps.
type StepReader struct {
	h     Histories
	flows map[string]*Definition
}

// NewStepReader reads the executions of the given flows through h.
func NewStepReader(h Histories, flows ...*Definition) *StepReader {
	r := &StepReader{h: h, flows: map[string]*Definition{}}
	for _, d := range flows {
		r.flows[d.Kind] = d
	}
	return r
}

// Steps reads the histories of op's executions, oldest attempt first. An execution
// that does not exist is skipped: the report says so in ExecutionStatus when it is
// the current one, and is never an error.
func (r *StepReader) Steps(ctx context.Context, op *tenant.Operation) (*Steps, error) {
	out := &Steps{OperationID: op.ID, Steps: []Step{}}
	def, ok := r.flows[op.Kind]
	if !ok {
		out.ExecutionStatus = ExecutionNotFollowed
		return out, nil
	}
	first := max(0, op.Attempt-maxHistoryAttempts+1)
	for n := first; n <= op.Attempt; n++ {
		a := *op
		a.Attempt = n
		name := a.ExecutionName()
		events, err := r.h.History(ctx, ExecutionARN(def.StateMachineARN, name))
		switch {
		case errors.Is(err, ErrNoExecution):
			if n == op.Attempt {
				out.ExecutionStatus = ExecutionNotFound
				if !op.Done() {
					out.ExecutionStatus = ExecutionNotStarted
				}
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("history of execution %s: %w", name, err)
		}
		steps, status := FoldHistory(name, events, n > 0)
		out.Steps = append(out.Steps, steps...)
		if n == op.Attempt {
			out.ExecutionStatus = status
		}
	}
	return out, nil
}

// Event types that start a try of a task, and that end one in failure.
var (
	tryStarts = map[string]bool{"LambdaFunctionScheduled": true, "TaskScheduled": true, "ActivityScheduled": true}
	tryFails  = map[string]bool{
		"LambdaFunctionFailed": true, "LambdaFunctionTimedOut": true, "LambdaFunctionStartFailed": true, "LambdaFunctionScheduleFailed": true,
		"TaskFailed": true, "TaskTimedOut": true, "TaskStartFailed": true, "TaskSubmitFailed": true,
		"ActivityFailed": true, "ActivityTimedOut": true, "ActivityScheduleFailed": true,
	}
	executionEnds = map[string]string{
		"ExecutionSucceeded": string(ExecutionSucceeded), "ExecutionFailed": string(ExecutionFailed),
		"ExecutionAborted": string(ExecutionAborted), "ExecutionTimedOut": string(ExecutionTimedOut),
	}
)

// FoldHistory folds one execution's events into its steps and says how the execution
// stands (RUNNING until an Execution* end event). A state is one step per visit:
// entered, tried (each Scheduled event one try; a failure is remembered, a retry sets
// it running again), and ended by its Exited event, by the next state's Entered event
// (a failure that a Catch routed on: the step failed and what follows compensates), or
// by the execution's end. resume marks every step as compensation (an operator retry).
func FoldHistory(execution string, events []HistoryEvent, resume bool) ([]Step, string) {
	steps := []Step{}
	status := string(ExecutionRunning)
	compensating := resume
	open := -1
	end := func(at time.Time, st string) {
		s := &steps[open]
		t := at
		d := t.Sub(s.StartedAt).Milliseconds()
		s.EndedAt, s.DurationMS, s.Status = &t, &d, st
		if st == "FAILED" {
			compensating = true
		}
		open = -1
	}
	for _, e := range events {
		switch {
		case strings.HasSuffix(e.Type, "StateEntered"):
			if open >= 0 {
				st := "SUCCEEDED"
				if steps[open].Status == "FAILED" {
					st = "FAILED"
				}
				end(e.Time, st)
			}
			steps = append(steps, Step{Name: e.State, Type: strings.TrimSuffix(e.Type, "StateEntered"), Status: "RUNNING",
				StartedAt: e.Time, Compensation: compensating, Execution: execution})
			open = len(steps) - 1
			if steps[open].Type == "Fail" {
				// A Fail state has no Exited event: it ends the execution at once.
				end(e.Time, "FAILED")
			}
		case strings.HasSuffix(e.Type, "StateExited"):
			// Exited after a failed last try: the failure was caught.
			if open >= 0 {
				st := "SUCCEEDED"
				if steps[open].Status == "FAILED" {
					st = "FAILED"
				}
				end(e.Time, st)
			}
		case tryStarts[e.Type]:
			if open >= 0 {
				steps[open].Attempts++
				steps[open].Status = "RUNNING"
			}
		case tryFails[e.Type]:
			if open >= 0 {
				steps[open].Status = "FAILED"
				steps[open].Error, steps[open].Cause = optionalText(e.Error), optionalText(e.Cause)
			}
		case executionEnds[e.Type] != "":
			status = executionEnds[e.Type]
			if open >= 0 {
				st := steps[open].Status
				switch status {
				case string(ExecutionAborted), string(ExecutionTimedOut):
					st = status
				case string(ExecutionFailed):
					st = "FAILED"
				case string(ExecutionSucceeded):
					st = "SUCCEEDED"
				}
				end(e.Time, st)
			}
			if n := len(steps); n > 0 && status == string(ExecutionFailed) && steps[n-1].Type == "Fail" && steps[n-1].Error == nil {
				steps[n-1].Error, steps[n-1].Cause = optionalText(e.Error), optionalText(e.Cause)
			}
		}
	}
	return steps, status
}

func optionalText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
