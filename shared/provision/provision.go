// Package provision applies a plan to a tenant's resources: the entitlements item the
// application enforces, and the TenantPlanChanged event that tells the rest of the
// platform. Every step is idempotent per operation, so a Step Functions retry changes
// nothing more, and every step has its compensation.
package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Store is the persistence the provisioner needs.
type Store interface {
	GetEntitlements(ctx context.Context, id string) (*tenant.Entitlements, error)
	PutEntitlements(ctx context.Context, e *tenant.Entitlements, expectedVersion int64) (*tenant.Entitlements, error)
}

// Publisher sends lifecycle events.
type Publisher interface {
	Publish(ctx context.Context, detailType string, detail any) error
}

// Provisioner applies and reverts plans.
type Provisioner struct {
	store   Store
	events  Publisher
	catalog *tenant.Catalog
}

// New returns a provisioner.
func New(s Store, p Publisher, c *tenant.Catalog) *Provisioner {
	return &Provisioner{store: s, events: p, catalog: c}
}

// PlanChangedEvent is the detail of TenantPlanChanged and TenantPlanChangeReverted.
type PlanChangedEvent struct {
	TenantID    string        `json:"tenant_id"`
	OperationID string        `json:"operation_id"`
	FromPlan    tenant.Plan   `json:"from_plan"`
	ToPlan      tenant.Plan   `json:"to_plan"`
	Limits      tenant.Limits `json:"limits"`
	// Access is what the tenant's users may do now (active, suspended, revoked).
	Access string `json:"access"`
}

// Initial writes the first entitlements of a new tenant (no event: creation is
// announced elsewhere). Repeating it is a no-op.
func (p *Provisioner) Initial(ctx context.Context, tenantID string, plan tenant.Plan) error {
	limits, ok := p.catalog.Limits(plan)
	if !ok {
		return fmt.Errorf("initial entitlements %s: unknown plan %q", tenantID, plan)
	}
	_, err := p.store.PutEntitlements(ctx, &tenant.Entitlements{TenantID: tenantID, Plan: plan, Limits: limits, EventPublished: true, Revision: 1}, 0)
	var ce *tenant.ConflictError
	if errors.As(err, &ce) {
		return nil // already provisioned by an earlier attempt
	}
	if err != nil {
		return fmt.Errorf("initial entitlements %s: %w", tenantID, err)
	}
	return nil
}

// Apply gives tenantID the entitlements of plan on behalf of operation opID, keeping
// what it replaces for Revert, then publishes TenantPlanChanged once.
func (p *Provisioner) Apply(ctx context.Context, tenantID, opID string, plan tenant.Plan) error {
	return p.ApplyAs(ctx, tenantID, opID, plan, events.TenantPlanChanged)
}

// ApplyAs is Apply announcing the change as detailType (e.g. TenantReactivated).
func (p *Provisioner) ApplyAs(ctx context.Context, tenantID, opID string, plan tenant.Plan, detailType string) error {
	limits, ok := p.catalog.Limits(plan)
	if !ok {
		return fmt.Errorf("apply %s: unknown plan %q", plan, plan)
	}
	return p.set(ctx, tenantID, opID, func(*tenant.Entitlements) (tenant.Plan, tenant.Limits, string) {
		return plan, limits, tenant.AccessActive
	}, detailType)
}

// Restrict takes access away for operation opID — tenant.AccessSuspended (read and
// export only) or tenant.AccessRevoked (deleted) — keeping the plan and what it
// replaces for Revert, then publishes detailType once (TenantSuspended, TenantDeleted).
func (p *Provisioner) Restrict(ctx context.Context, tenantID, opID, access, detailType string) error {
	return p.set(ctx, tenantID, opID, func(cur *tenant.Entitlements) (tenant.Plan, tenant.Limits, string) {
		return cur.Plan, tenant.Limits{}, access
	}, detailType)
}

// set writes the entitlements target computes from the current ones on behalf of
// opID (once: a repeat finds opID's write) and publishes detailType once.
func (p *Provisioner) set(ctx context.Context, tenantID, opID string, target func(cur *tenant.Entitlements) (tenant.Plan, tenant.Limits, string), detailType string) error {
	cur, err := p.store.GetEntitlements(ctx, tenantID)
	var nf *tenant.NotFoundError
	switch {
	case errors.As(err, &nf):
		cur = &tenant.Entitlements{TenantID: tenantID}
	case err != nil:
		return fmt.Errorf("entitlements of %s for %s: %w", tenantID, opID, err)
	}
	if cur.OperationID != opID {
		plan, limits, access := target(cur)
		next := &tenant.Entitlements{TenantID: tenantID, Plan: plan, Limits: limits, Access: access, OperationID: opID,
			Overrides: cur.Overrides, Revision: cur.Revision + 1, ChangePending: true}
		if cur.Version > 0 {
			next.Previous = &tenant.PlanLimits{Plan: cur.Plan, Limits: cur.Limits, Access: cur.Access}
		}
		if cur, err = p.store.PutEntitlements(ctx, next, cur.Version); err != nil {
			return fmt.Errorf("entitlements of %s for %s: %w", tenantID, opID, err)
		}
	}
	if cur.EventPublished && !cur.ChangePending {
		return nil
	}
	from := tenant.Plan("")
	if cur.Previous != nil {
		from = cur.Previous.Plan
	}
	return p.publishOnce(ctx, cur, detailType, PlanChangedEvent{TenantID: tenantID, OperationID: opID, FromPlan: from, ToPlan: cur.Plan, Limits: cur.Limits, Access: access(cur.Access)})
}

