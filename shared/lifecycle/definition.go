package lifecycle

import (
	"context"
	"errors"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// EntitlementsReader reads what the access step wrote.
type EntitlementsReader interface {
	GetEntitlements(ctx context.Context, id string) (*tenant.Entitlements, error)
}

// Definitions returns the flow-kit definitions of deletion, reactivation and
// suspension, with their state machine ARNs.
func Definitions(ents EntitlementsReader, deletionARN, reactivationARN, suspensionARN string) (deletion, reactivation, suspension *flow.Definition) {
	mk := func(kind, arn string) *flow.Definition {
		return &flow.Definition{
			Kind: kind, Busy: busy(kind), StateMachineARN: arn,
			Settle: func(ctx context.Context, _ *tenant.Tenant, op *tenant.Operation) (flow.Settlement, error) {
				return settle(ctx, ents, op)
			},
			RetryInput: func(op *tenant.Operation) any { in := inputOf(op); in.Resume = true; return in },
		}
	}
	return mk(tenant.KindDeletion, deletionARN), mk(tenant.KindReactivation, reactivationARN), mk(tenant.KindSuspension, suspensionARN)
}

// settle releases a failed lifecycle operation. Deletion and reactivation put the
// tenant back where it came from (the claim recorded it on the operation) with its
// plan; what the records show changed and not undone is incomplete. A suspension is
// never undone — an operator asked to stop the tenant — so a failed one stays
// SUSPENDED and its access step, if it did not happen, is what is incomplete.
func settle(ctx context.Context, ents EntitlementsReader, op *tenant.Operation) (flow.Settlement, error) {
	e, err := ents.GetEntitlements(ctx, op.TenantID)
	var nf *tenant.NotFoundError
	switch {
	case errors.As(err, &nf):
		e = &tenant.Entitlements{}
	case err != nil:
		return flow.Settlement{}, err
	}
	// The claim records where the tenant came from; without it nothing was changed.
	claimed := op.PreviousState != ""
	if op.Kind == tenant.KindSuspension {
		s := flow.Settlement{To: tenant.Suspended}
		if claimed && e.OperationID != op.ID {
			s.Incomplete = []string{"entitlements"}
		}
		return s, nil
	}
	back := op.PreviousState
	if back == "" {
		back = tenant.Active // never claimed: nothing to put back
		if op.Kind == tenant.KindReactivation {
			back = tenant.Suspended
		}
	}
	s := flow.Settlement{To: back, Mutate: func(x *tenant.Tenant) {
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
	return s, nil
}
