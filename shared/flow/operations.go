package flow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Executions is what the kit needs of Step Functions: start an execution, read one.
// It is declared without the SDK's types, so a function that never starts or follows
// an execution does not link the Step Functions client; shared/flow/sfnexec adapts
// *sfn.Client to it.
type Executions interface {
	// Start starts the execution name of the state machine with the JSON input. When
	// Step Functions answers ExecutionAlreadyExists (an execution of that name has
	// finished, or runs with another input), the error matches ErrExecutionExists.
	Start(ctx context.Context, stateMachineARN, name, input string) error
	// Describe reads the execution; one that does not exist gives an error matching
	// ErrNoExecution.
	Describe(ctx context.Context, executionARN string) (Execution, error)
}

// Execution is what the kit reads of a Step Functions execution.
type Execution struct {
	Status ExecutionStatus
	// Error and Cause are the execution's error when it failed.
	Error, Cause string
}

// ExecutionStatus is a Step Functions execution status, as Step Functions spells it.
type ExecutionStatus string

// The execution statuses.
const (
	ExecutionRunning        ExecutionStatus = "RUNNING"
	ExecutionSucceeded      ExecutionStatus = "SUCCEEDED"
	ExecutionFailed         ExecutionStatus = "FAILED"
	ExecutionTimedOut       ExecutionStatus = "TIMED_OUT"
	ExecutionAborted        ExecutionStatus = "ABORTED"
	ExecutionPendingRedrive ExecutionStatus = "PENDING_REDRIVE"
)

var (
	// ErrExecutionExists is Step Functions' ExecutionAlreadyExists.
	ErrExecutionExists = errors.New("execution already exists")
	// ErrNoExecution is Step Functions' ExecutionDoesNotExist.
	ErrNoExecution = errors.New("execution does not exist")
)

// NewOperationID returns a new, time-ordered operation id that is a valid execution
// name: "op_" + milliseconds in hex + "_" + 64 random bits in hex.
func NewOperationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("op_%x_%s", time.Now().UTC().UnixMilli(), hex.EncodeToString(b[:]))
}

