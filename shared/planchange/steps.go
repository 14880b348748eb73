package planchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Store is the persistence the steps need.
type Store interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	Transition(ctx context.Context, id string, from, to tenant.State, expectedVersion int64, mutate func(*tenant.Tenant), by store.Actor) (*tenant.Tenant, error)
	Update(ctx context.Context, id string, expectedVersion int64, mutate func(*tenant.Tenant), by store.Actor) (*tenant.Tenant, error)
	CreateOperation(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
	SetOperationStatus(ctx context.Context, id string, status tenant.OperationStatus, errName, cause string) error
	MarkBillingAttempted(ctx context.Context, id string) error
}

// Provisioner applies and reverts a plan's resources.
type Provisioner interface {
	Apply(ctx context.Context, tenantID, opID string, plan tenant.Plan) error
	Revert(ctx context.Context, tenantID, opID string) error
}

// PriceChanger moves a subscription to a plan's price now (with proration). A
// period-end downgrade runs at the period end, where proration is close to nothing.
type PriceChanger interface {
	ChangePrice(ctx context.Context, subscriptionID string, plan tenant.Plan, idempotencyKey string) error
}

// Steps are the Lambda handlers of the plan-change state machines.
type Steps struct {
	store     Store
	provision Provisioner
	billing   PriceChanger
	catalog   *tenant.Catalog
	log       *slog.Logger
}

// NewSteps wires the step handlers.
func NewSteps(s Store, p Provisioner, b PriceChanger, c *tenant.Catalog, log *slog.Logger) *Steps {
	return &Steps{store: s, provision: p, billing: b, catalog: c, log: log}
}

func (s *Steps) logger(in Input, step string) *slog.Logger {
	return s.log.With("tenant_id", in.TenantID, "operation_id", in.OperationID, "step", step, "kind", in.Kind)
}

func actor(in Input, reason string) store.Actor {
	return store.Actor{Who: "system:" + in.Kind, OperationID: in.OperationID, Reason: reason}
}

// Validate checks the change is still valid (plan direction; usage fits on downgrade)
// and moves the tenant ACTIVE → UPGRADING/DOWNGRADING, claiming it for this operation.
// Typed errors (UsageExceedsLimitError, InvalidTransitionError, ConflictError,
// ValidationError) are returned unwrapped so the state machine can match their names.
func (s *Steps) Validate(ctx context.Context, in Input) (Input, error) {
	log := s.logger(in, "validate")
	t, err := s.store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return in, err
	}
	busy := in.busyState()
	if t.State == busy && t.Operation == in.OperationID {
		log.Info("already validated")
		return in, nil
	}
	if t.State != tenant.Active {
		return in, tenant.CheckTransition(t.State, busy)
	}
	if t.Plan != in.FromPlan {
		return in, &tenant.ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("plan is %s, the operation expected %s", t.Plan, in.FromPlan)}
	}
	if err := checkDirection(s.catalog, in.Kind, t.Plan, in.ToPlan); err != nil {
		return in, err
	}
	if in.Kind == tenant.KindDowngrade {
		if err := s.catalog.FitsPlan(t.Usage, in.ToPlan); err != nil {
			return in, err
		}
	}
	if err := s.ensureOperation(ctx, in); err != nil {
		return in, err
	}
	_, err = s.store.Transition(ctx, t.ID, tenant.Active, busy, t.Version, func(x *tenant.Tenant) {
		x.Operation = in.OperationID
		if x.PendingChange != nil && x.PendingChange.OperationID == in.OperationID {
			x.PendingChange = nil // the scheduled change is now running
		}
	}, actor(in, fmt.Sprintf("%s %s -> %s", in.Kind, in.FromPlan, in.ToPlan)))
	if err != nil {
		return in, err
	}
	if err := s.store.SetOperationStatus(ctx, in.OperationID, tenant.OpRunning, "", ""); err != nil {
		return in, err
	}
	log.Info("validated", "from_plan", in.FromPlan, "to_plan", in.ToPlan)
	return in, nil
}

