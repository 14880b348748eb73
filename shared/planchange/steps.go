package planchange

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Provisioner applies and reverts a plan's resources.
type Provisioner interface {
	Apply(ctx context.Context, tenantID, opID string, plan tenant.Plan) error
	Revert(ctx context.Context, tenantID, opID string, previous tenant.Plan) error
}

// PriceChanger moves a subscription to a plan's price. prorate is false for a change
// applied at the billing period boundary, where there is nothing to prorate.
type PriceChanger interface {
	ChangePrice(ctx context.Context, subscriptionID string, plan tenant.Plan, idempotencyKey string, prorate bool) error
}

// Steps are the Lambda handlers of the plan-change state machines.
type Steps struct {
	kit       *flow.Kit
	provision Provisioner
	billing   PriceChanger
	catalog   *tenant.Catalog
	flows     map[string]*flow.Definition
	hook      *apphook.Requester
}

// NewSteps wires the step handlers; ents reads entitlements for the release decision.
func NewSteps(kit *flow.Kit, ents EntitlementsReader, p Provisioner, b PriceChanger, c *tenant.Catalog) *Steps {
	up, down := Definitions(ents, "", "")
	return &Steps{kit: kit, provision: p, billing: b, catalog: c, flows: map[string]*flow.Definition{up.Kind: up, down.Kind: down}}
}

// Validate checks the change is still allowed (the lifecycle policy: plan direction,
// usage fits the target plan, who asked) and claims the tenant: ACTIVE → UPGRADING/DOWNGRADING with this operation, operation
// RUNNING, in one write. A repeat finds the claim and succeeds. Typed errors
// (UsageExceedsLimitError, InvalidTransitionError, ConflictError, ValidationError) go
// to the Catch at once.
func (s *Steps) Validate(ctx context.Context, in Input) (Input, error) {
	if err := checkKind(in.Kind); err != nil {
		return in, err
	}
	if _, err := s.kit.Ensure(ctx, &tenant.Operation{ID: in.OperationID, TenantID: in.TenantID, Kind: in.Kind, Status: tenant.OpRunning,
		FromPlan: in.FromPlan, ToPlan: in.ToPlan, AtPeriodEnd: in.AtPeriodEnd, RequestedBy: in.RequestedBy, Action: action(in.Kind), Actor: in.Actor}); err != nil {
		return in, err
	}
	actor := in.Actor
	if actor == "" {
		actor = tenant.ActorOperator // started by hand
	}
	_, err := s.kit.Claim(ctx, in.Ref, flow.Claim{
		From: []tenant.State{tenant.Active}, Busy: busyState(in.Kind),
		Reason: fmt.Sprintf("%s %s -> %s", in.Kind, in.FromPlan, in.ToPlan),
		Check: func(t *tenant.Tenant) error {
			if t.Plan != in.FromPlan {
				return &tenant.ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("plan is %s, the operation expected %s", t.Plan, in.FromPlan)}
			}
			// The lifecycle policy again, on the tenant as it is now (usage reported
			// since the request, or since a period-end change was scheduled).
			_, err := tenant.Decide(tenant.Query{Action: action(in.Kind), Actor: actor, Tenant: t, Plan: in.ToPlan, Catalog: s.catalog,
				OperationID: in.OperationID})
			return err
		},
		Mutate: func(x *tenant.Tenant) {
			if x.PendingChange != nil && x.PendingChange.OperationID == in.OperationID {
				x.PendingChange = nil // the scheduled change is now running
			}
		},
	})
	return in, err
}

// Provision writes the target plan's entitlements and publishes TenantPlanChanged. On
// upgrade it runs BEFORE billing, so a customer never pays for what they cannot use.
func (s *Steps) Provision(ctx context.Context, in Input) (Input, error) {
	if _, err := s.kit.Owned(ctx, in.Ref, busyState(in.Kind)); err != nil {
		return in, err
	}
	return in, s.provision.Apply(ctx, in.TenantID, in.OperationID, in.ToPlan)
}

