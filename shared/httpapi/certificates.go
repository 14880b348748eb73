package httpapi

import (
	"context"
	"net/http"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// getDeletionCertificate serves GET /tenants/{id}/deletion-certificate: the certificate
// a purge left on the PURGED tombstone (per source how many items were deleted and
// when the source was verified empty, when the last backup expires, and the SHA-256 of
// its canonical JSON). Only operators may read it, because it states what a customer
// had; until the tenant is purged there is none, which is a 404 like a missing tenant.
func (h *Handler) getDeletionCertificate(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if err := r.who.requireAdmin("reading a deletion certificate"); err != nil {
		return response{}, err
	}
	t, err := h.store.GetTenant(ctx, r.tenantID)
	if err != nil {
		return response{}, err
	}
	if t.State != tenant.Purged || t.Certificate == nil {
		return response{}, &tenant.NotFoundError{Kind: "deletion certificate of tenant", ID: r.tenantID + " (it has none until it is purged)"}
	}
	return response{status: http.StatusOK, body: t.Certificate}, nil
}
