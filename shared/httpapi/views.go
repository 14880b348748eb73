package httpapi

import (
	"time"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
	"github.com/tenantflow/tenantflow/shared/tenantview"
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
	// Overrides are an operator's exceptions to the catalogue (null: none); Limits
	// above already apply them.
	Overrides *tenant.Overrides `json:"overrides"`
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
// whole tenant.Operation): the allow-list of shared/tenantview, which the tenant's data
// export writes too.
type OperationResponse = tenantview.Operation

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
	if !t.Overrides.Empty() {
		v.Overrides = t.Overrides
	}
	if l, ok := h.catalog.LimitsFor(t.Plan, t.Overrides); ok {
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

// operationView is the public view of op for its tenant's tokens.
func operationView(op *tenant.Operation) OperationResponse { return tenantview.OperationOf(op) }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
