package store

import (
	"encoding/json"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Key layout of the single control-plane table.
const (
	tenantPrefix = "TENANT#"
	opPrefix     = "OP#"
	skTenant     = "TENANT"
	skEntitle    = "ENTITLEMENTS"
	skOp         = "OP"
	auditPrefix  = "AUDIT#"
)

// tenantRecord is the persisted shape of a tenant; the domain type carries no tags.
type tenantRecord struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	TenantID string `dynamodbav:"tenant_id"`
	Name     string `dynamodbav:"name,omitempty"` // empty only on a PURGED tombstone
	Email    string `dynamodbav:"email,omitempty"`
	Plan     string `dynamodbav:"plan"`
	State    string `dynamodbav:"state"`
	Version  int64  `dynamodbav:"version"`

	// Zero usage is not stored, so a PURGED tombstone holds no usage at all.
	Users     int64   `dynamodbav:"usage_users,omitempty"`
	StorageGB float64 `dynamodbav:"usage_storage_gb,omitempty"`
	APICalls  int64   `dynamodbav:"usage_api_calls,omitempty"`

	CreatedAt string `dynamodbav:"created_at"`
	UpdatedAt string `dynamodbav:"updated_at"`

	PendingPlan      string `dynamodbav:"pending_plan,omitempty"`
	PendingAt        string `dynamodbav:"pending_at,omitempty"`
	PendingOperation string `dynamodbav:"pending_operation,omitempty"`

	Operation     string `dynamodbav:"operation_id,omitempty"`
	Attention     string `dynamodbav:"attention_operation_id,omitempty"`
	PreviousState string `dynamodbav:"previous_state,omitempty"`
	SuspendCause  string `dynamodbav:"suspend_cause,omitempty"`
	SuspendReason string `dynamodbav:"suspend_reason,omitempty"`
	RetentionDays int    `dynamodbav:"retention_days,omitempty"`
	DeletedAt     string `dynamodbav:"deleted_at,omitempty"`
	PurgeAfter    string `dynamodbav:"purge_after,omitempty"`

	CustomerID       string `dynamodbav:"stripe_customer_id,omitempty"`
	SubscriptionID   string `dynamodbav:"stripe_subscription_id,omitempty"`
	CurrentPeriodEnd string `dynamodbav:"current_period_end,omitempty"`

	// Sparse Due index keys: set only while a change or a purge is pending.
	DueKind string `dynamodbav:"due_kind,omitempty"`
	DueAt   string `dynamodbav:"due_at,omitempty"`

	// Purge inventory and deletion certificate, as JSON (the certificate's bytes are
	// what its sha256 covers, so they are kept as written).
	PurgeInventory string `dynamodbav:"purge_inventory,omitempty"`
	Certificate    string `dynamodbav:"deletion_certificate,omitempty"`
	// PurgedEventPending: TenantPurged is still to be published (the purge's outbox).
	PurgedEventPending bool `dynamodbav:"purged_event_pending,omitempty"`
	// Overrides, as JSON: an operator's exceptions to the catalogue.
	Overrides string `dynamodbav:"overrides,omitempty"`
}

func tenantKey(id string) (string, string) { return tenantPrefix + id, skTenant }

