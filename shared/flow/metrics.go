package flow

import (
	"log/slog"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/metrics"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Metrics receives operating metrics (shared/metrics.Writer writes them as EMF lines).
type Metrics interface {
	Emit(metrics.Event) error
}

// Emit sends e to m with the operation's ids as properties, so the line can be
// found next to the step's log lines. A metric that cannot be written is logged and
// dropped: it must never fail the step or its retry. A nil m emits nothing.
func Emit(m Metrics, log *slog.Logger, ref Ref, e metrics.Event) {
	if m == nil {
		return
	}
	if err := m.Emit(e.With("tenant_id", ref.TenantID, "operation_id", ref.OperationID)); err != nil && log != nil {
		log.Warn("metric not written", "metric", e.Name, "tenant_id", ref.TenantID, "operation_id", ref.OperationID, "error", err.Error())
	}
}

// Metric emits e for the operation ref through the kit's Metrics.
func (k *Kit) Metric(ref Ref, e metrics.Event) { Emit(k.Metrics, k.Log, ref, e) }

// committed emits what a committed operation reports: one TransitionsSucceeded of
// its flow, and its duration by flow and the plan it left the tenant on.
func (k *Kit) committed(ref Ref, op *tenant.Operation, plan tenant.Plan) {
	k.Metric(ref, metrics.Counted(metrics.TransitionsSucceeded, ref.Kind, false))
	if plan == "" {
		plan = "none"
	}
	k.Metric(ref, metrics.Event{
		Name: metrics.OperationDuration, Unit: metrics.Milliseconds, Value: float64(time.Since(started(op)).Milliseconds()),
		Dimensions: map[string]string{metrics.Flow: ref.Kind, metrics.Plan: string(plan)},
		Sets:       [][]string{{metrics.Flow, metrics.Plan}},
	})
}

// started is when an operation began to run: when it was recorded, or for a change
// scheduled at the end of the billing period, when it became due.
func started(op *tenant.Operation) time.Time {
	if op.EffectiveAt != nil && op.EffectiveAt.After(op.CreatedAt) {
		return *op.EffectiveAt
	}
	return op.CreatedAt
}

// failed emits what a released operation reports: one TransitionsFailed of its flow
// and, when compensation left something undone, one TenantsNeedingAttention. Both are
// also published without dimensions, the series the alarms watch.
func (k *Kit) failed(ref Ref, errName string, incomplete []string) {
	k.Metric(ref, metrics.Counted(metrics.TransitionsFailed, ref.Kind, true).With("error", errName))
	if len(incomplete) > 0 {
		k.Metric(ref, metrics.Counted(metrics.TenantsNeedingAttention, ref.Kind, true).
			With("error", errName, "compensation_incomplete", strings.Join(incomplete, ",")))
	}
}
