package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Access changes what a tenant's users may do (shared/provision implements it).
type Access interface {
	ApplyAs(ctx context.Context, tenantID, opID string, plan tenant.Plan, detailType string) error
	Restrict(ctx context.Context, tenantID, opID, access, detailType string) error
	RevertAs(ctx context.Context, tenantID, opID string, previous tenant.Plan, detailType string) error
}

// Billing is the part of the billing adapter these flows use (billing.Billing).
type Billing interface {
	Get(ctx context.Context, subscriptionID string) (billing.Subscription, error)
	Cancel(ctx context.Context, req billing.CancelRequest) (billing.Subscription, error)
	Resume(ctx context.Context, subscriptionID, idempotencyKey string) (billing.Subscription, error)
	ChangePlan(ctx context.Context, req billing.ChangeRequest) (billing.Subscription, error)
	CreateSubscription(ctx context.Context, req billing.CreateRequest) (billing.Subscription, error)
	CreatedBy(ctx context.Context, customerID, operationID string) ([]billing.Subscription, error)
}

// Steps are the Lambda handlers of the deletion, reactivation and suspension state
// machines; each switches on the operation kind.
type Steps struct {
	kit     *flow.Kit
	access  Access
	billing Billing
	catalog *tenant.Catalog
	flows   map[string]*flow.Definition
	now     func() time.Time
	hook    *apphook.Requester
}

// NewSteps wires the handlers. access and billing may be nil in functions that do not
// call them (their Needs do not include them).
func NewSteps(kit *flow.Kit, ents EntitlementsReader, a Access, b Billing, c *tenant.Catalog) *Steps {
	del, re, sus := Definitions(ents, "", "", "")
	return &Steps{kit: kit, access: a, billing: b, catalog: c, now: time.Now,
		flows: map[string]*flow.Definition{del.Kind: del, re.Kind: re, sus.Kind: sus}}
}

func (s *Steps) flow(kind string) (*flow.Definition, error) {
	if d, ok := s.flows[kind]; ok {
		return d, nil
	}
	return nil, &tenant.ValidationError{Field: "kind", Reason: "must be deletion, reactivation or suspension"}
}

// dropPrefix marks, on a lifecycle operation, the scheduled plan change its commit
// drops, so a repeated finish step can still end that change's operation.
const dropPrefix = "drops:"

// Claim records the operation and claims the tenant: ACTIVE/SUSPENDED → DELETING,
// ACTIVE → SUSPENDED (writing the cause and reason), SUSPENDED/DELETED (inside
// retention) → REACTIVATING, when the lifecycle policy still allows it (Claim.Check):
// usage that grew over the plan since the request, or a suspension the actor may not
// lift, refuses the claim like it refused the request. A pending plan change is kept:
// the flow may roll back and hand the tenant back as it was; Finish drops it when the
// flow commits.
func (s *Steps) Claim(ctx context.Context, in Input) (Input, error) {
	def, err := s.flow(in.Kind)
	if err != nil {
		return in, err
	}
	cur, err := s.kit.Store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return in, err
	}
	if _, err := s.kit.Ensure(ctx, &tenant.Operation{ID: in.OperationID, TenantID: in.TenantID, Kind: in.Kind, Status: tenant.OpRunning,
		FromPlan: cur.Plan, ToPlan: in.Plan, RetentionDays: in.RetentionDays, Reason: in.Reason, RequestedBy: in.RequestedBy,
		Action: in.Action, Actor: in.Actor, ToState: in.ToState, SuspendCause: in.Cause}); err != nil {
		return in, err
	}
	c := flow.Claim{Busy: def.Busy, Reason: claimReason(in)}
	var cause string
	c.Check = func(t *tenant.Tenant) error {
		// The policy again, on the tenant as it is now: a usage report or another
		// change between the request and this claim is judged here.
		v, err := tenant.Decide(s.policyQuery(in, t))
		if err != nil {
			return err
		}
		if in.Kind == tenant.KindReactivation && v.Ends != in.target() {
			return &tenant.ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("the reactivation was asked to end %s, the policy now ends it %s", in.target(), v.Ends)}
		}
		cause = v.Cause
		return nil
	}
	if in.Kind == tenant.KindSuspension {
		c.Mutate = func(x *tenant.Tenant) { x.SuspendCause, x.SuspendReason = cause, in.Reason }
	}
	switch in.Kind {
	case tenant.KindDeletion:
		c.From = []tenant.State{tenant.Active, tenant.Suspended}
	case tenant.KindSuspension:
		c.From = []tenant.State{tenant.Active}
	default:
		c.From = []tenant.State{tenant.Suspended, tenant.Deleted}
	}
	_, err = s.kit.Claim(ctx, in.Ref, c)
	return in, err
}

