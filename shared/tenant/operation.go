package tenant

import "time"

// OperationStatus is where a long-running operation is.
type OperationStatus string

// Operation statuses. SCHEDULED is a change waiting for its effective time.
const (
	OpScheduled OperationStatus = "SCHEDULED"
	OpRunning   OperationStatus = "RUNNING"
	OpSucceeded OperationStatus = "SUCCEEDED"
	OpFailed    OperationStatus = "FAILED"
)

// Operation kinds.
const (
	KindUpgrade   = "upgrade"
	KindDowngrade = "downgrade"
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
	// BillingAttempted is set before the billing system is called, so that a rollback
	// reverts billing whenever the call may have reached it.
	BillingAttempted bool `json:"-"`
}

// Done reports whether the operation has finished.
func (o *Operation) Done() bool { return o.Status == OpSucceeded || o.Status == OpFailed }

// Entitlements are what the application enforces for a tenant: the plan's limits,
// written by provisioning before billing changes and restored on rollback.
type Entitlements struct {
	TenantID    string `json:"tenant_id"`
	Plan        Plan   `json:"plan"`
	Limits      Limits `json:"limits"`
	OperationID string `json:"operation_id,omitempty"`
	// Previous is what the last operation replaced, so its rollback can restore it.
	Previous *PlanLimits `json:"previous,omitempty"`
	// EventPublished records that the change event of OperationID went out once.
	EventPublished bool      `json:"-"`
	Version        int64     `json:"version"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// PlanLimits is a plan with its limits at one point in time.
type PlanLimits struct {
	Plan   Plan   `json:"plan"`
	Limits Limits `json:"limits"`
}
