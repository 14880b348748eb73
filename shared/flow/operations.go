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

// Start records op (RUNNING) and reserves its tenant for it in one transaction —
// the tenant keeps its state and carries the operation's id, so from this moment
// every other request on it is refused (409 naming op), exactly as once the flow has
// claimed it — and then starts its execution with input. The flow's claim takes the
// reservation over. When the start fails, the reservation is lifted and op is FAILED
// (one transaction), so it never shows RUNNING without an execution; if even that
// write fails, the reconciler ends op once its start grace has passed.
func (o *Operations) Start(ctx context.Context, op *tenant.Operation, input any) (*tenant.Operation, error) {
	def, err := o.flow(op.Kind)
	if err != nil {
		return nil, err
	}
	created, err := o.reserve(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := StartExecution(ctx, o.sfn, def.StateMachineARN, created.ExecutionName(), input); err != nil {
		if rerr := o.abandon(ctx, created, err); rerr != nil {
			return nil, fmt.Errorf("%w (operation %s is left to the reconciler: ending it failed: %v)", err, op.ID, rerr)
		}
		return nil, err
	}
	return created, nil
}

// reserve records op as RUNNING and sets it as its tenant's operation, in one
// conditional transaction: refused, writing nothing, when the tenant is held or waits
// for an operator (a *tenant.ConflictError naming that operation). The reservation is
// not audited: the tenant's state does not change until the flow claims it.
func (o *Operations) reserve(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error) {
	created := *op
	created.Status = tenant.OpRunning
	next, err := o.store.Change(ctx, op.TenantID, store.Actor{Who: op.RequestedBy, OperationID: op.ID}, func(cur *tenant.Tenant) (store.Write, error) {
		if err := Available(cur); err != nil {
			return store.Write{}, err
		}
		return store.Write{Create: &created, Mutate: func(x *tenant.Tenant) { x.Operation = op.ID }}, nil
	})
	if err != nil {
		return nil, err
	}
	created.CreatedAt, created.UpdatedAt = next.UpdatedAt, next.UpdatedAt
	return &created, nil
}

// abandonTimeout bounds the write that ends an operation whose start failed. It runs
// on a context of its own: the request's may be spent by then (a start that timed out).
const abandonTimeout = 5 * time.Second

// abandon ends op, whose execution could not be started: its tenant's reservation is
// lifted and op FAILED with the start's error, in one transaction. A tenant the
// execution has claimed after all (the start's answer was lost, not the start) is
// left to that execution.
func (o *Operations) abandon(ctx context.Context, op *tenant.Operation, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
	defer cancel()
	ref := Ref{OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind}
	u := store.OpUpdate{ID: op.ID, Status: tenant.OpFailed, Error: "StartExecutionFailed", Cause: cause.Error()}
	claimed := false
	_, err := o.store.Change(ctx, op.TenantID, actor(ref, ""), func(cur *tenant.Tenant) (store.Write, error) {
		switch {
		case reserved(cur, ref):
			return store.Write{Op: &u, Mutate: func(x *tenant.Tenant) { x.Operation = "" }}, nil
		case cur.Operation == op.ID:
			claimed = true
		}
		return store.Write{}, store.ErrUnchanged
	})
	if err != nil || claimed {
		return err
	}
	// Not reserved by op any more (the reconciler, or the flow's own release, ended
	// it): make sure the record has ended too.
	err = o.store.UpdateOperation(ctx, u)
	var ce *tenant.ConflictError
	if errors.As(err, &ce) {
		return nil // already ended
	}
	return err
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
// it never reports RUNNING for an execution that has ended or that does not exist
// once the start's grace has passed: it then reports FAILED with the reason the
// reconciler will record when it ends the operation (and releases its tenant).
func (o *Operations) Get(ctx context.Context, id string) (*tenant.Operation, error) {
	op, err := o.store.GetOperation(ctx, id)
	if err != nil {
		return nil, err
	}
	def, ok := o.flows[op.Kind]
	if op.Status != tenant.OpRunning || !ok {
		return op, nil
	}
	// UpdatedAt is when the record last changed: at the latest, when it was opened.
	caught, err := executionEnded(ctx, o.sfn, def, op, op.UpdatedAt, time.Now())
	if err != nil || caught == nil {
		return op, nil // running, or the record is still the best answer we have
	}
	// Re-read: the release step may have just finished the record.
	if again, err := o.store.GetOperation(ctx, id); err == nil && again.Done() {
		return again, nil
	}
	op.Status, op.Error, op.Cause = tenant.OpFailed, caught.Error, caught.Cause
	return op, nil
}

// Retry runs the compensation of a failed operation that needs attention again: the
// tenant is claimed back for the operation (with the flow's RetryMutate) and the
// operation reopened as the next attempt (one transaction), then the flow's state
// machine starts at its compensation chain under the name "<id>-retry-<n>". If the
// start fails, the reconciler releases the tenant again.
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
			if def.RetryMutate != nil {
				def.RetryMutate(op, x)
			}
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
