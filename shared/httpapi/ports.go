package httpapi

import (
	"context"
	"time"

	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The dependencies of the HTTP boundary are declared here, where they are used, so the
// handler can be tested with the real store and small fakes for the flows.

// TenantStore is the persistence the HTTP API reads and writes directly.
type TenantStore interface {
	CreateTenant(ctx context.Context, t *tenant.Tenant, by store.Actor) (*tenant.Tenant, error)
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	ListByState(ctx context.Context, state tenant.State, cursor string, limit int32) (store.Page, error)
	UpdateUsage(ctx context.Context, id string, u tenant.Usage) (*tenant.Tenant, error)
	Transition(ctx context.Context, id string, from, to tenant.State, expectedVersion int64, mutate func(*tenant.Tenant), by store.Actor) (*tenant.Tenant, error)
	Audit(ctx context.Context, id string) ([]store.AuditEntry, error)
}

var _ TenantStore = (*store.Store)(nil)

// Provisioner writes the first entitlements of a new tenant. Repeating it must be a
// no-op, because a retried create resumes from the first unfinished step.
type Provisioner interface {
	Initial(ctx context.Context, tenantID string, plan tenant.Plan) error
}

// PlanChanges starts plan changes. It refuses at once what cannot work (typed domain
// errors) and runs the rest asynchronously; shared/planchange implements it on Step
// Functions.
type PlanChanges interface {
	Upgrade(ctx context.Context, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error)
	Downgrade(ctx context.Context, tenantID string, plan tenant.Plan, atPeriodEnd bool, by store.Actor) (*tenant.Operation, error)
}

// Lifecycle starts deletion, suspension and reactivation. Like PlanChanges it refuses
// at once what cannot work and runs the rest asynchronously; shared/lifecycle
// implements it.
type Lifecycle interface {
	Delete(ctx context.Context, tenantID string, retentionDays int, by store.Actor) (*lifecycle.Deletion, error)
	Suspend(ctx context.Context, tenantID, reason string, by store.Actor) (*tenant.Operation, error)
	Reactivate(ctx context.Context, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error)
}

// Operations reports on operations of every flow and lets an operator finish one that
// needs attention; shared/flow implements it.
type Operations interface {
	// Get returns an operation, its status checked against its execution.
	Get(ctx context.Context, id string) (*tenant.Operation, error)
	// Retry runs the compensation of a failed operation that needs attention again.
	Retry(ctx context.Context, id string, by store.Actor) (*tenant.Operation, error)
	// Resolve records that an operator fixed by hand what compensation could not undo.
	Resolve(ctx context.Context, id, note string, by store.Actor) (*tenant.Operation, error)
}

// Subscriptions creates the billing subscription of a new tenant. Calling it again with
// the same idempotency key must return the same subscription, because a create that
// failed after billing is resumed by repeating the request.
type Subscriptions interface {
	CreateSubscription(ctx context.Context, tenantID, name, email string, plan tenant.Plan, idempotencyKey string) (customerID, subscriptionID string, periodEnd time.Time, err error)
}
