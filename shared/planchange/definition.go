package planchange

import (
	"context"
	"errors"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// EntitlementsReader reads what provisioning wrote: the entitlements, and the
// provisioning hook's requests to the app plane.
type EntitlementsReader interface {
	GetEntitlements(ctx context.Context, id string) (*tenant.Entitlements, error)
	GetProvisioning(ctx context.Context, tenantID, id string) (*apphook.Request, error)
}

// IncompleteAppProvisioning is what compensation_incomplete names when the app plane
// was asked to provision for the operation and did not confirm the undo.
const IncompleteAppProvisioning = apphook.Incomplete

// Definitions returns the flow-kit definitions of the upgrade and downgrade flows.
func Definitions(ents EntitlementsReader, upgradeARN, downgradeARN string) (upgrade, downgrade *flow.Definition) {
	mk := func(kind, arn string) *flow.Definition {
		return &flow.Definition{
			Kind: kind, Busy: busyState(kind), StateMachineARN: arn,
			Settle: func(ctx context.Context, t *tenant.Tenant, op *tenant.Operation) (flow.Settlement, error) {
				return settle(ctx, ents, op)
			},
			RetryInput: func(op *tenant.Operation) any { in := inputOf(op); in.Resume = true; return in },
		}
	}
	return mk(tenant.KindUpgrade, upgradeARN), mk(tenant.KindDowngrade, downgradeARN)
}

// settle releases a failed plan change: ACTIVE on the plan it had, its pending change
// (if it never started) dropped, and as incomplete whatever the records show was
// changed and not reverted: entitlements still written by this operation, billing
// marked as attempted but not as reverted.
func settle(ctx context.Context, ents EntitlementsReader, op *tenant.Operation) (flow.Settlement, error) {
	s := flow.Settlement{
		To:     tenant.Active,
		Mutate: func(x *tenant.Tenant) { x.Plan = op.FromPlan },
		Detach: func(x *tenant.Tenant) bool {
			if x.PendingChange != nil && x.PendingChange.OperationID == op.ID {
				x.PendingChange = nil
				return true
			}
			return false
		},
	}
	if op.Marked(markBilling) && !op.Marked(markBillingReverted) {
		s.Incomplete = append(s.Incomplete, "billing")
	}
	// The app plane was asked to provision and has not confirmed the undo of this
	// attempt (the undo timed out, failed, or never ran).
	if open, err := apphook.Unconfirmed(ctx, ents, op); err != nil {
		return s, err
	} else if open {
		s.Incomplete = append(s.Incomplete, IncompleteAppProvisioning)
	}
	var nf *tenant.NotFoundError
	e, err := ents.GetEntitlements(ctx, op.TenantID)
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return s, err
	case e.OperationID == op.ID:
		s.Incomplete = append(s.Incomplete, "entitlements")
	}
	return s, nil
}
