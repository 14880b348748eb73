package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The types below are the schemas of openapi.yaml, field for field (spec_test.go
// compares them). Fields the spec marks nullable are pointers.

// State is a tenant's lifecycle state.
type State string

// The tenant states.
const (
	Provisioning State = "PROVISIONING"
	Active       State = "ACTIVE"
	Upgrading    State = "UPGRADING"
	Downgrading  State = "DOWNGRADING"
	Suspended    State = "SUSPENDED"
	Deleting     State = "DELETING"
	Deleted      State = "DELETED"
	Reactivating State = "REACTIVATING"
	Purged       State = "PURGED"
)

// OperationStatus is where an operation is.
type OperationStatus string

// The operation statuses; SUCCEEDED and FAILED are final.
const (
	Scheduled OperationStatus = "SCHEDULED"
	Running   OperationStatus = "RUNNING"
	Succeeded OperationStatus = "SUCCEEDED"
	Failed    OperationStatus = "FAILED"
)

// Final reports whether the operation has ended.
func (s OperationStatus) Final() bool { return s == Succeeded || s == Failed }

// CreateTenantRequest is the body of CreateTenant; an empty ID is generated.
type CreateTenantRequest struct {
	ID    string  `json:"id,omitempty"`
	Name  string  `json:"name"`
	Plan  string  `json:"plan"`
	Email *string `json:"email,omitempty"`
}

// PlanRequest names the target plan of an upgrade.
type PlanRequest struct {
	Plan string `json:"plan"`
}

// DowngradeRequest is the body of Downgrade; AtPeriodEnd schedules it for the end of
// the billing period.
type DowngradeRequest struct {
	Plan        string `json:"plan"`
	AtPeriodEnd bool   `json:"at_period_end,omitempty"`
}

// SuspendRequest is the body of SuspendTenant.
type SuspendRequest struct {
	Reason string `json:"reason"`
}

// ReactivateRequest is the body of ReactivateTenant; an empty Plan keeps the tenant's.
type ReactivateRequest struct {
	Plan string `json:"plan,omitempty"`
}

// DeleteRequest is the body of DeleteTenant; zero RetentionDays takes the default.
type DeleteRequest struct {
	RetentionDays int `json:"retention_days,omitempty"`
}

// RetryRequest is the body of RetryOperation: Action "retry" or "resolve" (with Note).
type RetryRequest struct {
	Action string `json:"action,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Usage is what a tenant uses, as the metering service reports it.
type Usage struct {
	Users            int64   `json:"users"`
	StorageGB        float64 `json:"storage_gb"`
	APICallsPerMonth int64   `json:"api_calls_per_month"`
}

// Limits are a plan's limits; nil is unlimited.
type Limits struct {
	Users            *int64   `json:"users"`
	StorageGB        *float64 `json:"storage_gb"`
	APICallsPerMonth *int64   `json:"api_calls_per_month"`
}

// PendingChange is a plan change scheduled for the end of the billing period.
type PendingChange struct {
	Plan        string    `json:"plan"`
	EffectiveAt time.Time `json:"effective_at"`
	OperationID string    `json:"operation_id"`
}

// Tenant is a tenant as the API shows it.
type Tenant struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	Email                *string        `json:"email"`
	Plan                 string         `json:"plan"`
	State                State          `json:"state"`
	Usage                Usage          `json:"usage"`
	Limits               Limits         `json:"limits"`
	Version              int64          `json:"version"`
	CreatedAt            time.Time      `json:"created_at"`
	UpdatedAt            time.Time      `json:"updated_at"`
	PendingChange        *PendingChange `json:"pending_change"`
	OperationID          *string        `json:"operation_id"`
	AttentionOperationID *string        `json:"attention_operation_id"`
	DeletedAt            *time.Time     `json:"deleted_at"`
	PurgeAfter           *time.Time     `json:"purge_after"`
	SuspendCause         *string        `json:"suspend_cause"`
	SuspendReason        *string        `json:"suspend_reason"`
	// Overrides are an operator's overrides of the plan (nil: none); Limits already
	// apply them.
	Overrides *TenantOverrides `json:"overrides,omitempty"`
}

// TenantOverrides are a tenant's overrides as its view shows them: what, why, who, when.
type TenantOverrides struct {
	Limits   *LimitOverrides `json:"limits,omitempty"`
	Features map[string]bool `json:"features,omitempty"`
	Reason   string          `json:"reason"`
	By       string          `json:"by"`
	At       time.Time       `json:"at"`
}

// LimitOverrides are overridden limits; nil: not overridden.
type LimitOverrides struct {
	Users            *LimitOverride `json:"users,omitempty"`
	StorageGB        *LimitOverride `json:"storage_gb,omitempty"`
	APICallsPerMonth *LimitOverride `json:"api_calls_per_month,omitempty"`
}

// LimitOverride is one overridden limit: a number, or "unlimited".
type LimitOverride struct {
	Value     float64
	Unlimited bool
}

// LimitOf overrides a limit with v; NoLimit lifts it.
func LimitOf(v float64) *LimitOverride { return &LimitOverride{Value: v} }

// NoLimit lifts a limit ("unlimited").
func NoLimit() *LimitOverride { return &LimitOverride{Unlimited: true} }

// MarshalJSON writes the number or "unlimited".
func (l LimitOverride) MarshalJSON() ([]byte, error) {
	if l.Unlimited {
		return []byte(`"unlimited"`), nil
	}
	return json.Marshal(l.Value)
}

// UnmarshalJSON reads a number or "unlimited".
func (l *LimitOverride) UnmarshalJSON(b []byte) error {
	if string(b) == `"unlimited"` {
		*l = LimitOverride{Unlimited: true}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("limit override: want a number or \"unlimited\": %w", err)
	}
	*l = LimitOverride{Value: v}
	return nil
}

func (l *LimitOverride) String() string {
	if l == nil {
		return "-"
	}
	if l.Unlimited {
		return "unlimited"
	}
	return strconv.FormatFloat(l.Value, 'f', -1, 64)
}

// TenantList is one page of ListTenants; NextCursor is nil on the last page.
type TenantList struct {
	Tenants    []Tenant `json:"tenants"`
	NextCursor *string  `json:"next_cursor"`
}

// Accepted answers a started (or scheduled) operation.
type Accepted struct {
	OperationID string          `json:"operation_id"`
	Status      OperationStatus `json:"status"`
	EffectiveAt *time.Time      `json:"effective_at,omitempty"`
}

// Deletion answers DeleteTenant.
type Deletion struct {
	OperationID   string          `json:"operation_id"`
	Status        OperationStatus `json:"status"`
	RetentionDays int             `json:"retention_days"`
	PurgeAfter    time.Time       `json:"purge_after"`
}

// Operation is one lifecycle operation. Admins get the whole record, which has more
// fields than the public view; Raw keeps the answer as sent, all of them included.
type Operation struct {
	OperationID    string          `json:"operation_id"`
	TenantID       string          `json:"tenant_id"`
	Kind           string          `json:"kind"`
	Status         OperationStatus `json:"status"`
	FromPlan       string          `json:"from_plan,omitempty"`
	ToPlan         string          `json:"to_plan,omitempty"`
	AtPeriodEnd    bool            `json:"at_period_end,omitempty"`
	EffectiveAt    *time.Time      `json:"effective_at,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Error          *string         `json:"error,omitempty"`
	Message        string          `json:"message,omitempty"`
	RequestedBy    string          `json:"requested_by,omitempty"`
	Cause          string          `json:"cause,omitempty"`
	NeedsAttention bool            `json:"needs_attention,omitempty"`

	Raw json.RawMessage `json:"-"`
}

func (o *Operation) setRaw(b []byte) { o.Raw = append(json.RawMessage(nil), b...) }

// ErrorText is the operation's error, or "".
func (o *Operation) ErrorText() string {
	if o.Error == nil {
		return ""
	}
	return *o.Error
}

// AuditEntry is one state change of a tenant.
type AuditEntry struct {
	At          time.Time `json:"at"`
	Who         string    `json:"who,omitempty"`
	From        string    `json:"from"`
	To          State     `json:"to"`
	OperationID string    `json:"operation_id,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Version     int64     `json:"version"`
}

// Audit is a tenant's audit trail, oldest first.
type Audit struct {
	TenantID string       `json:"tenant_id"`
	Entries  []AuditEntry `json:"entries"`
}

// CertificateSource is what the purge deleted from one data source.
type CertificateSource struct {
	ItemsDeleted    int64     `json:"items_deleted"`
	VerifiedEmptyAt time.Time `json:"verified_empty_at"`
	Note            string    `json:"note,omitempty"`
}

// Remain is data the purge did not delete, why, and until when.
type Remain struct {
	What  string `json:"what"`
	Why   string `json:"why"`
	Until string `json:"until"`
}

// DeletionCertificate is the sealed record of a purge.
type DeletionCertificate struct {
	TenantID         string                       `json:"tenant_id"`
	OperationID      string                       `json:"operation_id"`
	Sources          map[string]CertificateSource `json:"sources"`
	Remains          []Remain                     `json:"remains,omitempty"`
	InventoryTakenAt time.Time                    `json:"inventory_taken_at"`
	BackupsExpireAt  time.Time                    `json:"backups_expire_at"`
	GeneratedAt      time.Time                    `json:"generated_at"`
	SHA256           string                       `json:"sha256,omitempty"`
}

// Export statuses; completed and failed are final.
const (
	ExportQueued    = "queued"
	ExportRunning   = "running"
	ExportCompleted = "completed"
	ExportFailed    = "failed"
)

// ExportProgress is how far an export is.
type ExportProgress struct {
	Items            int64   `json:"items"`
	Bytes            int64   `json:"bytes"`
	EstimatedItems   int64   `json:"estimated_items"`
	EstimateComplete bool    `json:"estimate_complete"`
	Percent          float64 `json:"percent"`
	Parts            int     `json:"parts"`
}

// Export is a GDPR export job; DownloadURL is set once it is completed.
type Export struct {
	ExportID     string          `json:"export_id"`
	TenantID     string          `json:"tenant_id"`
	Status       string          `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	CompletedAt  *time.Time      `json:"completed_at,omitempty"`
	Progress     *ExportProgress `json:"progress,omitempty"`
	SizeBytes    int64           `json:"size_bytes,omitempty"`
	SHA256       string          `json:"sha256,omitempty"`
	Manifest     json.RawMessage `json:"manifest,omitempty"`
	DownloadURL  string          `json:"download_url,omitempty"`
	URLExpiresAt *time.Time      `json:"url_expires_at,omitempty"`
	Error        string          `json:"error,omitempty"`
}

// ExportList is a tenant's exports, newest first.
type ExportList struct {
	Exports []Export `json:"exports"`
}

// WebhookResult answers a Stripe event delivery.
type WebhookResult struct {
	Received bool   `json:"received,omitempty"`
	EventID  string `json:"event_id,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Error    string `json:"error,omitempty"`
}
