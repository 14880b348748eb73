package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Exports records and reports GDPR data exports; shared/export implements it. It may
// be nil in a Handler built without exports (the routes then answer 404).
type Exports interface {
	Request(ctx context.Context, tenantID, by string) (*export.View, bool, error)
	Get(ctx context.Context, tenantID, exportID string) (*export.View, error)
	List(ctx context.Context, tenantID string) ([]*export.View, error)
}

// requestExport serves POST /tenants/{id}/exports: the operator or the tenant's own
// token (also for SUSPENDED and DELETED-in-retention tenants). 202 with the new job, or
// with the one already queued or running; 409 export-refused once the tenant is
// purged, past purge_after, or held by a purge.
func (h *Handler) requestExport(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if err := r.who.requireTenant(r.tenantID); err != nil {
		return response{}, err
	}
	if h.exports == nil {
		return response{}, errNoExports
	}
	v, _, err := h.exports.Request(ctx, r.tenantID, r.who.actor("export").Who)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusAccepted, body: v, location: "/tenants/" + r.tenantID + "/exports/" + v.ExportID}, nil
}

// getExport serves GET /tenants/{id}/exports/{export_id}: status, progress, and for a
// completed export a download URL signed afresh on each call. A malformed export id is
// a 404 stating the rule before anything is read, an unknown one a 404; neither
// repeats the id.
func (h *Handler) getExport(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if err := r.who.requireTenant(r.tenantID); err != nil {
		return response{}, err
	}
	if h.exports == nil {
		return response{}, errNoExports
	}
	id := r.ev.PathParameters["export_id"]
	if !validExportID(id) {
		return response{}, &malformedIDError{kind: "export", rule: exportIDRule}
	}
	v, err := h.exports.Get(ctx, r.tenantID, id)
	var nf *tenant.NotFoundError
	if errors.As(err, &nf) {
		return response{}, &unknownIDError{kind: "export"}
	}
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: exportView(r.who, v)}, nil
}

// listExports serves GET /tenants/{id}/exports, newest first.
func (h *Handler) listExports(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if err := r.who.requireTenant(r.tenantID); err != nil {
		return response{}, err
	}
	if h.exports == nil {
		return response{}, errNoExports
	}
	vs, err := h.exports.List(ctx, r.tenantID)
	if err != nil {
		return response{}, err
	}
	for i, v := range vs {
		vs[i] = exportView(r.who, v)
	}
	return response{status: http.StatusOK, body: map[string]any{"exports": vs}}, nil
}

// exportView is what the caller may see of an export: a tenant's own token gets the
// error name of a failed export but not its cause, which holds internal details
// (function errors, resource names) meant for operators, as with operations.
func exportView(p principal, v *export.View) *export.View {
	if p.admin || v.Cause == "" {
		return v
	}
	c := *v
	c.Cause = ""
	return &c
}

var errNoExports = &authError{status: http.StatusNotFound, detail: "exports are not configured"}
