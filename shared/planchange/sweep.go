package planchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// DueStore finds tenants whose pending change is due and clears what cannot run.
type DueStore interface {
	Due(ctx context.Context, kind string, now time.Time, after store.DueCursor, limit int32) ([]*tenant.Tenant, store.DueCursor, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
	ChangeFrom(ctx context.Context, id string, seen *tenant.Tenant, by store.Actor, decide store.Decide) (*tenant.Tenant, error)
	Change(ctx context.Context, id string, by store.Actor, decide store.Decide) (*tenant.Tenant, error)
}

// Sweeper starts the period-end downgrades that are due. It is run by an EventBridge
// schedule; "now" is the scheduled event's time, never the wall clock, so a delayed or
// replayed event decides the same way.
type Sweeper struct {
	store   DueStore
	sfn     flow.Executions
	periods Periods
	arn     string
	log     *slog.Logger
}

// NewSweeper wires the sweep. periods may be nil (billing disabled).
func NewSweeper(s DueStore, x flow.Executions, p Periods, downgradeARN string, log *slog.Logger) *Sweeper {
	return &Sweeper{store: s, sfn: x, periods: p, arn: downgradeARN, log: log}
}

// SweepResult says what one sweep did. Read counts the index entries it read;
// Waiting lists the tenants whose due change was left for a later sweep (another
// operation holds the tenant, or it became startable while the sweep ran).
type SweepResult struct {
	Now         time.Time `json:"now"`
	Read        int       `json:"read"`
	Started     []string  `json:"started"`
	Cleared     []string  `json:"cleared"`
	Rescheduled []string  `json:"rescheduled"`
	Waiting     []string  `json:"waiting"`
	Failed      []string  `json:"failed"`
}

// Bounds of one sweep: the index is read in pages whose tenants are handled by
// `workers` goroutines (each tenant costs a few sequential calls); at most maxStarts
// executions are started (the next schedule picks up the rest), and the sweep stops
// early when its Lambda deadline comes close.
const (
	sweepPage = 100
	workers   = 8
	maxStarts = 1000
	reserve   = 5 * time.Second
)

// Handle starts every due change: it reserves the tenant for the change's operation,
// then starts its execution. A tenant that cannot start (not ACTIVE, waiting for
// attention, operation gone) has its pending change cleared with the reason, so it
// leaves the index and is not read again. A tenant held by another operation keeps
// its change for a later sweep: that operation may roll back and hand the tenant back
// as it was (a lifecycle flow drops the change only when it commits). A failure to
// start one execution is logged and counted, its reservation lifted, and the sweep
// goes on (the entry stays and the next sweep tries again). Starting is idempotent (the execution name is the
// operation id), so overlapping sweeps cannot start a change twice.
func (s *Sweeper) Handle(ctx context.Context, ev events.CloudWatchEvent) (SweepResult, error) {
	now := ev.Time
	if now.IsZero() {
		return SweepResult{}, &tenant.ValidationError{Field: "time", Reason: "scheduled event has no time"}
	}
	res := SweepResult{Now: now, Started: []string{}, Cleared: []string{}, Rescheduled: []string{}, Waiting: []string{}, Failed: []string{}}
	var cursor store.DueCursor
	for len(res.Started) < maxStarts && !nearDeadline(ctx) {
		page, next, err := s.store.Due(ctx, store.DueChange, now, cursor, sweepPage)
		if err != nil {
			return res, err
		}
		res.Read += len(page)
		s.handlePage(ctx, page, now, &res)
		if next == nil {
			break
		}
		cursor = next
	}
	s.log.Info("downgrade sweep", "now", now, "read", res.Read, "started", len(res.Started), "cleared", len(res.Cleared),
		"rescheduled", len(res.Rescheduled), "waiting", len(res.Waiting), "failed", len(res.Failed))
	return res, nil
}

// handlePage handles one page of due tenants concurrently; results are merged under a
// lock, and no new tenant is taken once maxStarts or the deadline is reached.
func (s *Sweeper) handlePage(ctx context.Context, page []*tenant.Tenant, now time.Time, res *SweepResult) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan *tenant.Tenant)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range next {
				var one SweepResult
				s.one(ctx, t, now, &one)
				mu.Lock()
				res.Started = append(res.Started, one.Started...)
				res.Cleared = append(res.Cleared, one.Cleared...)
				res.Rescheduled = append(res.Rescheduled, one.Rescheduled...)
				res.Waiting = append(res.Waiting, one.Waiting...)
				res.Failed = append(res.Failed, one.Failed...)
				mu.Unlock()
			}
		}()
	}
	for _, t := range page {
		mu.Lock()
		full := len(res.Started) >= maxStarts
		mu.Unlock()
		if full || nearDeadline(ctx) {
			break
		}
		next <- t
	}
	close(next)
	wg.Wait()
}

func nearDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < reserve
}