func toRecord(t *tenant.Tenant) tenantRecord {
	pk, sk := tenantKey(t.ID)
	r := tenantRecord{
		PK: pk, SK: sk, TenantID: t.ID, Name: t.Name, Email: t.Email,
		Plan: string(t.Plan), State: string(t.State), Version: t.Version,
		Users: t.Usage.Users, StorageGB: t.Usage.StorageGB, APICalls: t.Usage.APICallsPerMonth,
		CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
		Operation: t.Operation, Attention: t.Attention, PreviousState: string(t.PreviousState), SuspendCause: t.SuspendCause, SuspendReason: t.SuspendReason,
		RetentionDays: t.RetentionDays,
		CustomerID:    t.Billing.CustomerID, SubscriptionID: t.Billing.SubscriptionID,
	}
	if t.Billing.CurrentPeriodEnd != nil {
		r.CurrentPeriodEnd = ts(*t.Billing.CurrentPeriodEnd)
	}
	if pc := t.PendingChange; pc != nil {
		r.PendingPlan, r.PendingAt, r.PendingOperation = string(pc.Plan), ts(pc.EffectiveAt), pc.OperationID
		r.DueKind, r.DueAt = DueChange, r.PendingAt
	}
	if t.DeletedAt != nil {
		r.DeletedAt = ts(*t.DeletedAt)
	}
	if t.PurgeAfter != nil {
		r.PurgeAfter = ts(*t.PurgeAfter)
		if t.State == tenant.Deleted {
			r.DueKind, r.DueAt = DuePurge, r.PurgeAfter
		}
	}
	if t.State == tenant.Purged && t.PurgedEventPending {
		r.PurgedEventPending = true
		r.DueKind, r.DueAt = DuePurgedEvent, ts(t.UpdatedAt)
	}
	// Both are plain structs of strings, numbers and times: marshalling cannot fail.
	if t.PurgeInventory != nil {
		b, _ := json.Marshal(t.PurgeInventory)
		r.PurgeInventory = string(b)
	}
	if t.Certificate != nil {
		b, _ := json.Marshal(t.Certificate)
		r.Certificate = string(b)
	}
	if !t.Overrides.Empty() {
		b, _ := json.Marshal(t.Overrides)
		r.Overrides = string(b)
	}
	return r
}

func (r tenantRecord) toTenant() *tenant.Tenant {
	t := &tenant.Tenant{
		ID: r.TenantID, Name: r.Name, Email: r.Email, Plan: tenant.Plan(r.Plan), State: tenant.State(r.State),
		Version:   r.Version,
		Usage:     tenant.Usage{Users: r.Users, StorageGB: r.StorageGB, APICallsPerMonth: r.APICalls},
		CreatedAt: parseTS(r.CreatedAt), UpdatedAt: parseTS(r.UpdatedAt),
		Operation: r.Operation, Attention: r.Attention, PreviousState: tenant.State(r.PreviousState), SuspendCause: r.SuspendCause, SuspendReason: r.SuspendReason,
		RetentionDays: r.RetentionDays,
		DeletedAt:     parseTSPtr(r.DeletedAt), PurgeAfter: parseTSPtr(r.PurgeAfter),
		Billing:            tenant.BillingRef{CustomerID: r.CustomerID, SubscriptionID: r.SubscriptionID, CurrentPeriodEnd: parseTSPtr(r.CurrentPeriodEnd)},
		PurgedEventPending: r.PurgedEventPending,
	}
	if r.PendingPlan != "" {
		t.PendingChange = &tenant.PendingChange{Plan: tenant.Plan(r.PendingPlan), EffectiveAt: parseTS(r.PendingAt), OperationID: r.PendingOperation}
	}
	if r.PurgeInventory != "" {
		var inv tenant.PurgeInventory
		if json.Unmarshal([]byte(r.PurgeInventory), &inv) == nil {
			t.PurgeInventory = &inv
		}
	}
	if r.Certificate != "" {
		var c tenant.DeletionCertificate
		if json.Unmarshal([]byte(r.Certificate), &c) == nil {
			t.Certificate = &c
		}
	}
	if r.Overrides != "" {
		var o tenant.Overrides
		if json.Unmarshal([]byte(r.Overrides), &o) == nil {
			t.Overrides = &o
		}
	}
	return t
}

// auditRecord is one line of a tenant's audit trail, sorted by time in its sort key.
type auditRecord struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	TenantID    string `dynamodbav:"tenant_id"`
	At          string `dynamodbav:"at"`
	Who         string `dynamodbav:"who"`
	From        string `dynamodbav:"from_state"`
	To          string `dynamodbav:"to_state"`
	OperationID string `dynamodbav:"operation_id,omitempty"`
	Reason      string `dynamodbav:"reason,omitempty"`
	Version     int64  `dynamodbav:"version"`
}

// AuditEntry is one recorded transition of a tenant.
type AuditEntry struct {
	At          time.Time    `json:"at"`
	Who         string       `json:"who,omitempty"`
	From        tenant.State `json:"from"`
	To          tenant.State `json:"to"`
	OperationID string       `json:"operation_id,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	Version     int64        `json:"version"`
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func parseTSPtr(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := parseTS(s)
	return &t
}
