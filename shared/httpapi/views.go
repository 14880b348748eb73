package httpapi

import (
	"regexp"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The response bodies are their own types rather than the domain types, so that the
// wire format changes only on purpose and internal fields (billing references, the
// previous state of a flow) never leak.

// TenantResponse is a tenant as the API shows it. Optional fields are always present
// (null when unset) so that clients see one stable shape.
type TenantResponse struct {
	ID            string                `json:"id"`
	Name          string                `json:"name"`
	Email         *string               `json:"email"`
	Plan          tenant.Plan           `json:"plan"`
	State         tenant.State          `json:"state"`
	Usage         tenant.Usage          `json:"usage"`
	Limits        LimitsResponse        `json:"limits"`
	Version       int64                 `json:"version"`
	CreatedAt     time.Time             `json:"created_at"`
	UpdatedAt     time.Time             `json:"updated_at"`
	PendingChange *tenant.PendingChange `json:"pending_change"`
	// OperationID is the flow currently moving the tenant, if any.
	OperationID *string `json:"operation_id"`
	// AttentionOperationID is a failed operation whose compensation is incomplete: no
	// other flow starts until an operator retries or resolves it.
	AttentionOperationID *string    `json:"attention_operation_id"`
	DeletedAt            *time.Time `json:"deleted_at"`
	PurgeAfter           *time.Time `json:"purge_after"`
	// SuspendCause is why the tenant is suspended (operator, nonpayment, canceled),
	// which decides who may lift it; it stays on a tenant deleted while suspended.
	SuspendCause  *string `json:"suspend_cause"`
	SuspendReason *string `json:"suspend_reason"`
}

// LimitsResponse are the limits of the tenant's plan; null means unlimited, which reads
// better for clients than the catalog's internal -1.
type LimitsResponse struct {
	Users            *int64   `json:"users"`
	StorageGB        *float64 `json:"storage_gb"`
	APICallsPerMonth *int64   `json:"api_calls_per_month"`
}

// ListResponse is one page of GET /tenants. NextCursor is null on the last page.
type ListResponse struct {
	Tenants    []TenantResponse `json:"tenants"`
	NextCursor *string          `json:"next_cursor"`
}

// AcceptedResponse answers a plan change that was started (202). EffectiveAt is set
// when the change waits for the end of the billing period.
type AcceptedResponse struct {
	OperationID string                 `json:"operation_id"`
	Status      tenant.OperationStatus `json:"status"`
	EffectiveAt *time.Time             `json:"effective_at,omitempty"`
}

// OperationResponse is an operation as a tenant's own token sees it (admins get the
// whole tenant.Operation). It is an allow-list of fields: requested_by names the
// subject that asked, and cause is the raw text of the failure, which can carry
// provider request ids or Lambda internals; neither is for the tenant. Fields added to
// tenant.Operation later (for operators, such as whether compensation finished) stay
// out until they are added here on purpose. Optional fields are always present (null
// when unset), like in TenantResponse.
type OperationResponse struct {
	OperationID string                 `json:"operation_id"`
	TenantID    string                 `json:"tenant_id"`
	Kind        string                 `json:"kind"`
	Status      tenant.OperationStatus `json:"status"`
	FromPlan    tenant.Plan            `json:"from_plan"`
	ToPlan      tenant.Plan            `json:"to_plan"`
	AtPeriodEnd bool                   `json:"at_period_end"`
	EffectiveAt *time.Time             `json:"effective_at"`
	CreatedAt   time.Time              `json:"created_at"`
	UpdatedAt   time.Time              `json:"updated_at"`
	// Error is the name of the error a failed operation ended with, e.g.
	// UsageExceedsLimitError; never its cause.
	Error *string `json:"error"`
	// Message is a fixed sentence chosen by status and error name (operationMessage):
	// safe to show to the tenant's users as it is.
	Message string `json:"message"`
}

// AuditResponse is a tenant's audit trail, oldest first.
type AuditResponse struct {
	TenantID string             `json:"tenant_id"`
	Entries  []store.AuditEntry `json:"entries"`
}

func (h *Handler) tenantView(t *tenant.Tenant) TenantResponse {
	v := TenantResponse{
		ID: t.ID, Name: t.Name, Email: optional(t.Email), Plan: t.Plan, State: t.State, Usage: t.Usage,
		Version: t.Version, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, PendingChange: t.PendingChange,
		OperationID: optional(t.Operation), AttentionOperationID: optional(t.Attention), DeletedAt: t.DeletedAt, PurgeAfter: t.PurgeAfter,
		SuspendCause: optional(t.Cause()), SuspendReason: optional(t.SuspendReason),
	}
	if l, ok := h.catalog.Limits(t.Plan); ok {
		v.Limits = limitsView(l)
	}
	return v
}

func limitsView(l tenant.Limits) LimitsResponse {
	var out LimitsResponse
	if l.Users >= 0 {
		out.Users = &l.Users
	}
	if l.StorageGB >= 0 {
		out.StorageGB = &l.StorageGB
	}
	if l.APICallsPerMonth >= 0 {
		out.APICallsPerMonth = &l.APICallsPerMonth
	}
	return out
}

// errorNamePattern is what an error name looks like (a Go type name as Lambda reports
// it, or a Step Functions name such as States.Timeout). Anything else is not shown: the
// name travels from the state machine's Catch and is not checked on the way.
// Compiled on first use, as operationIDPattern.
var errorNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`) })

// genericFailureName stands for a missing error name or one that does not look like
// one; it names no flow, since every kind of operation shows this view.
const genericFailureName = "OperationFailed"

// operationView is the public view of op for its tenant's tokens. It copies the
// allowed fields one by one, so nothing reaches a tenant that is not listed in
// OperationResponse, and it replaces an error name that does not look like one.
func operationView(op *tenant.Operation) OperationResponse {
	v := OperationResponse{
		OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind, Status: op.Status, FromPlan: op.FromPlan, ToPlan: op.ToPlan,
		AtPeriodEnd: op.AtPeriodEnd, EffectiveAt: op.EffectiveAt, CreatedAt: op.CreatedAt, UpdatedAt: op.UpdatedAt,
	}
	name := op.Error
	if name != "" && !errorNamePattern().MatchString(name) {
		name = genericFailureName
	}
	if name == "" && op.Status == tenant.OpFailed {
		name = genericFailureName
	}
	v.Error = optional(name)
	v.Message = operationMessage(op.Status, name)
	if op.Status == tenant.OpFailed && op.NeedsAttention {
		v.Message = msgAttention
	}
	return v
}

// Messages of OperationResponse. They are fixed so that nothing of a failure's cause
// reaches a tenant; the operation id lets support find the cause in the record and logs.
const (
	msgScheduled     = "the change is scheduled and runs at effective_at"
	msgRunning       = "the change is in progress"
	msgSucceeded     = "the change is complete"
	msgUsageExceeded = "usage exceeds the limits of the target plan"
	msgFailed        = "the change did not complete and was rolled back; contact support with the operation id"
	msgAttention     = "the change did not complete and is not fully rolled back yet; our operators are on it (operation id for support)"
	msgUnknown       = "contact support with the operation id"
)

// operationMessage picks the sentence of an operation by status and, for failures, by
// error name (operationView adds the one case where compensation is incomplete). It
// does not look at the cause.
func operationMessage(status tenant.OperationStatus, errName string) string {
	switch status {
	case tenant.OpScheduled:
		return msgScheduled
	case tenant.OpRunning:
		return msgRunning
	case tenant.OpSucceeded:
		return msgSucceeded
	case tenant.OpFailed:
		if errName == "UsageExceedsLimitError" {
			return msgUsageExceeded
		}
		return msgFailed
	}
	return msgUnknown
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
