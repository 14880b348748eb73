package flow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// opStore answers GetOperation with a copy of op; nothing else is called by Get.
type opStore struct {
	flow.OperationsStore
	op tenant.Operation
}

func (s *opStore) GetOperation(context.Context, string) (*tenant.Operation, error) {
	o := s.op
	return &o, nil
}

// execs describes every execution the same way.
type execs struct {
	out flow.Execution
	err error
}

func (x execs) Start(context.Context, string, string, string) error { return nil }
func (x execs) Describe(context.Context, string) (flow.Execution, error) {
	return x.out, x.err
}

// TestGetNeverReportsRunningWithoutAnExecution: while the record says RUNNING, GET
// /operations/{id} reports what Step Functions knows: an execution that ended is
// FAILED (ExecutionEnded, with Step Functions' status and error in the cause), and one
// that does not exist is FAILED (ExecutionNeverStarted) once the start's grace has
// passed (before that, its StartExecution may still be on its way): what the
// reconciler records when it ends the operation.
func TestGetNeverReportsRunningWithoutAnExecution(t *testing.T) {
	def := &flow.Definition{Kind: tenant.KindDeletion, Busy: tenant.Deleting, StateMachineARN: "arn:aws:states:us-east-1:123456789012:stateMachine:deletion"}
	old := time.Now().Add(-10 * time.Minute)
	cases := []struct {
		name      string
		updated   time.Time
		x         execs
		want      tenant.OperationStatus
		wantError string
		wantCause string
	}{
		{"never started, past the grace", old, execs{err: flow.ErrNoExecution}, tenant.OpFailed, "ExecutionNeverStarted", "does not exist"},
		{"never started, just created", time.Now(), execs{err: flow.ErrNoExecution}, tenant.OpRunning, "", ""},
		{"stopped", old, execs{out: flow.Execution{Status: flow.ExecutionAborted}}, tenant.OpFailed, "ExecutionEnded", "ended ABORTED"},
		{"timed out", old, execs{out: flow.Execution{Status: flow.ExecutionTimedOut}}, tenant.OpFailed, "ExecutionEnded", "ended TIMED_OUT"},
		{"failed", old, execs{out: flow.Execution{Status: flow.ExecutionFailed, Error: "ReleaseFailed", Cause: "release kept failing"}}, tenant.OpFailed,
			"ExecutionEnded", "ended FAILED: ReleaseFailed: release kept failing"},
		{"running", old, execs{out: flow.Execution{Status: flow.ExecutionRunning}}, tenant.OpRunning, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &opStore{op: tenant.Operation{ID: "op_1", TenantID: "t1", Kind: tenant.KindDeletion, Status: tenant.OpRunning, CreatedAt: c.updated, UpdatedAt: c.updated}}
			got, err := flow.NewOperations(st, c.x, def).Get(context.Background(), "op_1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != c.want || got.Error != c.wantError || !strings.Contains(got.Cause, c.wantCause) {
				t.Fatalf("GET says %s (%s: %s), want %s (%s)", got.Status, got.Error, got.Cause, c.want, c.wantError)
			}
		})
	}
}
