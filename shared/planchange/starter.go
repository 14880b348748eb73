package planchange

import (
	"context"
	"fmt"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// StarterStore is the persistence the API side needs.
type StarterStore interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	Change(ctx context.Context, id string, by store.Actor, decide store.Decide) (*tenant.Tenant, error)
	CreateOperation(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error)
	UpdateOperation(ctx context.Context, u store.OpUpdate) error
}

// Launcher starts a recorded operation's execution (flow.Operations implements it).
type Launcher interface {
	Start(ctx context.Context, op *tenant.Operation, input any) (*tenant.Operation, error)
}

// Periods reads a subscription's current billing period from the billing provider,
// the only source that knows when it really ends (it moves at every renewal).
// ok is false when billing is disabled or reports no period.
type Periods interface {
	CurrentPeriod(ctx context.Context, subscriptionID string) (start, end time.Time, ok bool, err error)
}

// Starter answers plan-change requests at once: it asks the lifecycle policy
// (tenant.Decide) for the caller's class, refuses with its typed error (forbidden,
// unknown plan, wrong direction, tenant not ACTIVE or busy, usage over the target
// limits) and starts the state machine for the rest. The operation id is the
// execution name.
type Starter struct {
	store   StarterStore
	flows   Launcher
	periods Periods
	catalog *tenant.Catalog
	now     func() time.Time
}

// NewStarter wires the API side of plan changes.
func NewStarter(s StarterStore, l Launcher, p Periods, c *tenant.Catalog) *Starter {
	return &Starter{store: s, flows: l, periods: p, catalog: c, now: time.Now}
}

// Upgrade starts an upgrade of tenantID to plan, if the lifecycle policy allows it
// for by.As.
func (s *Starter) Upgrade(ctx context.Context, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	t, err := s.decide(ctx, tenantID, tenant.ActUpgrade, plan, by)
	if err != nil {
		return nil, err
	}
	return s.start(ctx, t, tenant.KindUpgrade, plan, tenant.ActUpgrade, by)
}

// Downgrade starts a downgrade of tenantID to plan now, or records it as pending until
// the billing period end when atPeriodEnd (the scheduled sweep starts it then). Usage
// over the plan's limits is refused with every violation (the policy's usage_fits).
func (s *Starter) Downgrade(ctx context.Context, tenantID string, plan tenant.Plan, atPeriodEnd bool, by store.Actor) (*tenant.Operation, error) {
	act := tenant.ActDowngrade
	if atPeriodEnd {
		act = tenant.ActDowngradeAtPeriodEnd
	}
	t, err := s.decide(ctx, tenantID, act, plan, by)
	if err != nil {
		return nil, err
	}
	if !atPeriodEnd {
		return s.start(ctx, t, tenant.KindDowngrade, plan, act, by)
	}
	return s.schedule(ctx, t, plan, by)
}

func (s *Starter) start(ctx context.Context, t *tenant.Tenant, kind string, plan tenant.Plan, act tenant.Action, by store.Actor) (*tenant.Operation, error) {
	op := &tenant.Operation{ID: flow.NewOperationID(), TenantID: t.ID, Kind: kind, FromPlan: t.Plan, ToPlan: plan, RequestedBy: by.Who,
		Action: act, Actor: by.As}
	return s.flows.Start(ctx, op, inputOf(op))
}

// schedule records a period-end downgrade: the effective time is the subscription's
// real current period end, read from the billing provider now (and refreshed on the
// tenant), because the stored one goes stale at every renewal.
func (s *Starter) schedule(ctx context.Context, t *tenant.Tenant, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	now := s.now()
	periodEnd := t.Billing.CurrentPeriodEnd
	if t.Billing.SubscriptionID != "" && s.periods != nil {
		_, end, ok, err := s.periods.CurrentPeriod(ctx, t.Billing.SubscriptionID)
		if err != nil {
			return nil, err
		}
		if ok {
			periodEnd = &end
		}
	}
	effective := now.UTC().AddDate(0, 0, 30).Truncate(time.Second)
	if periodEnd != nil && periodEnd.After(now) {
		effective = periodEnd.UTC()
	}
	op, err := s.store.CreateOperation(ctx, &tenant.Operation{ID: flow.NewOperationID(), TenantID: t.ID, Kind: tenant.KindDowngrade, Status: tenant.OpScheduled,
		FromPlan: t.Plan, ToPlan: plan, AtPeriodEnd: true, EffectiveAt: &effective, RequestedBy: by.Who,
		Action: tenant.ActDowngradeAtPeriodEnd, Actor: by.As})
	if err != nil {
		return nil, err
	}
	by.OperationID = op.ID
	by.Reason = fmt.Sprintf("downgrade to %s scheduled for %s", plan, effective.Format(time.RFC3339))
	_, err = s.store.Change(ctx, t.ID, by, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.Plan != t.Plan {
			return store.Write{}, &tenant.ConflictError{TenantID: cur.ID, Reason: "the plan changed while the request was checked"}
		}
		if _, err := s.query(tenant.ActDowngradeAtPeriodEnd, cur, plan, by); err != nil {
			return store.Write{}, err
		}
		return store.Write{Reason: by.Reason, Mutate: func(x *tenant.Tenant) {
			x.PendingChange = &tenant.PendingChange{Plan: plan, EffectiveAt: effective, OperationID: op.ID}
			if periodEnd != nil {
				end := periodEnd.UTC()
				x.Billing.CurrentPeriodEnd = &end
			}
		}}, nil
	})
	if err != nil {
		_ = s.store.UpdateOperation(ctx, store.OpUpdate{ID: op.ID, Status: tenant.OpFailed, Error: "ConflictError", Cause: err.Error()})
		return nil, err
	}
	return op, nil
}

// decide reads the tenant and asks the lifecycle policy whether by may do act to it.
func (s *Starter) decide(ctx context.Context, tenantID string, act tenant.Action, plan tenant.Plan, by store.Actor) (*tenant.Tenant, error) {
	if _, err := s.catalog.Parse(string(plan)); err != nil {
		return nil, err
	}
	t, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return s.query(act, t, plan, by)
}

func (s *Starter) query(act tenant.Action, t *tenant.Tenant, plan tenant.Plan, by store.Actor) (*tenant.Tenant, error) {
	if _, err := tenant.Decide(tenant.Query{Action: act, Actor: by.As, Tenant: t, Plan: plan, Catalog: s.catalog, Now: s.now()}); err != nil {
		return nil, err
	}
	return t, nil
}
