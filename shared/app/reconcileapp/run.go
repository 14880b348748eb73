package reconcileapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/flow"
)

// Operations is the operations pass: flow.Reconciler.
type Operations interface {
	Handle(ctx context.Context, ev events.CloudWatchEvent) (flow.ReconcileResult, error)
}

// DeadJobs is the export jobs pass: export.Service.EndDeadJobs.
type DeadJobs interface {
	EndDeadJobs(ctx context.Context, now time.Time) (checked, ended int, err error)
}

// Run is one scheduled reconcile run. Issue 19's promise is that nothing stays open
// without a live execution, whether it is an operation or an export job, so one
// schedule covers both: first the operations, then the export jobs. Each pass reads
// its own entries of the sparse Open index and neither depends on the other, so a
// failure of one is logged and counted and the other still runs.
type Run struct {
	Operations Operations
	Exports    DeadJobs
	Log        *slog.Logger
}

// Result is what one run did: the operations pass's fields as they were, and the
// export jobs pass's counts.
type Result struct {
	flow.ReconcileResult
	// ExportsChecked counts the open export jobs past their start grace that the run
	// read; ExportsEnded those it ended failed (their execution ended or never
	// started); ExportsFailed those it could not check or end (logged; the next run
	// tries again).
	ExportsChecked int `json:"exports_checked"`
	ExportsEnded   int `json:"exports_ended"`
	ExportsFailed  int `json:"exports_failed"`
}

// Handle runs both passes, judging by the scheduled event's time (the wall clock when
// the event has none), the time the operations pass judges by too. A pass that could
// not read its index at all fails the run once both have run, so the schedule's
// retries and dead-letter queue see it; a single operation or job that could not be
// handled is only logged and counted, as the operations pass always did.
func (r *Run) Handle(ctx context.Context, ev events.CloudWatchEvent) (Result, error) {
	now := ev.Time.UTC()
	if ev.Time.IsZero() {
		now = time.Now().UTC()
		ev.Time = now
	}
	var res Result
	ops, opsErr := r.Operations.Handle(ctx, ev)
	res.ReconcileResult = ops
	if opsErr != nil {
		r.Log.Error("reconcile: the operations pass failed; the export jobs pass still runs", "error", opsErr.Error())
		opsErr = fmt.Errorf("operations: %w", opsErr)
	}
	checked, ended, err := r.Exports.EndDeadJobs(ctx, now)
	res.ExportsChecked, res.ExportsEnded = checked, ended
	var exportsErr error
	if jobs, ok := err.(interface{ Unwrap() []error }); ok {
		// One error per job that could not be checked or ended (EndDeadJobs joins them).
		for _, e := range jobs.Unwrap() {
			res.ExportsFailed++
			r.Log.Error("reconcile: an export job could not be checked or ended; the next run tries again", "error", e.Error())
		}
	} else if err != nil {
		res.ExportsFailed++
		r.Log.Error("reconcile: the export jobs pass failed", "error", err.Error())
		exportsErr = fmt.Errorf("export jobs: %w", err)
	}
	r.Log.Info("reconciled export jobs", "now", now, "checked", res.ExportsChecked, "ended", res.ExportsEnded, "failed", res.ExportsFailed)
	return res, errors.Join(opsErr, exportsErr)
}
