package tenant

import (
	"fmt"
	"time"
)

// OperationStatus is where a long-running operation is.
type OperationStatus string

// Operation statuses. SCHEDULED is a change waiting for its effective time.
const (
	OpScheduled OperationStatus = "SCHEDULED"
	OpRunning   OperationStatus = "RUNNING"
	OpSucceeded OperationStatus = "SUCCEEDED"
	OpFailed    OperationStatus = "FAILED"
)

// Operation kinds: one per flow.
const (
	KindUpgrade      = "upgrade"
	KindDowngrade    = "downgrade"
	KindDeletion     = "deletion"
	KindReactivation = "reactivation"
	KindPurge        = "purge"
	KindSuspension   = "suspension"
)

// Operation is one lifecycle flow run for a tenant; its id is also the Step Functions
// execution name, so starting it twice runs it once.
type Operation struct {
	ID          string          `json:"operation_id"`
	TenantID    string          `json:"tenant_id"`
	Kind        string          `json:"kind"`
	Status      OperationStatus `json:"status"`
	FromPlan    Plan            `json:"from_plan,omitempty"`
	ToPlan      Plan            `json:"to_plan,omitempty"`
	AtPeriodEnd bool            `json:"at_period_end,omitempty"`
	EffectiveAt *time.Time      `json:"effective_at,omitempty"`
	RequestedBy string          `json:"requested_by,omitempty"`
	Error       string          `json:"error,omitempty"`
	Cause       string          `json:"cause,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`

	// PreviousState is where the tenant was when the operation claimed it, so a failed
	// flow puts it back there.
	PreviousState State `json:"previous_state,omitempty"`
	// RetentionDays is the retention window a deletion chose.
	RetentionDays int `json:"retention_days,omitempty"`
	// Reason is the free text of a suspension (the operator's words, or the webhook's
	// cause name).
	Reason string `json:"reason,omitempty"`
	// Action and Actor are the policy rule that allowed the operation and the class of
	// caller that asked (policy.go); the flow's first step asks the policy again with
	// them. Empty on operations recorded before the policy existed.
	Action Action `json:"action,omitempty"`
	Actor  Actor  `json:"actor,omitempty"`
	// ToState is where a reactivation ends: ACTIVE, or SUSPENDED when the tenant's
	// suspension survives a win-back ("" reads as ACTIVE).
	ToState State `json:"to_state,omitempty"`
	// SuspendCause is the cause a suspension records on the tenant.
	SuspendCause string `json:"suspend_cause,omitempty"`
	// Attempt counts operator retries: the execution of attempt n > 0 is named
	// "<id>-retry-<n>".
	Attempt int `json:"attempt,omitempty"`
	// CompensationIncomplete names what a failed operation could not undo (e.g.
	// "billing", "entitlements"); NeedsAttention is set while that list is not empty
	// and nobody retried or resolved it. The tenant is released all the same, but keeps
	// the operation id in Tenant.Attention so no other flow starts on top of it.
	CompensationIncomplete []string `json:"compensation_incomplete,omitempty"`
	NeedsAttention         bool     `json:"needs_attention,omitempty"`
	// Resolution is the operator's note when an operation that needed attention was
	// resolved by hand.
	Resolution string `json:"resolution,omitempty"`
	// Marks are facts a step recorded BEFORE a side effect it cannot read back cheaply
	// (e.g. "billing": the billing system may have been changed), so compensation knows
	// what to undo after a lost answer.
	Marks []string `json:"-"`
}

// Done reports whether the operation has finished.
func (o *Operation) Done() bool { return o.Status == OpSucceeded || o.Status == OpFailed }

// Marked reports whether a step recorded mark m for this operation.
func (o *Operation) Marked(m string) bool {
	for _, x := range o.Marks {
		if x == m {
			return true
		}
	}
	return false
}

// ExecutionName is the Step Functions execution name of the operation's current
// attempt: the operation id itself, then "<id>-retry-<n>" for operator retries.
func (o *Operation) ExecutionName() string {
	if o.Attempt == 0 {
		return o.ID
	}
	return fmt.Sprintf("%s-retry-%d", o.ID, o.Attempt)
}

// Access states of entitlements: what the application lets a tenant's users do.
const (
	AccessActive    = "active"    // the plan's limits apply
	AccessSuspended = "suspended" // read and export only
	AccessRevoked   = "revoked"   // deleted: no access
)

// Entitlements are what the application enforces for a tenant: the plan's limits,
// written by provisioning before billing changes and restored on rollback.
type Entitlements struct {
	TenantID string `json:"tenant_id"`
	Plan     Plan   `json:"plan"`
	Limits   Limits `json:"limits"`
	// Access is AccessActive, AccessSuspended or AccessRevoked ("" reads as active).
	Access      string `json:"access,omitempty"`
	OperationID string `json:"operation_id,omitempty"`
	// Previous is what the last operation replaced, so its rollback can restore it.
	Previous *PlanLimits `json:"previous,omitempty"`
	// EventPublished records that the change event of OperationID went out once.
	EventPublished bool `json:"-"`
	// Overrides are the tenant's overrides (a copy of Tenant.Overrides, written in the
	// same transaction), so that the entitlements document is built from this item
	// alone.
	Overrides *Overrides `json:"overrides,omitempty"`
	// Revision counts the changes of what the entitlements document shows (plan,
	// access, overrides); it is the document's version. Recording that an event went
	// out does not change it.
	Revision int64 `json:"revision"`
	// ChangePending is the outbox of TenantEntitlementsChanged: set with every change
	// of Revision, cleared once the event of that revision went out.
	ChangePending bool      `json:"-"`
	Version       int64     `json:"version"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// PlanLimits is a plan with its limits (and access) at one point in time.
type PlanLimits struct {
	Plan   Plan   `json:"plan"`
	Limits Limits `json:"limits"`
	Access string `json:"access,omitempty"`
}
