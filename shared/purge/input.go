// Package purge is the verified hard delete of a tenant whose retention has ended,
// built on the flow kit (shared/flow): Sweeper, run by an EventBridge schedule, finds
// the DELETED tenants whose purge_after has passed (the sparse Due index, never a Scan)
// and starts one execution of statemachines/purge.asl.json each; Steps holds one
// handler per state of that machine.
//
// The purge claims the DELETED tenant for its operation (it stays DELETED while the
// purge owns it), stops its running exports, takes an inventory of every data source
// once, deletes each source in bounded chunks (the state machine loops until nothing is
// left, so no Lambda run ever has to delete a whole large tenant) and then its Stripe
// customer, reads every source back to verify it is empty, writes a deletion
// certificate, commits the PURGED tombstone (the tenant id, its lifecycle dates and the
// certificate, with name, email, usage and billing references removed and the audit
// trail scrubbed of personal data) and only then publishes TenantPurged with it. Every step is safe to repeat and the whole flow is safe to restart: deleting
// what is already gone is a no-op, and the inventory stays on the tenant item across
// attempts, so a purge killed midway and started again by the next sweep still
// certifies what existed before the first deletion.
package purge

import (
	"context"
	"fmt"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Input is the execution input and what every step receives.
type Input struct {
	flow.Ref
	// Delete is the last delete chunk's answer (ResultPath $.delete); the state
	// machine loops while Delete.More.
	Delete *Progress `json:"delete,omitempty"`
	// Now is the scheduled event's time that found the tenant due: the purge decides
	// "retention over" by it, like the sweep, so a delayed or replayed schedule
	// decides the same way, but never by a time later than Start's own clock (a start
	// by hand with a future now cannot purge early). Without it the clock decides.
	Now *time.Time `json:"now,omitempty"`
	// Error is set by the state machine's Catch (ResultPath $.error).
	Error *flow.CaughtError `json:"error,omitempty"`
}

// Progress is what one delete chunk did and whether anything may remain.
type Progress struct {
	More    bool             `json:"more"`
	Deleted map[string]int64 `json:"deleted"`
}

// inputOf is the execution input of an operation.
func inputOf(op *tenant.Operation) Input {
	return Input{Ref: flow.Ref{OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind}}
}

// Busy is the state a purge holds its tenant in: the tenant stays DELETED (and in the
// Due index) until the purge commits, so a failed purge leaves it exactly where the
// next sweep finds it again.
const Busy = tenant.Deleted

// Definition returns the flow-kit definition of the purge. A failed purge releases its
// tenant to DELETED with nothing to undo: deletion only moves forward, the tenant
// stays due, and the next sweep starts a new purge that continues where this one
// stopped. An operator retry (never needed: a purge never needs attention) simply runs
// the purge forward again.
//
// The purge sweep does the reconciler's job for purges: it releases a due tenant whose
// purge execution ended without releasing it, then starts it again. Registering the
// definition with flow.NewReconciler as well is harmless (both release through
// Kit.Release, which is idempotent) provided the reconciler skips tenants that rest in
// the busy state without an operation, as DELETED tenants mostly do.
func Definition(stateMachineARN string) *flow.Definition {
	return &flow.Definition{
		Kind: tenant.KindPurge, Busy: Busy, StateMachineARN: stateMachineARN,
		Settle: func(context.Context, *tenant.Tenant, *tenant.Operation) (flow.Settlement, error) {
			return flow.Settlement{To: tenant.Deleted}, nil
		},
		RetryInput: func(op *tenant.Operation) any { return inputOf(op) },
	}
}

func checkKind(ref flow.Ref) error {
	if ref.Kind != tenant.KindPurge {
		return &tenant.ValidationError{Field: "kind", Reason: "must be " + tenant.KindPurge}
	}
	if ref.OperationID == "" || ref.TenantID == "" {
		return &tenant.ValidationError{Field: "operation_id", Reason: "operation_id and tenant_id are required"}
	}
	return nil
}

// NotEmptyError is a source that still holds items of the tenant when the purge
// verifies it. The state machine retries it a few times (a straggling write, a listing
// that lags) and then catches it: the purge fails, the tenant stays DELETED and due,
// and the next sweep deletes what was left.
type NotEmptyError struct {
	TenantID string
	Source   string
	Found    int
}

// Error names the source and what was found.
func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("purge of %s not verified: source %s still holds %d item(s)", e.TenantID, e.Source, e.Found)
}

// RetentionNotOverError refuses to purge a tenant whose retention window is still
// open. The rule is the lifecycle policy's (tenant.PreRetentionOver); the name stays
// here because the purge state machine and its callers know it by this name.
type RetentionNotOverError = tenant.RetentionNotOverError
