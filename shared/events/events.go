// Package events names the lifecycle events published on the EventBridge bus so that
// other systems (the application, analytics, CRM) learn about tenant changes. The
// publisher on the EventBridge client is shared/events/bus: the flows depend on the
// Publisher interface, so a function that publishes nothing does not link EventBridge.
package events

import (
	"context"
	"fmt"
)

// Source is the EventBridge source of every lifecycle event.
const Source = "tenantflow.lifecycle"

// Detail types published on the lifecycle bus.
const (
	TenantPlanChanged   = "TenantPlanChanged"
	TenantPlanReverted  = "TenantPlanChangeReverted"
	TenantSuspended     = "TenantSuspended"
	TenantReactivated   = "TenantReactivated"
	TenantDeleted       = "TenantDeleted"
	TenantRestored      = "TenantDeletionReverted"
	TenantUnreactivated = "TenantReactivationReverted"
	TenantPurged        = "TenantPurged"
	// TenantEntitlementsChanged carries the tenant's new entitlements document
	// (tenant.EntitlementsDocument) whenever what the application enforces changes:
	// a plan change or its rollback, an override, a suspension, a deletion, a
	// reactivation or their rollbacks, and the purge. It is published at least once;
	// a consumer keeps the document with the highest version.
	TenantEntitlementsChanged = "TenantEntitlementsChanged"
)

// Publisher sends one lifecycle event (bus.Publisher on EventBridge).
type Publisher interface {
	Publish(ctx context.Context, detailType string, detail any) error
}

// RejectedError is an entry PutEvents accepted as a request but failed to put.
type RejectedError struct {
	DetailType, Code, Message string
}

// Error names the event and EventBridge's error code.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("publish %s: rejected: %s %s", e.DetailType, e.Code, e.Message)
}

// Transient reports whether EventBridge may accept the entry on a retry (throttled
// or an internal failure), so the flow kit retries instead of rolling back.
func (e *RejectedError) Transient() bool {
	return e.Code == "ThrottlingException" || e.Code == "InternalFailure" || e.Code == "InternalException"
}
