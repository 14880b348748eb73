package purge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// SweepStore is the persistence the sweep needs: the Due index, and what the flow kit
// needs to record operations and release tenants.
type SweepStore interface {
	flow.OperationsStore
	Due(ctx context.Context, kind string, now time.Time, after store.DueCursor, limit int32) ([]*tenant.Tenant, store.DueCursor, error)
}

var _ SweepStore = (*store.Store)(nil)

// Sweeper starts the purges that are due, and publishes the TenantPurged events a
// committed purge left pending. It is run by an EventBridge schedule; "now" is the
// scheduled event's time, so a delayed or replayed event decides the same way, but
// never later than the wall clock: an event time in the future would only start
// purges that the purge's first step refuses (a purge never runs before purge_after
// by the clock).
type Sweeper struct {
	store SweepStore
	sfn   flow.Executions
	ops   *flow.Operations
	kit   *flow.Kit
	def   *flow.Definition
	log   *slog.Logger
	pub   Publisher
	clock func() time.Time
}

// NewSweeper wires the sweep on the purge state machine arn.
func NewSweeper(s SweepStore, x flow.Executions, arn string, log *slog.Logger) *Sweeper {
	def := Definition(arn)
	return &Sweeper{store: s, sfn: x, ops: flow.NewOperations(s, x, def), kit: &flow.Kit{Store: s, Log: log}, def: def, log: log, clock: time.Now}
}

// WithMetrics makes the sweep's releases of ended purges report their metrics to m,
// as the purge's own release step does.
func (s *Sweeper) WithMetrics(m flow.Metrics) *Sweeper {
	s.kit.Metrics = m
	return s
}

// WithPublisher makes the sweep the relay of the purge's outbox: it publishes
// TenantPurged for a purge that committed but whose Finish step never published (it
// kept failing after the commit).
func (s *Sweeper) WithPublisher(p Publisher) *Sweeper {
	s.pub = p
	return s
}

// SweepResult says what one sweep did. Read counts the Due index entries it read
// (tenants due at Now, never the whole table); Started lists the operations started,
// Released the tenants whose ended purge was released first, Skipped the due tenants
// left alone (a purge running, another flow holding them, or waiting for an operator),
// Failed the tenants that could not be started (the next sweep tries again).
// Published lists the purged tenants whose pending TenantPurged the sweep published.
type SweepResult struct {
	Now       time.Time `json:"now"`
	Read      int       `json:"read"`
	Started   []string  `json:"started"`
	Released  []string  `json:"released"`
	Skipped   []string  `json:"skipped"`
	Failed    []string  `json:"failed"`
	Published []string  `json:"published"`
}

// Bounds of one sweep: the index is read in pages; at most maxStarts purges are started
// (the next schedule picks up the rest), and the sweep stops early when its Lambda
// deadline comes close.
const (
	sweepPage    = 100
	maxStarts    = 1000
	sweepReserve = 5 * time.Second
	// relayGrace is how long a committed purge's own Finish step has to publish its
	// TenantPurged (its retries take minutes at most) before the sweep does.
	relayGrace = 15 * time.Minute
)

// Handle starts one purge per due tenant. Every tenant is handled on its own: a
// failure is logged with its tenant id, counted, and the sweep goes on. A started purge
// keeps its tenant DELETED (and in the index) until it commits, so the sweep pages on
// with the cursor rather than starting over.
func (s *Sweeper) Handle(ctx context.Context, ev events.CloudWatchEvent) (SweepResult, error) {
	now := ev.Time
	if now.IsZero() {
		return SweepResult{}, &tenant.ValidationError{Field: "time", Reason: "scheduled event has no time"}
	}
	res := SweepResult{Now: now, Started: []string{}, Released: []string{}, Skipped: []string{}, Failed: []string{}, Published: []string{}}
	// Publishing a committed certificate late is harmless, so the relay goes by the
	// event's time; what becomes due to purge never by a time later than the clock.
	if err := s.relay(ctx, now, &res); err != nil {
		return res, err
	}
	if clock := s.clock().UTC(); clock.Before(now) {
		now = clock
		res.Now = now
	}
	var cursor store.DueCursor
	for len(res.Started) < maxStarts && !nearDeadline(ctx) {
		page, next, err := s.store.Due(ctx, store.DuePurge, now, cursor, sweepPage)
		if err != nil {
			return res, err
		}
		res.Read += len(page)
		for _, t := range page {
			if len(res.Started) >= maxStarts || nearDeadline(ctx) {
				break
			}
			if err := s.one(ctx, t, now, &res); err != nil {
				res.Failed = append(res.Failed, t.ID)
				s.log.Error("purge sweep: tenant not started", "tenant_id", t.ID, "operation_id", t.Operation, "error", err.Error())
			}
		}
		if next == nil {
			break
		}
		cursor = next
	}
	s.log.Info("purge sweep", "now", now, "read", res.Read, "started", len(res.Started), "released", len(res.Released),
		"skipped", len(res.Skipped), "failed", len(res.Failed), "published", len(res.Published))
	return res, nil
}