// ensureOperation creates the operation record when the execution was started without
// one (by hand from the console, or by a caller other than the API), so every flow
// reports through GET /operations/{id}.
func (s *Steps) ensureOperation(ctx context.Context, in Input) error {
	_, err := s.store.GetOperation(ctx, in.OperationID)
	var nf *tenant.NotFoundError
	if !errors.As(err, &nf) {
		return err
	}
	_, err = s.store.CreateOperation(ctx, &tenant.Operation{ID: in.OperationID, TenantID: in.TenantID, Kind: in.Kind, Status: tenant.OpRunning,
		FromPlan: in.FromPlan, ToPlan: in.ToPlan, AtPeriodEnd: in.AtPeriodEnd, RequestedBy: in.RequestedBy})
	var ce *tenant.ConflictError
	if errors.As(err, &ce) {
		return nil // created concurrently by a retry
	}
	return err
}

// claimed returns the tenant when it is held by this operation, else a ConflictError:
// a step never touches a tenant another operation owns.
func (s *Steps) claimed(ctx context.Context, in Input) (*tenant.Tenant, error) {
	t, err := s.store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return nil, err
	}
	if t.Operation != in.OperationID || t.State != in.busyState() {
		return nil, &tenant.ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("tenant is %s for operation %q, not %s for %s", t.State, t.Operation, in.busyState(), in.OperationID)}
	}
	return t, nil
}

// Provision writes the target plan's entitlements and publishes TenantPlanChanged. On
// upgrade it runs BEFORE billing, so a customer never pays for what they cannot use.
func (s *Steps) Provision(ctx context.Context, in Input) (Input, error) {
	if _, err := s.claimed(ctx, in); err != nil {
		return in, err
	}
	if err := s.provision.Apply(ctx, in.TenantID, in.OperationID, in.ToPlan); err != nil {
		return in, err
	}
	s.logger(in, "provision").Info("entitlements applied", "plan", in.ToPlan)
	return in, nil
}

// Billing moves the subscription to the target price. It records the attempt first so
// that the rollback reverts billing whenever the call may have reached the provider.
func (s *Steps) Billing(ctx context.Context, in Input) (Input, error) {
	t, err := s.claimed(ctx, in)
	if err != nil {
		return in, err
	}
	log := s.logger(in, "billing")
	if t.Billing.SubscriptionID == "" {
		log.Info("no subscription; billing unchanged")
		return in, nil
	}
	if err := s.store.MarkBillingAttempted(ctx, in.OperationID); err != nil {
		return in, err
	}
	if err := s.billing.ChangePrice(ctx, t.Billing.SubscriptionID, in.ToPlan, in.OperationID+":billing"); err != nil {
		return in, err
	}
	log.Info("subscription price changed", "plan", in.ToPlan, "subscription_id", t.Billing.SubscriptionID)
	return in, nil
}

// Commit sets the new plan, returns the tenant to ACTIVE and marks the operation
// SUCCEEDED. A retry after the tenant write only finishes the operation record.
func (s *Steps) Commit(ctx context.Context, in Input) (Input, error) {
	t, err := s.store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return in, err
	}
	switch {
	case t.State == in.busyState() && t.Operation == in.OperationID:
		if _, err := s.store.Transition(ctx, t.ID, t.State, tenant.Active, t.Version, func(x *tenant.Tenant) {
			x.Plan, x.Operation = in.ToPlan, ""
		}, actor(in, fmt.Sprintf("%s committed: plan %s", in.Kind, in.ToPlan))); err != nil {
			return in, err
		}
	case t.State == tenant.Active && t.Plan == in.ToPlan && t.Operation == "":
		// committed by an earlier attempt
	default:
		return in, &tenant.ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("cannot commit %s: tenant is %s on %s", in.OperationID, t.State, t.Plan)}
	}
	if err := s.store.SetOperationStatus(ctx, in.OperationID, tenant.OpSucceeded, "", ""); err != nil {
		return in, err
	}
	s.logger(in, "commit").Info("plan change committed", "plan", in.ToPlan)
	return in, nil
}

