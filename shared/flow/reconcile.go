package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// StartGrace is how long an open operation may be without an execution before it
// counts as never started: the API records the operation (and reserves its tenant)
// just before it calls StartExecution, so for a moment a live operation has none.
const StartGrace = 2 * time.Minute

// executionEnded asks Step Functions about op's current execution (the attempt's
// name) and says how the operation must end, or nil while it may still be running:
// the execution runs, or it does not exist yet and op has been open for less than
// StartGrace at now. An execution that does not exist after the grace is
// ExecutionNeverStarted; one that ended (succeeded, failed, timed out, stopped)
// without its flow ending the record is ExecutionEnded, with Step Functions' error in
// the cause. GET /operations/{id} (and so the webhook's wait for the operation its
// previous event started) and the reconciler judge an open operation by this one rule.
func executionEnded(ctx context.Context, x Executions, def *Definition, op *tenant.Operation, openedAt, now time.Time) (*CaughtError, error) {
	name := op.ExecutionName()
	out, err := x.Describe(ctx, ExecutionARN(def.StateMachineARN, name))
	switch {
	case errors.Is(err, ErrNoExecution):
		if now.Sub(openedAt) < StartGrace {
			return nil, nil
		}
		return &CaughtError{Error: "ExecutionNeverStarted",
			Cause: fmt.Sprintf("execution %s does not exist %s after the operation was opened", name, now.Sub(openedAt).Round(time.Second))}, nil
	case err != nil:
		return nil, fmt.Errorf("describe execution %s: %w", name, err)
	case out.Status == ExecutionRunning:
		return nil, nil
	}
	cause := fmt.Sprintf("execution %s ended %s", name, out.Status)
	if out.Error != "" {
		cause += ": " + out.Error
	}
	if out.Cause != "" {
		cause += ": " + out.Cause
	}
	return &CaughtError{Error: "ExecutionEnded", Cause: cause}, nil
}

// ReconcileStore is the persistence the reconciler needs: the kit's, and the sparse
// Open index of operations.
type ReconcileStore interface {
	Store
	OpenOperations(ctx context.Context, before time.Time, after store.OpenCursor, limit int32) ([]store.OpenOp, store.OpenCursor, error)
}

// Reconciler is run by an EventBridge schedule. It reads every open (RUNNING)
// operation from the sparse Open index — never a Scan — and asks Step Functions about
// its execution. An operation whose execution never started (the API died before
// StartExecution, or the start failed and so did the write that should have ended it)
// or ended without ending the record (stopped, timed out, its claim and release both
// failing for good) is ended exactly as its release step would have ended it:
// Kit.Release with the flow's Settle, which releases whatever it holds (its claim, or
// only the API's reservation), records what could not be undone, and marks it FAILED
// with the reason. So every operation ends, and no tenant stays held by one that has.
type Reconciler struct {
	kit   *Kit
	store ReconcileStore
	sfn   Executions
	flows map[string]*Definition
	log   *slog.Logger
}

// NewReconciler wires the reconciler for the given flows.
func NewReconciler(s ReconcileStore, x Executions, log *slog.Logger, flows ...*Definition) *Reconciler {
	r := &Reconciler{kit: &Kit{Store: s, Log: log}, store: s, sfn: x, flows: map[string]*Definition{}, log: log}
	for _, d := range flows {
		r.flows[d.Kind] = d
	}
	return r
}

// WithMetrics makes the reconciler's releases report their metrics to m, as the
// flows' own release steps do: an execution that died is a failure operators watch too.
func (r *Reconciler) WithMetrics(m Metrics) *Reconciler {
	r.kit.Metrics = m
	return r
}

// ReconcileResult says what one run did.
type ReconcileResult struct {
	// Now is the time the run judged by (the scheduled event's).
	Now time.Time `json:"now"`
	// Checked counts the open operations read; Running those whose execution is live
	// (or may still be starting).
	Checked int `json:"checked"`
	Running int `json:"running"`
	// Ended lists the operations this run ended, Released their tenants.
	Ended    []string `json:"ended"`
	Released []string `json:"released"`
	// Failed lists the operations that could not be checked or ended (logged; the
	// next run tries again).
	Failed []string `json:"failed"`
}

// Bounds of one run: the index is read in pages, and the run stops early (the next
// schedule goes on) when its Lambda deadline comes close.
const (
	reconcilePage    = 100
	reconcileReserve = 5 * time.Second
)

// Handle checks every operation that became open at or before the scheduled event's
// time. One operation that cannot be checked or ended is logged and counted; the
// others are still handled.
func (r *Reconciler) Handle(ctx context.Context, ev events.CloudWatchEvent) (ReconcileResult, error) {
	now := ev.Time.UTC()
	if ev.Time.IsZero() {
		now = time.Now().UTC()
	}
	res := ReconcileResult{Now: now, Ended: []string{}, Released: []string{}, Failed: []string{}}
	var cursor store.OpenCursor
	for {
		page, next, err := r.store.OpenOperations(ctx, now, cursor, reconcilePage)
		if err != nil {
			return res, err
		}
		for _, o := range page {
			if d, ok := ctx.Deadline(); ok && time.Until(d) < reconcileReserve {
				r.log.Warn("reconcile stopped near its deadline; the next run goes on", "checked", res.Checked)
				return res, nil
			}
			res.Checked++
			r.one(ctx, o, now, &res)
		}
		if next == nil {
			break
		}
		cursor = next
	}
	r.log.Info("reconciled", "now", now, "checked", res.Checked, "running", res.Running, "ended", len(res.Ended), "failed", len(res.Failed))
	return res, nil
}

// one checks one open operation and ends it when its execution is over.
func (r *Reconciler) one(ctx context.Context, o store.OpenOp, now time.Time, res *ReconcileResult) {
	log := r.log.With("tenant_id", o.TenantID, "operation_id", o.ID, "kind", o.Kind)
	fail := func(err error) {
		res.Failed = append(res.Failed, o.ID)
		log.Error("reconcile failed", "error", err.Error())
	}
	def, ok := r.flows[o.Kind]
	if !ok {
		fail(fmt.Errorf("no flow of kind %q is followed", o.Kind))
		return
	}
	caught, err := executionEnded(ctx, r.sfn, def, o.Operation, o.OpenedAt, now)
	if err != nil {
		fail(err)
		return
	}
	if caught == nil {
		res.Running++
		return
	}
	// The index is eventually consistent: read the record before acting on it.
	op, err := r.store.GetOperation(ctx, o.ID)
	if err != nil {
		fail(err)
		return
	}
	if op.Status != tenant.OpRunning || op.Attempt != o.Attempt {
		return // ended, or reopened for a new attempt, since the index was read
	}
	if op.Error != "" {
		caught = &CaughtError{Error: op.Error, Cause: op.Cause + " (" + caught.Cause + ")"}
	}
	outcome, err := r.kit.Release(ctx, def, Ref{OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind}, caught)
	if err != nil {
		fail(err)
		return
	}
	if outcome.Status != tenant.OpFailed {
		return // it had committed: its release step reports SUCCEEDED, so do we
	}
	res.Ended = append(res.Ended, op.ID)
	res.Released = append(res.Released, op.TenantID)
	log.Warn("ended an operation whose execution is over", "error", caught.Error, "cause", caught.Cause,
		"compensation_incomplete", outcome.CompensationIncomplete)
}
