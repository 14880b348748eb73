package lifecycle

import (
	"context"
	"slices"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Reader reads tenants for the API's pre-checks.
type Reader interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Launcher records an operation and starts its execution (flow.Operations).
type Launcher interface {
	Start(ctx context.Context, op *tenant.Operation, input any) (*tenant.Operation, error)
}

// Starter answers deletion, suspension and reactivation requests at once: it refuses
// what cannot work with a typed error (wrong state, another operation in progress,
// retention expired, unknown plan) and starts the flow for the rest.
type Starter struct {
	store            Reader
	flows            Launcher
	catalog          *tenant.Catalog
	defaultRetention int
	now              func() time.Time
}

// NewStarter wires the API side of the lifecycle flows; defaultRetention (days) applies
// when a deletion does not choose one.
func NewStarter(r Reader, l Launcher, c *tenant.Catalog, defaultRetention int) *Starter {
	return &Starter{store: r, flows: l, catalog: c, defaultRetention: defaultRetention, now: time.Now}
}

// Deletion is what a deletion request was answered with.
type Deletion struct {
	Operation     *tenant.Operation
	RetentionDays int
	// PurgeAfter is the earliest purge time if the deletion finishes now; the tenant
	// records the exact one when it becomes DELETED.
	PurgeAfter time.Time
}

// Delete soft-deletes a tenant: retentionDays 0 takes the default.
func (s *Starter) Delete(ctx context.Context, tenantID string, retentionDays int, by store.Actor) (*Deletion, error) {
	if retentionDays == 0 {
		retentionDays = s.defaultRetention
	}
	if err := tenant.ValidateRetention(retentionDays); err != nil {
		return nil, err
	}
	t, err := s.ready(ctx, tenantID, tenant.Deleting, tenant.Active, tenant.Suspended)
	if err != nil {
		return nil, err
	}
	op := &tenant.Operation{ID: flow.NewOperationID(), TenantID: t.ID, Kind: tenant.KindDeletion, FromPlan: t.Plan,
		RetentionDays: retentionDays, RequestedBy: by.Who}
	op, err = s.flows.Start(ctx, op, Input{Ref: ref(op), RetentionDays: retentionDays, RequestedBy: by.Who})
	if err != nil {
		return nil, err
	}
	return &Deletion{Operation: op, RetentionDays: retentionDays, PurgeAfter: purgeAfter(s.now(), retentionDays)}, nil
}

// Suspend suspends an ACTIVE tenant for reason.
func (s *Starter) Suspend(ctx context.Context, tenantID, reason string, by store.Actor) (*tenant.Operation, error) {
	return s.SuspendAs(ctx, flow.NewOperationID(), tenantID, reason, by)
}

// SuspendAs is Suspend under an operation id the caller chose (the Stripe webhook
// records it before starting, so a retry of its event finds the same operation).
func (s *Starter) SuspendAs(ctx context.Context, opID, tenantID, reason string, by store.Actor) (*tenant.Operation, error) {
	t, err := s.ready(ctx, tenantID, tenant.Suspended, tenant.Active)
	if err != nil {
		return nil, err
	}
	op := &tenant.Operation{ID: opID, TenantID: t.ID, Kind: tenant.KindSuspension, FromPlan: t.Plan,
		Reason: reason, RequestedBy: by.Who}
	return s.flows.Start(ctx, op, Input{Ref: ref(op), Reason: reason, RequestedBy: by.Who})
}

// Reactivate brings a SUSPENDED tenant, or a DELETED one inside its retention window,
// back onto plan. Past purge_after — even before the purge ran — or once PURGED the
// answer is *tenant.RetentionExpiredError.
func (s *Starter) Reactivate(ctx context.Context, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	return s.ReactivateAs(ctx, flow.NewOperationID(), tenantID, plan, by)
}

// ReactivateAs is Reactivate under an operation id the caller chose (see SuspendAs).
func (s *Starter) ReactivateAs(ctx context.Context, opID, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	if _, err := s.catalog.Parse(string(plan)); err != nil {
		return nil, err
	}
	cur, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if cur.State == tenant.Purged {
		return nil, &tenant.RetentionExpiredError{TenantID: cur.ID, PurgeAfter: formatTime(cur.PurgeAfter)}
	}
	if err := cur.CanReactivate(s.now()); err != nil {
		return nil, err
	}
	t, err := s.ready(ctx, tenantID, tenant.Reactivating, tenant.Suspended, tenant.Deleted)
	if err != nil {
		return nil, err
	}
	op := &tenant.Operation{ID: opID, TenantID: t.ID, Kind: tenant.KindReactivation, FromPlan: t.Plan, ToPlan: plan,
		RequestedBy: by.Who}
	return s.flows.Start(ctx, op, Input{Ref: ref(op), Plan: plan, RequestedBy: by.Who})
}

// ready returns the tenant when it is in one of from and free for a new flow into to.
func (s *Starter) ready(ctx context.Context, tenantID string, to tenant.State, from ...tenant.State) (*tenant.Tenant, error) {
	t, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(from, t.State) {
		if err := tenant.CheckTransition(t.State, to); err != nil {
			return nil, err
		}
		return nil, &tenant.InvalidTransitionError{From: t.State, To: to, Allowed: t.State.Allowed()}
	}
	if err := flow.Available(t); err != nil {
		return nil, err
	}
	return t, nil
}

func ref(op *tenant.Operation) flow.Ref {
	return flow.Ref{OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind}
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}
