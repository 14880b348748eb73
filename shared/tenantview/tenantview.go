// Package tenantview is what a tenant's own token may see of the control plane's
// records. The HTTP API answers a tenant token with these views, and the tenant's data
// export writes its audit and operation records through the same ones, so the two can
// never disagree: what the API hides from a tenant (who on the operator side acted,
// raw failure text, internal bookkeeping) is not in its download either.
//
// Each view is an allow-list: it copies the fields a tenant may see one by one, so a
// field added to the domain records later stays out until it is added here on purpose.
package tenantview

import (
	"regexp"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Operation is an operation as a tenant's own token sees it (operators get the whole
// tenant.Operation). requested_by names the subject that asked, and cause is the raw
// text of the failure, which can carry provider request ids or Lambda internals;
// neither is for the tenant, nor are the reason, marks, previous state or the
// compensation bookkeeping. Optional fields are always present (null when unset).
type Operation struct {
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
	// Message is a fixed sentence chosen by status and error name (OperationMessage):
	// safe to show to the tenant's users as it is.
	Message string `json:"message"`
}

// errorNamePattern is what an error name looks like (a Go type name as Lambda reports
// it, or a Step Functions name such as States.Timeout). Anything else is not shown: the
// name travels from the state machine's Catch and is not checked on the way. Compiled
// on first use, so a cold start that serves no operation pays nothing for it.
var errorNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`) })

// GenericFailureName stands for a missing error name or one that does not look like
// one; it names no flow, since every kind of operation shows this view.
const GenericFailureName = "OperationFailed"

// OperationOf is the view of op for its tenant's tokens. It replaces an error name
// that does not look like one.
func OperationOf(op *tenant.Operation) Operation {
	v := Operation{
		OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind, Status: op.Status, FromPlan: op.FromPlan, ToPlan: op.ToPlan,
		AtPeriodEnd: op.AtPeriodEnd, EffectiveAt: op.EffectiveAt, CreatedAt: op.CreatedAt, UpdatedAt: op.UpdatedAt,
	}
	name := op.Error
	if name != "" && !errorNamePattern().MatchString(name) {
		name = GenericFailureName
	}
	if name == "" && op.Status == tenant.OpFailed {
		name = GenericFailureName
	}
	v.Error = optional(name)
	v.Message = OperationMessage(op.Status, name)
	if op.Status == tenant.OpFailed && op.NeedsAttention {
		v.Message = MsgAttention
	}
	return v
}

// Messages of Operation. They are fixed so that nothing of a failure's cause reaches
// a tenant; the operation id lets support find the cause in the record and logs.
const (
	MsgScheduled     = "the change is scheduled and runs at effective_at"
	MsgRunning       = "the change is in progress"
	MsgSucceeded     = "the change is complete"
	MsgUsageExceeded = "usage exceeds the limits of the target plan"
	MsgFailed        = "the change did not complete and was rolled back; contact support with the operation id"
	MsgAttention     = "the change did not complete and is not fully rolled back yet; our operators are on it (operation id for support)"
	MsgUnknown       = "contact support with the operation id"
)

// OperationMessage picks the sentence of an operation by status and, for failures, by
// error name (OperationOf adds the one case where compensation is incomplete). It does
// not look at the cause.
func OperationMessage(status tenant.OperationStatus, errName string) string {
	switch status {
	case tenant.OpScheduled:
		return MsgScheduled
	case tenant.OpRunning:
		return MsgRunning
	case tenant.OpSucceeded:
		return MsgSucceeded
	case tenant.OpFailed:
		if errName == "UsageExceedsLimitError" {
			return MsgUsageExceeded
		}
		return MsgFailed
	}
	return MsgUnknown
}

// Audit is an audit entry as a tenant's own token sees it: what happened and when,
// not who on the operator side did it, nor the reason, whose text can carry an
// operator's note or the raw failure of a step (provider request ids).
func Audit(e store.AuditEntry) store.AuditEntry {
	e.Who, e.Reason = "", ""
	return e
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