// relay publishes the TenantPurged events still pending on purged tenants (the Due
// index, kind PURGED_EVENT) whose commit is older than relayGrace. The sweep's "now"
// decides, like everything else it does; a tenant that fails is logged and counted,
// and the next sweep tries again.
func (s *Sweeper) relay(ctx context.Context, now time.Time, res *SweepResult) error {
	if s.pub == nil {
		return nil
	}
	var cursor store.DueCursor
	for !nearDeadline(ctx) {
		page, next, err := s.store.Due(ctx, store.DuePurgedEvent, now.Add(-relayGrace), cursor, sweepPage)
		if err != nil {
			return err
		}
		for _, t := range page {
			if err := PublishPurged(ctx, s.store, s.pub, t); err != nil {
				res.Failed = append(res.Failed, t.ID)
				s.log.Error("purge sweep: TenantPurged not published", "tenant_id", t.ID, "error", err.Error())
				continue
			}
			res.Published = append(res.Published, t.ID)
			s.log.Warn("purge sweep: published the TenantPurged its purge's Finish step did not", "tenant_id", t.ID)
		}
		if next == nil {
			return nil
		}
		cursor = next
	}
	return nil
}

func nearDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < sweepReserve
}

// one starts the purge of one due tenant, first releasing it from a purge whose
// execution has ended without releasing it.
func (s *Sweeper) one(ctx context.Context, t *tenant.Tenant, now time.Time, res *SweepResult) error {
	log := s.log.With("tenant_id", t.ID)
	if t.State != tenant.Deleted {
		return nil // the index only holds DELETED tenants; a stale page entry
	}
	if t.Attention != "" {
		res.Skipped = append(res.Skipped, t.ID)
		log.Warn("purge sweep: tenant waits for an operator", "operation_id", t.Attention)
		return nil
	}
	cur := *t
	if t.Operation != "" {
		released, err := s.releaseEnded(ctx, t)
		if err != nil {
			return err
		}
		if !released {
			res.Skipped = append(res.Skipped, t.ID)
			return nil
		}
		res.Released = append(res.Released, t.ID)
		cur.Operation = ""
	}
	// The index found the tenant due by now; the policy decides the same way, and the
	// purge's claim asks it again.
	if _, err := tenant.Decide(tenant.Query{Action: tenant.ActPurge, Actor: tenant.ActorSchedule, Tenant: &cur, Now: now}); err != nil {
		res.Skipped = append(res.Skipped, t.ID)
		log.Warn("purge sweep: the policy refuses the purge", "error", err.Error())
		return nil
	}
	op := &tenant.Operation{ID: flow.NewOperationID(), TenantID: t.ID, Kind: tenant.KindPurge,
		RequestedBy: "system:purge-sweep", PreviousState: tenant.Deleted, EffectiveAt: &now,
		Action: tenant.ActPurge, Actor: tenant.ActorSchedule}
	in := inputOf(op)
	in.Now = &now
	if _, err := s.ops.Start(ctx, op, in); err != nil {
		return err
	}
	res.Started = append(res.Started, op.ID)
	log.Info("purge started", "operation_id", op.ID, "purge_after", t.PurgeAfter)
	return nil
}

// releaseEnded releases t from the purge holding it when that purge's execution is no
// longer running (stopped, timed out, or its release step kept failing), as its own
// release step would have. It reports false, changing nothing, while the purge runs or
// when another flow holds the tenant.
func (s *Sweeper) releaseEnded(ctx context.Context, t *tenant.Tenant) (bool, error) {
	op, err := s.store.GetOperation(ctx, t.Operation)
	if err != nil {
		return false, err
	}
	log := s.log.With("tenant_id", t.ID, "operation_id", op.ID)
	if op.Kind != tenant.KindPurge {
		log.Info("purge sweep: another flow holds the tenant", "kind", op.Kind)
		return false, nil
	}
	out, err := s.sfn.Describe(ctx, flow.ExecutionARN(s.def.StateMachineARN, op.ExecutionName()))
	cause := ""
	switch {
	case errors.Is(err, flow.ErrNoExecution):
		cause = "execution " + op.ExecutionName() + " does not exist"
	case err != nil:
		return false, fmt.Errorf("describe execution %s: %w", op.ExecutionName(), err)
	case out.Status == flow.ExecutionRunning:
		log.Info("purge sweep: purge still running")
		return false, nil
	default:
		cause = fmt.Sprintf("execution %s ended %s", op.ExecutionName(), out.Status)
	}
	ref := flow.Ref{OperationID: op.ID, TenantID: t.ID, Kind: op.Kind}
	outcome, err := s.kit.Release(ctx, s.def, ref, &flow.CaughtError{Error: "ExecutionEnded", Cause: cause})
	if err != nil {
		return false, err
	}
	if outcome.Status == tenant.OpSucceeded {
		// Committed after the page was read: the tenant is PURGED now, nothing to start.
		return false, nil
	}
	log.Warn("purge sweep: released a tenant whose purge had ended", "cause", cause)
	return true, nil
}