// policyQuery is what the claim asks the policy: the rule and actor the request was
// allowed by, or for an execution started by hand without them, an operator and the
// kind's natural action.
func (s *Steps) policyQuery(in Input, t *tenant.Tenant) tenant.Query {
	actor, action := in.Actor, in.Action
	if actor == "" {
		actor = tenant.ActorOperator
	}
	if action == "" {
		switch in.Kind {
		case tenant.KindDeletion:
			action = tenant.ActDelete
		case tenant.KindSuspension:
			action = tenant.ActSuspend
		default:
			action = reactivation(t.State, actor)
		}
	}
	return tenant.Query{Action: action, Actor: actor, Tenant: t, Plan: in.Plan, Catalog: s.catalog, Now: s.now(), OperationID: in.OperationID}
}

func claimReason(in Input) string {
	switch in.Kind {
	case tenant.KindDeletion:
		return fmt.Sprintf("deletion requested (retention %d days)", in.RetentionDays)
	case tenant.KindSuspension:
		return "suspension requested: " + in.Reason
	}
	if in.target() == tenant.Suspended {
		return "win-back requested onto " + string(in.Plan) + "; the suspension is kept"
	}
	return "reactivation requested onto " + string(in.Plan)
}

// Access restricts or restores what the tenant's users may do and announces it:
// deletion revokes access (TenantDeleted), suspension leaves read and export
// (TenantSuspended), reactivation restores the plan's entitlements
// (TenantReactivated) — or, for a win-back that keeps a suspension, read and export
// only (TenantSuspended). Repeating it changes nothing more.
func (s *Steps) Access(ctx context.Context, in Input) (Input, error) {
	def, err := s.flow(in.Kind)
	if err != nil {
		return in, err
	}
	if _, err := s.kit.Owned(ctx, in.Ref, def.Busy); err != nil {
		return in, err
	}
	switch in.Kind {
	case tenant.KindDeletion:
		return in, s.access.Restrict(ctx, in.TenantID, in.OperationID, tenant.AccessRevoked, events.TenantDeleted)
	case tenant.KindSuspension:
		return in, s.access.Restrict(ctx, in.TenantID, in.OperationID, tenant.AccessSuspended, events.TenantSuspended)
	}
	if in.target() == tenant.Suspended {
		return in, s.access.Restrict(ctx, in.TenantID, in.OperationID, tenant.AccessSuspended, events.TenantSuspended)
	}
	return in, s.access.ApplyAs(ctx, in.TenantID, in.OperationID, in.Plan, events.TenantReactivated)
}

// Billing stops or restarts billing, deciding from the subscription as Stripe holds
// it now. A deletion cancels the subscription at the end of the paid period (a
// win-back inside that period resumes it). A reactivation resumes a subscription the
// deletion set to cancel, and moves it to the chosen plan; a subscription that has
// ended (canceled, incomplete_expired) is replaced by a new one at the plan's price,
// because an ACTIVE tenant is a billed tenant. Each write is marked on the operation
// first, only when the read shows there is one to make, so the undo reverts exactly
// what this step did; its idempotency key is billing.Key of the operation's attempt.
func (s *Steps) Billing(ctx context.Context, in Input) (Input, error) {
	def, err := s.flow(in.Kind)
	if err != nil {
		return in, err
	}
	t, err := s.kit.Owned(ctx, in.Ref, def.Busy)
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
	cur, err := s.billing.Get(ctx, t.Billing.SubscriptionID)
	if err != nil {
		return in, err
	}
	log = log.With("subscription_id", cur.ID, "status", cur.Status, "attempt", op.Attempt)
	key := func(step string) string { return billing.Key(op.ID, op.Attempt, step) }
	if in.Kind == tenant.KindDeletion {
		if cur.Ended() || cur.CancelAtPeriodEnd {
			log.Info("subscription ended or cancels at period end already; billing unchanged")
			return in, nil
		}
		if err := s.kit.Mark(ctx, in.Ref, markBilling); err != nil {
			return in, err
		}
		_, err := s.billing.Cancel(ctx, billing.CancelRequest{SubscriptionID: cur.ID, AtPeriodEnd: true, IdempotencyKey: key("billing")})
		return in, err
	}
	if in.target() == tenant.Suspended {
		return in, s.keepSuspended(ctx, in, cur, key)
	}
	if cur.Ended() {
		return in, s.replace(ctx, in, t, cur, op)
	}
	err = s.restart(ctx, in, t, cur, key)
	if errors.Is(err, billing.ErrNotResumable) || errors.Is(err, billing.ErrEnded) {
		log.Info("subscription ended meanwhile; replacing it")
		return in, s.replace(ctx, in, t, cur, op)
	}
	return in, err
}

