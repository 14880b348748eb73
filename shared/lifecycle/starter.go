package lifecycle

import (
	"context"
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

// Starter answers deletion, suspension and reactivation requests at once: it asks the
// lifecycle policy (tenant.Decide) for the caller's class (store.Actor.As), refuses
// with the policy's typed error (forbidden, wrong state, another operation in
// progress, retention expired, unknown plan, usage over the plan) and starts the flow
// for the rest, recording on the operation the rule that allowed it.
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
	t, _, err := s.decide(ctx, tenantID, tenant.ActDelete, "", by)
	if err != nil {
		return nil, err
	}
	op := &tenant.Operation{ID: flow.NewOperationID(), TenantID: t.ID, Kind: tenant.KindDeletion, FromPlan: t.Plan,
		RetentionDays: retentionDays, RequestedBy: by.Who, Action: tenant.ActDelete, Actor: by.As}
	op, err = s.flows.Start(ctx, op, inputOf(op))
	if err != nil {
		return nil, err
	}
	return &Deletion{Operation: op, RetentionDays: retentionDays, PurgeAfter: purgeAfter(s.now(), retentionDays)}, nil
}

// Suspend suspends an ACTIVE tenant for reason. An operator's suspension has the cause
// "operator"; Stripe's (by.As is tenant.ActorStripe) has the cause its reason names,
// "nonpayment" or "canceled". The cause decides who may lift it.
func (s *Starter) Suspend(ctx context.Context, tenantID, reason string, by store.Actor) (*tenant.Operation, error) {
	return s.SuspendAs(ctx, flow.NewOperationID(), tenantID, reason, by)
}

// SuspendAs is Suspend under an operation id the caller chose (the Stripe webhook
// records it before starting, so a retry of its event finds the same operation).
func (s *Starter) SuspendAs(ctx context.Context, opID, tenantID, reason string, by store.Actor) (*tenant.Operation, error) {
	action := tenant.ActSuspend
	if by.As == tenant.ActorStripe {
		switch reason {
		case tenant.CauseNonpayment:
			action = tenant.ActStripeSuspendNonpayment
		case tenant.CauseCanceled:
			action = tenant.ActStripeSuspendCanceled
		default:
			return nil, &tenant.ValidationError{Field: "reason", Reason: "a Stripe suspension is for " + tenant.CauseNonpayment + " or " + tenant.CauseCanceled}
		}
	}
	t, v, err := s.decide(ctx, tenantID, action, "", by)
	if err != nil {
		return nil, err
	}
	op := &tenant.Operation{ID: opID, TenantID: t.ID, Kind: tenant.KindSuspension, FromPlan: t.Plan,
		Reason: reason, RequestedBy: by.Who, Action: action, Actor: by.As, SuspendCause: v.Cause}
	return s.flows.Start(ctx, op, inputOf(op))
}

// Reactivate brings a SUSPENDED tenant, or a DELETED one inside its retention window,
// back onto plan, as the policy allows by.As: lifting a suspension is an operator's
// (or, for nonpayment, Stripe's); a win-back of a tenant deleted while suspended by
// its own token comes back SUSPENDED on the plan it had. Past purge_after — even
// before the purge ran — or once PURGED the answer is *tenant.RetentionExpiredError;
// usage over the plan's limits is *tenant.UsageExceedsLimitError.
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
	action := reactivation(cur.State, by.As)
	t, v, err := s.decideOn(cur, action, plan, by)
	if err != nil {
		return nil, err
	}
	op := &tenant.Operation{ID: opID, TenantID: t.ID, Kind: tenant.KindReactivation, FromPlan: t.Plan, ToPlan: plan,
		RequestedBy: by.Who, Action: action, Actor: by.As, ToState: v.Ends}
	return s.flows.Start(ctx, op, inputOf(op))
}

// reactivation is the policy action of a reactivation request of who for a tenant in
// state: Stripe only lifts nonpayment; otherwise a SUSPENDED tenant is lifted and any
// other is won back (the win-back rule refuses every state but DELETED).
func reactivation(state tenant.State, who tenant.Actor) tenant.Action {
	switch {
	case who == tenant.ActorStripe:
		return tenant.ActStripeLiftNonpayment
	case state == tenant.Suspended:
		return tenant.ActReactivate
	}
	return tenant.ActWinBack
}

// decide reads the tenant and asks the policy whether by may do action to it.
func (s *Starter) decide(ctx context.Context, tenantID string, action tenant.Action, plan tenant.Plan, by store.Actor) (*tenant.Tenant, tenant.Verdict, error) {
	t, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, tenant.Verdict{}, err
	}
	return s.decideOn(t, action, plan, by)
}

func (s *Starter) decideOn(t *tenant.Tenant, action tenant.Action, plan tenant.Plan, by store.Actor) (*tenant.Tenant, tenant.Verdict, error) {
	v, err := tenant.Decide(tenant.Query{Action: action, Actor: by.As, Tenant: t, Plan: plan, Catalog: s.catalog, Now: s.now()})
	if err != nil {
		return nil, v, err
	}
	return t, v, nil
}