// RollbackBilling reverts the subscription to the previous price if billing was
// attempted. Its own idempotency key makes repeats harmless.
func (s *Steps) RollbackBilling(ctx context.Context, in Input) (Input, error) {
	op, err := s.store.GetOperation(ctx, in.OperationID)
	if err != nil {
		return in, err
	}
	log := s.logger(in, "rollback-billing")
	if !op.BillingAttempted {
		log.Info("billing was not changed; nothing to revert")
		return in, nil
	}
	t, err := s.store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return in, err
	}
	if err := s.billing.ChangePrice(ctx, t.Billing.SubscriptionID, in.FromPlan, in.OperationID+":billing-rollback"); err != nil {
		return in, err
	}
	log.Info("subscription price reverted", "plan", in.FromPlan)
	return in, nil
}

// RollbackProvision restores the entitlements the operation replaced.
func (s *Steps) RollbackProvision(ctx context.Context, in Input) (Input, error) {
	if err := s.provision.Revert(ctx, in.TenantID, in.OperationID); err != nil {
		return in, err
	}
	s.logger(in, "rollback-provision").Info("entitlements restored")
	return in, nil
}

// Abort ends a failed change: the tenant goes back to ACTIVE on its previous plan (if
// this operation holds it) and the operation is FAILED with the caught error and cause.
func (s *Steps) Abort(ctx context.Context, in Input) (Input, error) {
	errName, cause := "PlanChangeFailed", "unknown"
	if in.Error != nil {
		errName, cause = in.Error.Error, in.Error.Message()
	}
	t, err := s.store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return in, err
	}
	if t.State == in.busyState() && t.Operation == in.OperationID {
		if _, err := s.store.Transition(ctx, t.ID, t.State, tenant.Active, t.Version, func(x *tenant.Tenant) {
			x.Plan, x.Operation = in.FromPlan, ""
		}, actor(in, fmt.Sprintf("%s rolled back: %s: %s", in.Kind, errName, cause))); err != nil {
			return in, err
		}
	} else if pc := t.PendingChange; pc != nil && pc.OperationID == in.OperationID {
		// A scheduled change that failed validation must not be started again by the sweep.
		if _, err := s.store.Update(ctx, t.ID, t.Version, func(x *tenant.Tenant) { x.PendingChange = nil },
			actor(in, fmt.Sprintf("scheduled %s dropped: %s: %s", in.Kind, errName, cause))); err != nil {
			return in, err
		}
	}
	if err := s.store.SetOperationStatus(ctx, in.OperationID, tenant.OpFailed, errName, cause); err != nil {
		return in, err
	}
	s.logger(in, "abort").Warn("plan change failed and rolled back", "error", errName, "cause", cause)
	return in, nil
}

// checkDirection refuses an upgrade that is not to a higher plan and a downgrade that is
// not to a lower one.
func checkDirection(c *tenant.Catalog, kind string, from, to tenant.Plan) error {
	if _, err := c.Parse(string(to)); err != nil {
		return err
	}
	cmp := c.Compare(to, from)
	switch {
	case kind == tenant.KindUpgrade && cmp <= 0:
		return &tenant.ValidationError{Field: "plan", Reason: fmt.Sprintf("%s is not higher than the current plan %s", to, from)}
	case kind == tenant.KindDowngrade && cmp >= 0:
		return &tenant.ValidationError{Field: "plan", Reason: fmt.Sprintf("%s is not lower than the current plan %s", to, from)}
	case kind != tenant.KindUpgrade && kind != tenant.KindDowngrade:
		return &tenant.ValidationError{Field: "kind", Reason: "must be upgrade or downgrade"}
	}
	return nil
}