// keepSuspended is the billing of a win-back into SUSPENDED: it takes back the
// deletion's cancellation at period end (or a pause), so the subscription is where it
// was before the tenant deleted itself, and nothing more. A subscription that has
// ended stays ended: a suspended tenant gets no new subscription; whoever lifts the
// suspension gives it one (ACTIVE means billed).
func (s *Steps) keepSuspended(ctx context.Context, in Input, cur billing.Subscription, key func(string) string) error {
	if cur.Ended() || !(cur.CancelAtPeriodEnd || cur.Status == billing.StatusPaused) {
		s.kit.Logger(in.Ref, "billing").Info("won back into SUSPENDED: subscription left as it is", "subscription_id", cur.ID, "status", cur.Status)
		return nil
	}
	for _, m := range []string{markBilling, markResumed} {
		if err := s.kit.Mark(ctx, in.Ref, m); err != nil {
			return err
		}
	}
	_, err := s.billing.Resume(ctx, cur.ID, key("billing-resume"))
	if errors.Is(err, billing.ErrNotResumable) {
		s.kit.Logger(in.Ref, "billing").Info("subscription ended; a tenant won back into SUSPENDED gets no new one", "subscription_id", cur.ID)
		return nil
	}
	return err
}

// restart brings a live subscription back for a reactivation: coming back from
// DELETED it takes back the deletion's cancellation at period end (or a pause), then
// it moves the subscription to the chosen plan.
func (s *Steps) restart(ctx context.Context, in Input, t *tenant.Tenant, cur billing.Subscription, key func(string) string) error {
	if err := s.kit.Mark(ctx, in.Ref, markBilling); err != nil {
		return err
	}
	if t.PreviousState == tenant.Deleted && (cur.CancelAtPeriodEnd || cur.Status == billing.StatusPaused) {
		if err := s.kit.Mark(ctx, in.Ref, markResumed); err != nil {
			return err
		}
		if _, err := s.billing.Resume(ctx, cur.ID, key("billing-resume")); err != nil {
			return err
		}
	}
	_, err := s.billing.ChangePlan(ctx, billing.ChangeRequest{SubscriptionID: cur.ID, Plan: in.Plan, IdempotencyKey: key("billing")})
	return err
}

// replace creates a new subscription at the plan's price for the tenant's customer,
// the old one having ended. The operation is marked before the create, and the create
// carries this attempt's key and the operation in its metadata, so a create whose
// answer was lost is found again: the step's retry gets Stripe's replay of the key,
// and the undo lists the customer's subscriptions created by the operation. The new
// id is saved on the tenant once known.
func (s *Steps) replace(ctx context.Context, in Input, t *tenant.Tenant, old billing.Subscription, op *tenant.Operation) error {
	for _, m := range []string{markBilling, markSubscriptionCreated} {
		if err := s.kit.Mark(ctx, in.Ref, m); err != nil {
			return err
		}
	}
	customer := t.Billing.CustomerID
	if customer == "" {
		customer = old.CustomerID
	}
	sub, err := s.billing.CreateSubscription(ctx, billing.CreateRequest{TenantID: t.ID, Name: t.Name, Email: t.Email,
		CustomerID: customer, Plan: in.Plan, IdempotencyKey: billing.Key(op.ID, op.Attempt, "billing-new"),
		OperationID: op.ID, Attempt: op.Attempt})
	if err != nil {
		return err
	}
	s.kit.Logger(in.Ref, "billing").Info("new subscription replaces an ended one", "subscription_id", sub.ID, "replaced", old.ID, "replaced_status", old.Status)
	_, err = s.kit.Store.Change(ctx, t.ID, store.Actor{Who: "system:" + in.Kind, OperationID: in.OperationID}, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.Operation != in.OperationID {
			return store.Write{}, &tenant.ConflictError{TenantID: cur.ID, Reason: "tenant is no longer held by " + in.OperationID}
		}
		if cur.Billing.SubscriptionID == sub.ID {
			return store.Write{}, store.ErrUnchanged
		}
		return store.Write{Reason: "new subscription " + sub.ID + " replaces " + old.ID + " (" + old.Status + ")", Mutate: func(x *tenant.Tenant) {
			x.Billing.SubscriptionID = sub.ID
			if sub.CustomerID != "" {
				x.Billing.CustomerID = sub.CustomerID
			}
			if !sub.CurrentPeriodEnd.IsZero() {
				end := sub.CurrentPeriodEnd
				x.Billing.CurrentPeriodEnd = &end
			}
		}}, nil
	})
	return err
}

