package apphook

import (
	"context"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Incomplete is what compensation_incomplete names when the app plane was asked to
// provision for an operation and did not confirm the undo.
const Incomplete = "app-provisioning"

// Reader reads requests (the store).
type Reader interface {
	GetProvisioning(ctx context.Context, tenantID, id string) (*Request, error)
}

// Unconfirmed reports whether the app plane was asked to provision for op and has not
// confirmed the undo of op's current attempt (it failed, timed out, or never ran), so
// the app plane may still hold what the apply made.
func Unconfirmed(ctx context.Context, r Reader, op *tenant.Operation) (bool, error) {
	_, err := r.GetProvisioning(ctx, op.TenantID, RequestID(op.ID, 0, ActionApply))
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	undo, err := r.GetProvisioning(ctx, op.TenantID, RequestID(op.ID, op.Attempt, ActionUndo))
	switch {
	case notFound(err):
		return true, nil
	case err != nil:
		return false, err
	}
	return undo.Status != StatusSucceeded, nil
}
