package planchange

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// DueStore finds tenants whose pending change is due.
type DueStore interface {
	Due(ctx context.Context, kind string, now time.Time, limit int32) ([]*tenant.Tenant, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
}

// Sweeper starts the period-end downgrades that are due. It is run by an EventBridge
// schedule; "now" is the scheduled event's time, never the wall clock, so a delayed or
// replayed event decides the same way.
type Sweeper struct {
	store        DueStore
	sfn          Executions
	downgradeARN string
	log          *slog.Logger
}

// NewSweeper wires the sweep.
func NewSweeper(s DueStore, x Executions, downgradeARN string, log *slog.Logger) *Sweeper {
	return &Sweeper{store: s, sfn: x, downgradeARN: downgradeARN, log: log}
}

// SweepResult says what one sweep did.
type SweepResult struct {
	Now     time.Time `json:"now"`
	Due     int       `json:"due"`
	Started []string  `json:"started"`
}

// maxPerSweep bounds one invocation; the next schedule picks up the rest.
const maxPerSweep = 500

// Handle starts every due change. Starting is idempotent (the execution name is the
// operation id), so overlapping sweeps cannot start a change twice.
func (s *Sweeper) Handle(ctx context.Context, ev events.CloudWatchEvent) (SweepResult, error) {
	now := ev.Time
	if now.IsZero() {
		return SweepResult{}, &tenant.ValidationError{Field: "time", Reason: "scheduled event has no time"}
	}
	due, err := s.store.Due(ctx, store.DueChange, now, maxPerSweep)
	if err != nil {
		return SweepResult{}, err
	}
	res := SweepResult{Now: now, Due: len(due), Started: []string{}}
	for _, t := range due {
		pc := t.PendingChange
		if pc == nil || t.State != tenant.Active {
			continue
		}
		op, err := s.store.GetOperation(ctx, pc.OperationID)
		if err != nil {
			return res, fmt.Errorf("sweep %s: %w", t.ID, err)
		}
		in := Input{OperationID: op.ID, TenantID: t.ID, Kind: tenant.KindDowngrade, FromPlan: op.FromPlan, ToPlan: pc.Plan, AtPeriodEnd: true, RequestedBy: op.RequestedBy}
		if err := StartExecution(ctx, s.sfn, s.downgradeARN, in); err != nil {
			return res, err
		}
		res.Started = append(res.Started, op.ID)
		s.log.Info("period-end downgrade started", "tenant_id", t.ID, "operation_id", op.ID, "effective_at", pc.EffectiveAt, "now", now)
	}
	return res, nil
}