// ExecutionARN derives an execution's ARN from its state machine ARN and name.
func ExecutionARN(stateMachineARN, name string) string {
	return strings.Replace(stateMachineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

// StartExecution starts the execution `name` of arn with input. Starting the same name
// again is harmless: Step Functions answers the same execution while it runs, and
// ExecutionAlreadyExists once it has finished — both mean "already started".
func StartExecution(ctx context.Context, x Executions, arn, name string, input any) error {
	body, err := json.Marshal(input)
	if err != nil {
		return fmt.Errorf("marshal execution input: %w", err)
	}
	err = x.Start(ctx, arn, name, string(body))
	if errors.Is(err, ErrExecutionExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("start execution %s: %w", name, err)
	}
	return nil
}

// OperationsStore is the persistence Operations needs.
type OperationsStore interface {
	Store
	ResolveOperation(ctx context.Context, op *tenant.Operation, note string, by store.Actor) error
}

// Operations starts flows for the API and answers for their operations: status,
// operator retry and resolve.
type Operations struct {
	store OperationsStore
	sfn   Executions
	flows map[string]*Definition
}

// NewOperations serves the operations of the given flows.
func NewOperations(s OperationsStore, x Executions, flows ...*Definition) *Operations {
	o := &Operations{store: s, sfn: x, flows: map[string]*Definition{}}
	for _, d := range flows {
		o.flows[d.Kind] = d
	}
	return o
}

// Start records op (RUNNING) and starts its execution with input. When the start
// fails the operation is marked FAILED, so it never shows RUNNING without an execution.
func (o *Operations) Start(ctx context.Context, op *tenant.Operation, input any) (*tenant.Operation, error) {
	def, err := o.flow(op.Kind)
	if err != nil {
		return nil, err
	}
	op.Status = tenant.OpRunning
	created, err := o.store.CreateOperation(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := StartExecution(ctx, o.sfn, def.StateMachineARN, created.ExecutionName(), input); err != nil {
		_ = o.store.UpdateOperation(ctx, store.OpUpdate{ID: op.ID, Status: tenant.OpFailed, Error: "StartExecutionFailed", Cause: err.Error()})
		return nil, err
	}
	return created, nil
}

func (o *Operations) flow(kind string) (*Definition, error) {
	d, ok := o.flows[kind]
	if !ok {
		// Purges are not retried here: a failed purge needs no compensation and the
		// next purge sweep starts it again.
		return nil, &tenant.ConflictError{Reason: fmt.Sprintf("operations of kind %q are not run through this API (a failed purge is restarted by the purge sweep)", kind)}
	}
	return d, nil
}

// Get returns an operation. While the record says RUNNING it asks Step Functions, so
// an execution that died without reaching its release step still reports FAILED (the
// reconciler will release its tenant).
func (o *Operations) Get(ctx context.Context, id string) (*tenant.Operation, error) {
	op, err := o.store.GetOperation(ctx, id)
	if err != nil {
		return nil, err
	}
	def, ok := o.flows[op.Kind]
	if op.Status != tenant.OpRunning || !ok {
		return op, nil
	}
	out, err := o.sfn.Describe(ctx, ExecutionARN(def.StateMachineARN, op.ExecutionName()))
	if err != nil {
		return op, nil // the record is still the best answer we have
	}
	switch out.Status {
	case ExecutionFailed, ExecutionTimedOut, ExecutionAborted:
		// Re-read: the release step may have just finished the record.
		if again, err := o.store.GetOperation(ctx, id); err == nil && again.Done() {
			return again, nil
		}
		op.Status, op.Error, op.Cause = tenant.OpFailed, out.Error, out.Cause
		if op.Error == "" {
			op.Error = "Execution" + string(out.Status)
		}
	}
	return op, nil
}

// Retry runs the compensation of a failed operation that needs attention again: the
// tenant is claimed back for the operation and the operation reopened as the next
// attempt (one transaction), then the flow's state machine starts at its compensation
// chain under the name "<id>-retry-<n>". If the start fails, the reconciler releases
// the tenant again.
func (o *Operations) Retry(ctx context.Context, id string, by store.Actor) (*tenant.Operation, error) {
	op, err := o.store.GetOperation(ctx, id)
	if err != nil {
		return nil, err
	}
	def, err := o.flow(op.Kind)
	if err != nil {
		return nil, err
	}
	if _, err := tenant.Decide(tenant.Query{Action: tenant.ActRetry, Actor: by.As, Operation: op}); err != nil {
		return nil, err // not an operator, or the operation does not need attention
	}
	next := op.Attempt + 1
	by.OperationID = op.ID
	by.Reason = fmt.Sprintf("operator retry %d of %s compensation", next, op.Kind)
	_, err = o.store.Change(ctx, op.TenantID, by, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.Attention != op.ID || cur.Operation != "" {
			return store.Write{}, &tenant.ConflictError{TenantID: cur.ID, Reason: "tenant is no longer waiting for operation " + op.ID}
		}
		return store.Write{To: def.Busy, Reason: by.Reason, Mutate: func(x *tenant.Tenant) {
			x.Operation, x.Attention, x.PreviousState = op.ID, "", cur.State
		}, Op: &store.OpUpdate{ID: op.ID, Status: tenant.OpRunning, Reopen: true, Attempt: next}}, nil
	})
	if err != nil {
		return nil, err
	}
	op.Attempt, op.Status = next, tenant.OpRunning
	if err := StartExecution(ctx, o.sfn, def.StateMachineARN, op.ExecutionName(), def.RetryInput(op)); err != nil {
		return nil, err
	}
	return op, nil
}

// Resolve records that an operator fixed by hand what a failed operation could not
// undo: the operation keeps FAILED with the note, and its tenant is free again.
func (o *Operations) Resolve(ctx context.Context, id, note string, by store.Actor) (*tenant.Operation, error) {
	op, err := o.store.GetOperation(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := tenant.Decide(tenant.Query{Action: tenant.ActResolve, Actor: by.As, Operation: op}); err != nil {
		return nil, err
	}
	if err := o.store.ResolveOperation(ctx, op, note, by); err != nil {
		return nil, err
	}
	return o.store.GetOperation(ctx, id)
}
