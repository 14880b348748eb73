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

// ReconcileStore is the persistence the reconciler needs.
type ReconcileStore interface {
	Store
	ListByState(ctx context.Context, state tenant.State, cursor string, limit int32) (store.Page, error)
}

// Reconciler is run by an EventBridge schedule. It finds tenants held by an operation
// whose execution is no longer running — stopped, timed out, or failed before its
// release step could finish — and releases them exactly as the release step would have
// (Kit.Release with the flow's Settle), so no tenant stays in a busy state after its
// execution ended.
type Reconciler struct {
	kit   *Kit
	store ReconcileStore
	sfn   Executions
	flows []*Definition
	log   *slog.Logger
}

// NewReconciler wires the reconciler for the given flows.
func NewReconciler(s ReconcileStore, x Executions, log *slog.Logger, flows ...*Definition) *Reconciler {
	return &Reconciler{kit: &Kit{Store: s, Log: log}, store: s, sfn: x, flows: flows, log: log}
}

// WithMetrics makes the reconciler's releases report their metrics to m, as the
// flows' own release steps do: an execution that died is a failure operators watch too.
func (r *Reconciler) WithMetrics(m Metrics) *Reconciler {
	r.kit.Metrics = m
	return r
}

// ReconcileResult says what one run did.
type ReconcileResult struct {
	Checked  int      `json:"checked"`
	Running  int      `json:"running"`
	Released []string `json:"released"`
	Failed   []string `json:"failed"`
}

// reconcilePage is how many busy tenants one listing page holds.
const reconcilePage = 100

// Handle checks every tenant in a flow's busy state. One tenant that cannot be
// released is logged and counted; the others are still handled.
func (r *Reconciler) Handle(ctx context.Context, _ events.CloudWatchEvent) (ReconcileResult, error) {
	res := ReconcileResult{Released: []string{}, Failed: []string{}}
	seen := map[tenant.State]bool{}
	for _, def := range r.flows {
		if seen[def.Busy] {
			continue
		}
		seen[def.Busy] = true
		cursor := ""
		for {
			page, err := r.store.ListByState(ctx, def.Busy, cursor, reconcilePage)
			if err != nil {
				return res, err
			}
			for _, t := range page.Tenants {
				if t.Operation == "" {
					continue // resting in this state (a suspension's state is also a resting one)
				}
				res.Checked++
				released, err := r.reconcile(ctx, t)
				switch {
				case err != nil:
					res.Failed = append(res.Failed, t.ID)
					r.log.Error("reconcile failed", "tenant_id", t.ID, "operation_id", t.Operation, "error", err.Error())
				case released:
					res.Released = append(res.Released, t.ID)
				default:
					res.Running++
				}
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
	}
	r.log.Info("reconciled", "checked", res.Checked, "running", res.Running, "released", len(res.Released), "failed", len(res.Failed))
	return res, nil
}

// reconcile releases t when the execution of its operation is over.
func (r *Reconciler) reconcile(ctx context.Context, t *tenant.Tenant) (bool, error) {
	op, err := r.store.GetOperation(ctx, t.Operation)
	if err != nil {
		return false, err
	}
	var def *Definition
	for _, d := range r.flows {
		if d.Kind == op.Kind && d.Busy == t.State {
			def = d
		}
	}
	if def == nil {
		return false, fmt.Errorf("no flow of kind %q with busy state %s", op.Kind, t.State)
	}
	out, err := r.sfn.Describe(ctx, ExecutionARN(def.StateMachineARN, op.ExecutionName()))
	cause := ""
	switch {
	case errors.Is(err, ErrNoExecution):
		cause = "execution " + op.ExecutionName() + " does not exist"
	case err != nil:
		return false, fmt.Errorf("describe execution %s: %w", op.ExecutionName(), err)
	case out.Status == ExecutionRunning:
		return false, nil
	default:
		cause = fmt.Sprintf("execution %s ended %s", op.ExecutionName(), out.Status)
		if e := out.Error; e != "" {
			cause += ": " + e
		}
	}
	ref := Ref{OperationID: op.ID, TenantID: t.ID, Kind: op.Kind}
	caught := &CaughtError{Error: "ExecutionEnded", Cause: cause}
	if op.Error != "" {
		caught = &CaughtError{Error: op.Error, Cause: op.Cause + " (" + cause + ")"}
	}
	outcome, err := r.kit.Release(ctx, def, ref, caught)
	if err != nil {
		return false, err
	}
	r.log.Warn("released a tenant whose execution had ended", "tenant_id", t.ID, "operation_id", op.ID, "cause", cause,
		"status", outcome.Status, "compensation_incomplete", outcome.CompensationIncomplete, "at", time.Now().UTC())
	return true, nil
}