// one handles one due tenant and records the result in res.
func (s *Sweeper) one(ctx context.Context, t *tenant.Tenant, now time.Time, res *SweepResult) {
	pc := t.PendingChange
	if pc == nil {
		return
	}
	log := s.log.With("tenant_id", t.ID, "operation_id", pc.OperationID)
	op, err := s.store.GetOperation(ctx, pc.OperationID)
	var nf *tenant.NotFoundError
	switch {
	case errors.As(err, &nf):
		s.clear(ctx, t, nil, always("its operation does not exist"), res)
		return
	case err != nil:
		res.Failed = append(res.Failed, t.ID)
		log.Error("sweep: read operation", "error", err.Error())
		return
	case op.Done():
		s.clear(ctx, t, nil, always("its operation already ended "+string(op.Status)), res)
		return
	}
	switch reason, wait := notStartable(t, op.ID); {
	case wait:
		res.Waiting = append(res.Waiting, t.ID)
		log.Info("period-end downgrade waits: another operation holds the tenant", "holder", t.Operation)
		return
	case reason != "":
		s.clear(ctx, t, op, startable(op), res)
		return
	}
	if later, ok := s.periodMoved(ctx, t, pc, now); ok {
		s.reschedule(ctx, t, op, later, res)
		return
	}
	if err := s.reserve(ctx, t, op); err != nil {
		var ce *tenant.ConflictError
		if errors.As(err, &ce) {
			// Decided again on a fresh read: a tenant taken meanwhile keeps its change.
			s.clear(ctx, t, op, startable(op), res)
			return
		}
		res.Failed = append(res.Failed, t.ID)
		log.Error("sweep: reserve tenant", "error", err.Error())
		return
	}
	if err := flow.StartExecution(ctx, s.sfn, s.arn, op.ExecutionName(), inputOf(op)); err != nil {
		res.Failed = append(res.Failed, t.ID)
		log.Error("sweep: start downgrade", "error", err.Error())
		if err := s.unreserve(ctx, t, op); err != nil {
			log.Error("sweep: lift the reservation of a downgrade that did not start (the reconciler will)", "error", err.Error())
		}
		return
	}
	res.Started = append(res.Started, op.ID)
	log.Info("period-end downgrade started", "effective_at", pc.EffectiveAt, "now", now)
}

// reserve holds the tenant for the due change before its execution starts, as the
// API does for the changes it starts (flow.Operations.Start): the tenant keeps its
// state and carries the operation's id, and the operation becomes RUNNING (open), in
// one transaction. From then on every other request on the tenant is refused naming
// this change, and the downgrade's claim takes the reservation over. A reservation of
// an earlier sweep (whose start failed to answer, or overlaps this one) is kept.
func (s *Sweeper) reserve(ctx context.Context, t *tenant.Tenant, op *tenant.Operation) error {
	by := store.Actor{Who: "system:downgrade-sweep", OperationID: op.ID}
	_, err := s.store.ChangeFrom(ctx, t.ID, t, by, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.PendingChange == nil || cur.PendingChange.OperationID != op.ID {
			return store.Write{}, &tenant.ConflictError{TenantID: cur.ID, Reason: "the pending change is no longer operation " + op.ID}
		}
		if cur.Operation == op.ID {
			return store.Write{}, store.ErrUnchanged
		}
		if err := flow.Available(cur); err != nil {
			return store.Write{}, err
		}
		if cur.State != tenant.Active {
			return store.Write{}, &tenant.ConflictError{TenantID: cur.ID, Reason: fmt.Sprintf("the tenant is %s", cur.State)}
		}
		return store.Write{Mutate: func(x *tenant.Tenant) { x.Operation = op.ID },
			Op: &store.OpUpdate{ID: op.ID, Status: tenant.OpRunning}}, nil
	})
	return err
}

// unreserve undoes reserve after the start failed: the tenant is free again and the
// change SCHEDULED, still due, so the next sweep tries again. If this write fails too,
// the reconciler ends the operation once its start grace has passed.
func (s *Sweeper) unreserve(ctx context.Context, t *tenant.Tenant, op *tenant.Operation) error {
	by := store.Actor{Who: "system:downgrade-sweep", OperationID: op.ID}
	_, err := s.store.ChangeFrom(ctx, t.ID, nil, by, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.Operation != op.ID || cur.PreviousState != "" {
			return store.Write{}, store.ErrUnchanged // not (only) reserved by it any more
		}
		return store.Write{Mutate: func(x *tenant.Tenant) { x.Operation = "" },
			Op: &store.OpUpdate{ID: op.ID, Status: tenant.OpScheduled}}, nil
	})
	return err
}

// periodMoved re-checks the billing period when the change runs: if the subscription
// is still in a period that started before the change's effective time and ends later
// (the period was extended, or the change was recorded against a stale period end),
// the change waits for that period's real end.
func (s *Sweeper) periodMoved(ctx context.Context, t *tenant.Tenant, pc *tenant.PendingChange, now time.Time) (time.Time, bool) {
	if s.periods == nil || t.Billing.SubscriptionID == "" {
		return time.Time{}, false
	}
	start, end, ok, err := s.periods.CurrentPeriod(ctx, t.Billing.SubscriptionID)
	if err != nil || !ok {
		if err != nil {
			s.log.Warn("sweep: billing period unknown; using the recorded effective time", "tenant_id", t.ID, "error", err.Error())
		}
		return time.Time{}, false
	}
	if start.Before(pc.EffectiveAt) && end.After(now) && end.After(pc.EffectiveAt) {
		return end.UTC(), true
	}
	return time.Time{}, false
}