// Finish ends the flow: DELETING → DELETED with deleted_at and purge_after (a
// suspension's cause and reason stay), REACTIVATING → ACTIVE on the chosen plan with
// the deletion dates and the suspension cleared — or → SUSPENDED, cause and reason
// kept, for a win-back that keeps the suspension — or the suspension's claim released;
// and the operation SUCCEEDED, in one transaction. The same write drops a pending plan
// change (a deleted, suspended or reactivated tenant does not take a plan change
// scheduled before), and that change's operation then ends FAILED
// (PendingChangeDropped).
func (s *Steps) Finish(ctx context.Context, in Input) (Input, error) {
	def, err := s.flow(in.Kind)
	if err != nil {
		return in, err
	}
	// The pending change is known only before the commit: mark it first, so a retry
	// after a lost answer still ends its operation.
	cur, err := s.kit.Store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return in, err
	}
	owned := cur.Operation == in.OperationID
	if owned && cur.PendingChange != nil {
		if err := s.kit.Mark(ctx, in.Ref, dropPrefix+cur.PendingChange.OperationID); err != nil {
			return in, err
		}
	}
	var to tenant.State
	var mutate func(*tenant.Tenant)
	var reason string
	switch in.Kind {
	case tenant.KindDeletion:
		now := s.now().UTC()
		after := purgeAfter(now, in.RetentionDays)
		to, reason = tenant.Deleted, fmt.Sprintf("deleted; purge after %s", after.Format(time.RFC3339))
		mutate = func(x *tenant.Tenant) { x.DeletedAt, x.PurgeAfter, x.RetentionDays = &now, &after, in.RetentionDays }
	case tenant.KindSuspension:
		to, reason = tenant.Suspended, "suspended: "+in.Reason
	case tenant.KindReactivation:
		if in.target() == tenant.Suspended {
			to, reason = tenant.Suspended, "won back into SUSPENDED on "+string(in.Plan)+"; suspension kept"
			mutate = func(x *tenant.Tenant) { x.Plan, x.DeletedAt, x.PurgeAfter, x.RetentionDays = in.Plan, nil, nil, 0 }
			break
		}
		to, reason = tenant.Active, "reactivated onto "+string(in.Plan)
		mutate = func(x *tenant.Tenant) {
			x.Plan, x.DeletedAt, x.PurgeAfter, x.RetentionDays, x.SuspendCause, x.SuspendReason = in.Plan, nil, nil, 0, "", ""
		}
	}
	err = s.kit.Finish(ctx, in.Ref, def.Busy, to, func(x *tenant.Tenant) {
		x.PendingChange = nil
		if mutate != nil {
			mutate(x)
		}
	}, reason)
	if err != nil {
		return in, err
	}
	if owned && cur.PendingChange == nil {
		return in, nil // nothing was dropped
	}
	// A change was dropped now, or this is a repeat after the commit (its answer
	// lost): the operation's marks say what to end.
	return in, s.endDropped(ctx, in)
}

// endDropped ends FAILED the scheduled plan changes a committed operation dropped
// (its drops: marks). Repeating it changes nothing.
func (s *Steps) endDropped(ctx context.Context, in Input) error {
	op, err := s.kit.Store.GetOperation(ctx, in.OperationID)
	if err != nil {
		return err
	}
	for _, m := range op.Marks {
		if id, ok := strings.CutPrefix(m, dropPrefix); ok && id != "" {
			err := s.kit.Store.UpdateOperation(ctx, store.OpUpdate{ID: id, Status: tenant.OpFailed, Error: "PendingChangeDropped",
				Cause: fmt.Sprintf("the tenant's %s (operation %s) replaced it", in.Kind, in.OperationID)})
			var ce *tenant.ConflictError
			if err != nil && !errors.As(err, &ce) {
				return err
			}
		}
	}
	return nil
}