func access(a string) string {
	if a == "" {
		return tenant.AccessActive
	}
	return a
}

// Revert undoes Apply of operation opID: the entitlements it replaced come back (or,
// when none were recorded, those of the previous plan) and a TenantPlanChangeReverted
// event goes out once. When opID never changed the entitlements (the failure came
// first) or someone else changed them since, it does nothing.
func (p *Provisioner) Revert(ctx context.Context, tenantID, opID string, previous tenant.Plan) error {
	return p.RevertAs(ctx, tenantID, opID, previous, events.TenantPlanReverted)
}

// RevertAs is Revert announcing the compensation as detailType (e.g.
// TenantDeletionReverted).
func (p *Provisioner) RevertAs(ctx context.Context, tenantID, opID string, previous tenant.Plan, detailType string) error {
	cur, err := p.store.GetEntitlements(ctx, tenantID)
	var nf *tenant.NotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("revert %s: %w", opID, err)
	}
	revertID := opID + ":revert"
	switch cur.OperationID {
	case revertID:
		// Reverted already; only the event may be missing.
	case opID:
		back := cur.Previous
		if back == nil {
			limits, ok := p.catalog.Limits(previous)
			if !ok {
				return fmt.Errorf("revert %s: entitlements keep no previous plan and %q is not a plan", opID, previous)
			}
			back = &tenant.PlanLimits{Plan: previous, Limits: limits}
		}
		from := cur.Plan
		next := &tenant.Entitlements{TenantID: tenantID, Plan: back.Plan, Limits: back.Limits, Access: back.Access, OperationID: revertID,
			Previous: &tenant.PlanLimits{Plan: from, Limits: cur.Limits, Access: cur.Access}, EventPublished: !cur.EventPublished,
			Overrides: cur.Overrides, Revision: cur.Revision + 1, ChangePending: true}
		// A revert of a change nobody heard about needs no compensating event; the
		// entitlements document changes all the same (a service may have read the
		// reverted one), so TenantEntitlementsChanged goes out with a new version.
		if cur, err = p.store.PutEntitlements(ctx, next, cur.Version); err != nil {
			return fmt.Errorf("revert %s: %w", opID, err)
		}
	default:
		return nil
	}
	if cur.EventPublished && !cur.ChangePending {
		return nil
	}
	return p.publishOnce(ctx, cur, detailType, PlanChangedEvent{TenantID: tenantID, OperationID: opID, FromPlan: cur.Previous.Plan, ToPlan: cur.Plan, Limits: cur.Limits, Access: access(cur.Access)})
}

// publishOnce sends the events still pending on cur — detailType for its operation,
// then TenantEntitlementsChanged with its document — and then records that they went
// out. A crash between the two sends them again on retry (at least once); consumers
// dedupe on operation_id, and keep the entitlements document of the highest version.
func (p *Provisioner) publishOnce(ctx context.Context, cur *tenant.Entitlements, detailType string, detail PlanChangedEvent) error {
	if !cur.EventPublished {
		if err := p.events.Publish(ctx, detailType, detail); err != nil {
			return err
		}
	}
	if cur.ChangePending {
		if err := p.events.Publish(ctx, events.TenantEntitlementsChanged, tenant.BuildDocument(cur, p.catalog)); err != nil {
			return err
		}
	}
	done := *cur
	done.EventPublished, done.ChangePending = true, false
	if _, err := p.store.PutEntitlements(ctx, &done, cur.Version); err != nil {
		return fmt.Errorf("record %s published: %w", detailType, err)
	}
	return nil
}

// PublishChange drains the TenantEntitlementsChanged outbox of tenantID: when its
// entitlements have a change whose event has not gone out (an override, written by
// the API), it publishes the document and records that it went out. Nothing pending,
// no entitlements, or another writer getting there first (whose change then carries
// its own pending event) is no error.
func (p *Provisioner) PublishChange(ctx context.Context, tenantID string) error {
	cur, err := p.store.GetEntitlements(ctx, tenantID)
	var nf *tenant.NotFoundError
	switch {
	case errors.As(err, &nf):
		return nil
	case err != nil:
		return fmt.Errorf("entitlements of %s: %w", tenantID, err)
	case !cur.ChangePending:
		return nil
	}
	if err := p.events.Publish(ctx, events.TenantEntitlementsChanged, tenant.BuildDocument(cur, p.catalog)); err != nil {
		return err
	}
	done := *cur
	done.ChangePending = false
	_, err = p.store.PutEntitlements(ctx, &done, cur.Version)
	var ce *tenant.ConflictError
	if err != nil && !errors.As(err, &ce) {
		return fmt.Errorf("record %s published: %w", events.TenantEntitlementsChanged, err)
	}
	return nil
}
