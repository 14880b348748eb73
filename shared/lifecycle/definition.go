package lifecycle

import (
	"context"
	"errors"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// EntitlementsReader reads what the access step wrote, and the reactivation's
// provisioning hook requests to the app plane.
type EntitlementsReader interface {
	GetEntitlements(ctx context.Context, id string) (*tenant.Entitlements, error)
	GetProvisioning(ctx context.Context, tenantID, id string) (*apphook.Request, error)
}

// Definitions returns the flow-kit definitions of deletion, reactivation and
// suspension, with their state machine ARNs.
func Definitions(ents EntitlementsReader, deletionARN, reactivationARN, suspensionARN string) (deletion, reactivation, suspension *flow.Definition) {
	mk := func(kind, arn string) *flow.Definition {
		return &flow.Definition{
			Kind: kind, Busy: busy(kind), StateMachineARN: arn,
			Settle: func(ctx context.Context, t *tenant.Tenant, op *tenant.Operation) (flow.Settlement, error) {
				return settle(ctx, ents, t, op)
			},
			RetryInput: func(op *tenant.Operation) any { in := inputOf(op); in.Resume = true; return in },
		}
	}
	deletion, reactivation, suspension = mk(tenant.KindDeletion, deletionARN), mk(tenant.KindReactivation, reactivationARN), mk(tenant.KindSuspension, suspensionARN)
	// A retry of a suspension resumes at its access step and ends SUSPENDED; when its
	// claim never happened (a Stripe suspension that failed there) the retry's claim is
	// the one that suspends, so it records the cause and reason the claim would have.
	suspension.RetryMutate = func(op *tenant.Operation, x *tenant.Tenant) {
		x.SuspendCause, x.SuspendReason = suspendCause(op), op.Reason
	}
	return deletion, reactivation, suspension
}

// suspendCause is the cause a suspension operation records: the one the policy gave
// when it was requested, or for an operation recorded without it, its rule's, or the
// one its reason names.
func suspendCause(op *tenant.Operation) string {
	if op.SuspendCause != "" {
		return op.SuspendCause
	}
	if r := tenant.RuleFor(op.Action); r != nil && r.Cause != "" {
		return r.Cause
	}
	if c := (&tenant.Tenant{SuspendReason: op.Reason}).Cause(); c != "" {
		return c
	}
	return tenant.CauseOperator
}

// stripeEvent is what a failed operation the Stripe webhook started leaves incomplete
// when the tenant is not where the event meant it to be.
const stripeEvent = "stripe-event"

// intended is where a lifecycle operation leaves its tenant when it succeeds.
func intended(op *tenant.Operation) tenant.State {
	switch op.Kind {
	case tenant.KindDeletion:
		return tenant.Deleted
	case tenant.KindSuspension:
		return tenant.Suspended
	}
	if op.ToState != "" {
		return op.ToState
	}
	return tenant.Active
}

// settle releases a failed lifecycle operation. Deletion and reactivation put the
// tenant back where it came from (the claim recorded it on the operation) with its
// plan; what the records show changed and not undone is incomplete. A suspension is
// never undone — an operator asked to stop the tenant — so a failed one stays
// SUSPENDED and its access step, if it did not happen, is what is incomplete.
//
// An operation the Stripe webhook started is different: Stripe got its 200 and the
// event is done, so nothing would apply it again. When such an operation fails short
// of the state it was started for (a suspension that never claimed its tenant, a lift
// of a nonpayment suspension put back), billing and the tenant disagree — ACTIVE on a
// canceled subscription, SUSPENDED while paying — and "stripe-event" is incomplete,
// so an operator is told.
func settle(ctx context.Context, ents EntitlementsReader, t *tenant.Tenant, op *tenant.Operation) (flow.Settlement, error) {
	e, err := ents.GetEntitlements(ctx, op.TenantID)
	var nf *tenant.NotFoundError
	switch {
	case errors.As(err, &nf):
		e = &tenant.Entitlements{}
	case err != nil:
		return flow.Settlement{}, err
	}
	// The claim records where the tenant came from; without it nothing was changed.
	// An operator retry's claim records it on the tenant only: a retry may be the
	// first claim of an operation whose own claim step never succeeded.
	prev := op.PreviousState
	if prev == "" && t != nil && t.Operation == op.ID {
		prev = t.PreviousState
	}
	claimed := prev != ""
	var s flow.Settlement
	if op.Kind == tenant.KindSuspension {
		s = flow.Settlement{To: tenant.Suspended}
		if claimed && e.OperationID != op.ID {
			s.Incomplete = []string{"entitlements"}
		}
	} else {
		back := prev
		if back == "" {
			back = tenant.Active // never claimed: nothing to put back
			if op.Kind == tenant.KindReactivation {
				back = tenant.Suspended
			}
		}
		s = flow.Settlement{To: back, Mutate: func(x *tenant.Tenant) {
			if op.FromPlan != "" {
				x.Plan = op.FromPlan
			}
		}}
		if op.Marked(markBilling) && !op.Marked(markBillingReverted) {
			s.Incomplete = append(s.Incomplete, "billing")
		}
		if e.OperationID == op.ID {
			s.Incomplete = append(s.Incomplete, "entitlements")
		}
		// A reactivation asked the app plane to provision and the undo of this
		// attempt was not confirmed: the app plane may still hold what it made.
		if op.Kind == tenant.KindReactivation {
			open, err := apphook.Unconfirmed(ctx, ents, op)
			if err != nil {
				return flow.Settlement{}, err
			}
			if open {
				s.Incomplete = append(s.Incomplete, apphook.Incomplete)
			}
		}
	}
	if op.Actor == tenant.ActorStripe {
		// Where the tenant is left: the settled state once claimed, else where it is.
		left := s.To
		if !claimed && t != nil {
			left = t.State
		}
		if left != intended(op) {
			s.Incomplete = append(s.Incomplete, stripeEvent)
		}
	}
	return s, nil
}