// UndoAccess restores the entitlements this operation replaced (deletion and
// reactivation), announcing the compensation.
func (s *Steps) UndoAccess(ctx context.Context, in Input) (Input, error) {
	def, err := s.flow(in.Kind)
	if err != nil {
		return in, err
	}
	t, _, ok, err := s.kit.Compensating(ctx, in.Ref, def.Busy)
	if err != nil || !ok {
		return in, err
	}
	detail := events.TenantRestored
	if in.Kind == tenant.KindReactivation {
		detail = events.TenantUnreactivated
	}
	// The tenant keeps its plan until Finish, so it is the plan to go back to.
	return in, s.access.RevertAs(ctx, in.TenantID, in.OperationID, t.Plan, detail)
}

// UndoBilling reverts what Billing did, as its marks record it, with keys of the
// current attempt (an operator retry is not answered with an error Stripe stored for
// an earlier attempt's key): a deletion's cancellation is resumed; a reactivation's
// new subscriptions are canceled now, found by the operation in their metadata (never
// "the tenant's subscription", which may be the old, ended one when the create's
// answer was lost); otherwise the plan is moved back and, if Billing resumed the
// subscription, it is set to cancel at period end again. A subscription that ended
// meanwhile has nothing left to move back. What cannot be done stays an error, so
// the operation ends needing attention with billing incomplete.
func (s *Steps) UndoBilling(ctx context.Context, in Input) (Input, error) {
	def, err := s.flow(in.Kind)
	if err != nil {
		return in, err
	}
	t, op, ok, err := s.kit.Compensating(ctx, in.Ref, def.Busy)
	if err != nil || !ok {
		return in, err
	}
	if !op.Marked(markBilling) || op.Marked(markBillingReverted) {
		return in, nil
	}
	key := func(step string) string { return billing.Key(op.ID, op.Attempt, step) }
	sub := t.Billing.SubscriptionID
	switch {
	case in.Kind == tenant.KindDeletion:
		_, err = s.billing.Resume(ctx, sub, key("billing-rollback"))
	case op.Marked(markSubscriptionCreated):
		err = s.cancelCreated(ctx, in, t, op)
	default:
		_, err = s.billing.ChangePlan(ctx, billing.ChangeRequest{SubscriptionID: sub, Plan: t.Plan, IdempotencyKey: key("billing-rollback-plan")})
		if errors.Is(err, billing.ErrEnded) {
			err = nil
		}
		if err == nil && op.Marked(markResumed) {
			_, err = s.billing.Cancel(ctx, billing.CancelRequest{SubscriptionID: sub, AtPeriodEnd: true, IdempotencyKey: key("billing-rollback")})
		}
	}
	if err != nil {
		return in, err
	}
	return in, s.kit.Mark(ctx, in.Ref, markBillingReverted)
}

// cancelCreated cancels, now, every subscription of the tenant's customer that this
// operation created (in any attempt), as Stripe lists them: the one whose id was saved
// on the tenant and one whose create answer was lost alike. Finding none means the
// create never happened. Without a customer to look under, nothing can be verified.
func (s *Steps) cancelCreated(ctx context.Context, in Input, t *tenant.Tenant, op *tenant.Operation) error {
	customer := t.Billing.CustomerID
	if customer == "" && t.Billing.SubscriptionID != "" {
		old, err := s.billing.Get(ctx, t.Billing.SubscriptionID)
		if err != nil {
			return err
		}
		customer = old.CustomerID
	}
	if customer == "" {
		return fmt.Errorf("cannot find the subscriptions operation %s created: tenant %s has no Stripe customer", op.ID, t.ID)
	}
	created, err := s.billing.CreatedBy(ctx, customer, op.ID)
	if err != nil {
		return err
	}
	log := s.kit.Logger(in.Ref, "undo-billing")
	for _, sub := range created {
		if sub.Ended() {
			continue
		}
		if _, err := s.billing.Cancel(ctx, billing.CancelRequest{SubscriptionID: sub.ID, IdempotencyKey: billing.Key(op.ID, op.Attempt, "billing-rollback-new:"+sub.ID)}); err != nil {
			return err
		}
		log.Info("canceled the subscription this operation created", "subscription_id", sub.ID, "customer_id", customer)
	}
	if len(created) == 0 {
		log.Info("no subscription created by this operation; nothing to cancel", "customer_id", customer)
	}
	return nil
}

// Release ends a failed operation (flow.Kit.Release): the tenant goes back where it
// came from, the operation is FAILED with the caught error and whatever could not be
// undone.
func (s *Steps) Release(ctx context.Context, in Input) (flow.Outcome, error) {
	def, err := s.flow(in.Kind)
	if err != nil {
		return flow.Outcome{}, err
	}
	return s.kit.Release(ctx, def, in.Ref, in.Error)
}