// Billing moves the subscription to the target price. It marks the operation first so
// that compensation reverts billing whenever the call may have reached the provider
// (the answer can be lost after Stripe applied it). A period-end change is applied at
// the boundary without proration. The idempotency key is billing.Key of the
// operation's attempt, so Step Functions' retries of this step replay Stripe's first
// answer. A subscription that has ended is refused (billing.ErrEnded): a plan change
// does not start billing again.
func (s *Steps) Billing(ctx context.Context, in Input) (Input, error) {
	t, err := s.kit.Owned(ctx, in.Ref, busyState(in.Kind))
	if err != nil {
		return in, err
	}
	log := s.kit.Logger(in.Ref, "billing")
	if t.Billing.SubscriptionID == "" {
		log.Info("no subscription; billing unchanged")
		return in, nil
	}
	op, err := s.kit.Store.GetOperation(ctx, in.OperationID)
	if err != nil {
		return in, err
	}
	if err := s.kit.Mark(ctx, in.Ref, markBilling); err != nil {
		return in, err
	}
	if err := s.billing.ChangePrice(ctx, t.Billing.SubscriptionID, in.ToPlan, billing.Key(op.ID, op.Attempt, "billing"), !in.AtPeriodEnd); err != nil {
		return in, err
	}
	log.Info("subscription price changed", "plan", in.ToPlan, "subscription_id", t.Billing.SubscriptionID, "prorate", !in.AtPeriodEnd)
	return in, nil
}

// Commit sets the new plan, returns the tenant to ACTIVE and marks the operation
// SUCCEEDED in one transaction. A repeat after that write succeeds without writing,
// and from then on every compensation step leaves the change alone.
func (s *Steps) Commit(ctx context.Context, in Input) (Input, error) {
	return in, s.kit.Finish(ctx, in.Ref, busyState(in.Kind), tenant.Active,
		func(x *tenant.Tenant) { x.Plan = in.ToPlan }, fmt.Sprintf("%s committed: plan %s", in.Kind, in.ToPlan))
}

// RollbackBilling reverts the subscription to the previous price if this operation
// may have changed it and has not reverted it yet. Its own idempotency key, of the
// current attempt, makes a repeat harmless, and gives an operator retry a key Stripe
// has not answered yet. A subscription that ended meanwhile bills nothing: there is
// no price to move back.
func (s *Steps) RollbackBilling(ctx context.Context, in Input) (Input, error) {
	t, op, ok, err := s.kit.Compensating(ctx, in.Ref, busyState(in.Kind))
	if err != nil || !ok {
		return in, err
	}
	log := s.kit.Logger(in.Ref, "rollback-billing")
	if !op.Marked(markBilling) || op.Marked(markBillingReverted) {
		log.Info("billing was not changed, or is reverted already")
		return in, nil
	}
	err = s.billing.ChangePrice(ctx, t.Billing.SubscriptionID, in.FromPlan, billing.Key(op.ID, op.Attempt, "billing-rollback"), !in.AtPeriodEnd)
	if errors.Is(err, billing.ErrEnded) {
		log.Info("subscription has ended; no price to move back", "subscription_id", t.Billing.SubscriptionID)
		err = nil
	}
	if err != nil {
		return in, err
	}
	if err := s.kit.Mark(ctx, in.Ref, markBillingReverted); err != nil {
		return in, err
	}
	log.Info("subscription price reverted", "plan", in.FromPlan)
	return in, nil
}

// RollbackProvision restores the entitlements the operation replaced (the previous
// plan's, also for a tenant that had none recorded).
func (s *Steps) RollbackProvision(ctx context.Context, in Input) (Input, error) {
	_, _, ok, err := s.kit.Compensating(ctx, in.Ref, busyState(in.Kind))
	if err != nil || !ok {
		return in, err
	}
	return in, s.provision.Revert(ctx, in.TenantID, in.OperationID, in.FromPlan)
}

// Release ends a failed change (flow.Kit.Release): the tenant goes back to ACTIVE on
// its previous plan, the operation is FAILED with the caught error and whatever could
// not be undone. Its Outcome tells the state machine whether the change had in fact
// committed.
func (s *Steps) Release(ctx context.Context, in Input) (flow.Outcome, error) {
	if err := checkKind(in.Kind); err != nil {
		return flow.Outcome{}, err
	}
	return s.kit.Release(ctx, s.flows[in.Kind], in.Ref, in.Error)
}

func checkKind(kind string) error {
	if kind != tenant.KindUpgrade && kind != tenant.KindDowngrade {
		return &tenant.ValidationError{Field: "kind", Reason: "must be upgrade or downgrade"}
	}
	return nil
}