// notStartable says why a tenant's due change cannot start: another operation holds
// the tenant (wait: it may hand the tenant back as it was), or a reason to clear it
// (not ACTIVE, waiting for an operator); neither when it can start.
func notStartable(t *tenant.Tenant, opID string) (reason string, wait bool) {
	switch {
	case t.Operation == opID && t.PreviousState == "" && t.Attention == "" && t.State == tenant.Active:
		return "", false // reserved for this very change by an earlier sweep whose start failed
	case t.Operation != "":
		return "", true
	case t.Attention != "":
		return flow.Available(t).Error(), false
	case t.State != tenant.Active:
		return fmt.Sprintf("the tenant is %s", t.State), false
	}
	return "", false
}

// startable is notStartable for the change of op, as clear re-decides it.
func startable(op *tenant.Operation) func(*tenant.Tenant) (string, bool) {
	return func(cur *tenant.Tenant) (string, bool) { return notStartable(cur, op.ID) }
}

// always is a clear reason that does not depend on the tenant (its operation).
func always(reason string) func(*tenant.Tenant) (string, bool) {
	return func(*tenant.Tenant) (string, bool) { return reason, false }
}

// clear drops a pending change that cannot run, with the reason in the audit trail and
// (when the operation exists) as the operation's FAILED cause, in one transaction. The
// reason is decided again on a fresh consistent read inside the conditional write,
// never on the index copy the sweep found the tenant with: a tenant freed (or taken
// by another operation) since keeps its change, and the entry waits for a later sweep.
func (s *Sweeper) clear(ctx context.Context, t *tenant.Tenant, op *tenant.Operation, why func(*tenant.Tenant) (string, bool), res *SweepResult) {
	opID := t.PendingChange.OperationID
	var reason string
	gone := false
	by := store.Actor{Who: "system:downgrade-sweep", OperationID: opID}
	_, err := s.store.Change(ctx, t.ID, by, func(cur *tenant.Tenant) (store.Write, error) {
		reason, gone = "", false
		if cur.PendingChange == nil || cur.PendingChange.OperationID != opID {
			gone = true // cleared or started meanwhile
			return store.Write{}, store.ErrUnchanged
		}
		r, _ := why(cur)
		if r == "" {
			return store.Write{}, store.ErrUnchanged
		}
		reason = r
		w := store.Write{Reason: "scheduled downgrade cleared: " + r, Mutate: func(x *tenant.Tenant) { x.PendingChange = nil }}
		if op != nil {
			w.Op = &store.OpUpdate{ID: op.ID, Status: tenant.OpFailed, Error: "PendingChangeNotStartable", Cause: r}
		}
		return w, nil
	})
	switch {
	case err != nil:
		res.Failed = append(res.Failed, t.ID)
		s.log.Error("sweep: clear pending change", "tenant_id", t.ID, "operation_id", opID, "error", err.Error())
	case gone:
		res.Cleared = append(res.Cleared, t.ID)
	case reason == "":
		res.Waiting = append(res.Waiting, t.ID)
		s.log.Info("scheduled downgrade kept: the tenant changed since the index was read", "tenant_id", t.ID, "operation_id", opID)
	default:
		res.Cleared = append(res.Cleared, t.ID)
		s.log.Warn("scheduled downgrade cleared", "tenant_id", t.ID, "operation_id", opID, "reason", reason)
	}
}

// reschedule moves a pending change (and its operation's effective time) to the real
// end of the current billing period.
func (s *Sweeper) reschedule(ctx context.Context, t *tenant.Tenant, op *tenant.Operation, at time.Time, res *SweepResult) {
	by := store.Actor{Who: "system:downgrade-sweep", OperationID: op.ID, Reason: "scheduled downgrade moved to the billing period end " + at.Format(time.RFC3339)}
	_, err := s.store.ChangeFrom(ctx, t.ID, t, by, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.PendingChange == nil || cur.PendingChange.OperationID != op.ID {
			return store.Write{}, store.ErrUnchanged
		}
		return store.Write{Reason: by.Reason, Mutate: func(x *tenant.Tenant) {
			pc := *x.PendingChange
			pc.EffectiveAt = at
			x.PendingChange, x.Billing.CurrentPeriodEnd = &pc, &at
		}}, nil
	})
	if err != nil {
		res.Failed = append(res.Failed, t.ID)
		s.log.Error("sweep: reschedule", "tenant_id", t.ID, "operation_id", op.ID, "error", err.Error())
		return
	}
	res.Rescheduled = append(res.Rescheduled, t.ID)
}
