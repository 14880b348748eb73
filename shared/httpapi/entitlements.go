package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// EntitlementsScope is the scope of an app-plane service: a token with it may read
// any tenant's entitlements document (GET /tenants/{id}/entitlements) and nothing
// else. The services that enforce a tenant's plan on every request need that read
// without holding a token that could change a tenant.
const EntitlementsScope = "tenants/entitlements"

// EntitlementsMaxAge is the max-age, in seconds, of an entitlements document. A
// service that subscribes to TenantEntitlementsChanged learns of a change within one
// event delivery; max-age bounds how stale a service may be that missed an event or
// does not subscribe: a suspension or a downgrade is enforced everywhere within a
// minute. A revalidation after it is a conditional GET, usually a bodyless 304.
const EntitlementsMaxAge = 60

// MaxOverrideReason is the longest reason an override may give (it goes to the audit
// trail and the tenant view).
const MaxOverrideReason = 500

// EntitlementsStore is what the entitlement routes read and write: the tenant's
// entitlements item, and the guarded change of a tenant with its entitlements in one
// transaction (store.Store).
type EntitlementsStore interface {
	GetEntitlements(ctx context.Context, id string) (*tenant.Entitlements, error)
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	Change(ctx context.Context, id string, by store.Actor, decide store.Decide) (*tenant.Tenant, error)
}

var _ EntitlementsStore = (*store.Store)(nil)

// EntitlementsOutbox publishes the TenantEntitlementsChanged an override left
// pending on the entitlements item (provision.Provisioner).
type EntitlementsOutbox interface {
	PublishChange(ctx context.Context, tenantID string) error
}

// getEntitlements answers the tenant's entitlements document with a strong ETag over
// it and Cache-Control private (it is one tenant's, read with a token: no shared
// cache may keep it), max-age EntitlementsMaxAge. If-None-Match naming the current tag
// answers 304 without a body.
func (h *Handler) getEntitlements(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if err := r.who.requireEntitlements(r.tenantID); err != nil {
		return response{}, err
	}
	if h.ents == nil {
		return response{}, errNoEntitlements
	}
	var doc tenant.EntitlementsDocument
	e, err := h.ents.GetEntitlements(ctx, r.tenantID)
	var nf *tenant.NotFoundError
	switch {
	case errors.As(err, &nf):
		// A purge deletes the item; the tombstone says so. Any other tenant without
		// one is still being created: there is nothing to enforce yet.
		t, terr := h.ents.GetTenant(ctx, r.tenantID)
		if terr != nil {
			return response{}, terr
		}
		if t.State != tenant.Purged {
			return response{}, &tenant.NotFoundError{Kind: "entitlements", ID: r.tenantID}
		}
		doc = tenant.PurgedDocument(t)
	case err != nil:
		return response{}, err
	default:
		doc = tenant.BuildDocument(e, h.catalog)
	}
	etag := doc.ETag()
	headers := map[string]string{"ETag": etag, "Cache-Control": fmt.Sprintf("private, max-age=%d", EntitlementsMaxAge)}
	if matchesETag(r.header("if-none-match"), etag) {
		return response{status: http.StatusNotModified, headers: headers}, nil
	}
	return response{status: http.StatusOK, body: doc, headers: headers}, nil
}

// matchesETag applies If-None-Match: "*" or any listed tag equal to etag by the weak
// comparison RFC 9110 prescribes for it (a W/ prefix is ignored).
func matchesETag(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// overridesRequest is the body of PUT /tenants/{id}/overrides: the tenant's overrides
// as a whole. A limit or feature that is absent or null has no override.
type overridesRequest struct {
	Limits   map[string]json.RawMessage `json:"limits"`
	Features map[string]*bool           `json:"features"`
	Reason   *string                    `json:"reason"`
}

// putOverrides replaces a tenant's overrides (operators only, the policy's override
// rule) in one conditional transaction: the tenant, its audit line with who and why,
// and its entitlements item, whose TenantEntitlementsChanged is then published (the
// item is its outbox: repeating the request publishes one still pending). The answer
// is the tenant view.
func (h *Handler) putOverrides(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	actor, err := r.who.permit(r.tenantID, tenant.ActOverride)
	if err != nil {
		return response{}, err
	}
	if h.ents == nil {
		return response{}, errNoEntitlements
	}
	var in overridesRequest
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	want, err := h.overridesFrom(in)
	if err != nil {
		return response{}, err
	}
	by := r.who.actorAs(actor, *in.Reason)
	want.By, want.At = by.Who, h.now().UTC()
	t, err := h.ents.Change(ctx, r.tenantID, by, func(cur *tenant.Tenant) (store.Write, error) {
		if _, err := tenant.Decide(tenant.Query{Action: tenant.ActOverride, Actor: actor, Tenant: cur, Catalog: h.catalog, Now: h.now()}); err != nil {
			return store.Write{}, err
		}
		if cur.Overrides.Same(want) {
			return store.Write{}, store.ErrUnchanged
		}
		e, err := h.ents.GetEntitlements(ctx, cur.ID)
		if err != nil {
			return store.Write{}, err
		}
		next := *e
		next.Overrides, next.Revision, next.ChangePending = nil, e.Revision+1, true
		if !want.Empty() {
			next.Overrides = want
		}
		return store.Write{
			Mutate:       func(x *tenant.Tenant) { x.Overrides = next.Overrides },
			Reason:       "overrides: " + describeOverrides(want) + " (" + *in.Reason + ")",
			Entitlements: &next, EntitlementsVersion: e.Version,
		}, nil
	})
	if err != nil {
		return response{}, err
	}
	if h.outbox != nil {
		if err := h.outbox.PublishChange(ctx, r.tenantID); err != nil {
			return response{}, &unavailableError{detail: "the overrides are saved; announcing them failed, repeat the request to announce them", cause: err}
		}
	}
	return response{status: http.StatusOK, body: h.tenantView(t)}, nil
}

// overridesFrom checks the body: a reason is required, a limit is a number or
// "unlimited" (null: none), every name is the catalogue's.
func (h *Handler) overridesFrom(in overridesRequest) (*tenant.Overrides, error) {
	switch {
	case in.Reason == nil || strings.TrimSpace(*in.Reason) == "":
		return nil, &tenant.ValidationError{Field: "reason", Reason: "required: why the tenant gets these overrides (it goes to the audit trail)"}
	case utf8.RuneCountInString(*in.Reason) > MaxOverrideReason:
		return nil, &tenant.ValidationError{Field: "reason", Reason: fmt.Sprintf("at most %d characters", MaxOverrideReason)}
	}
	o := &tenant.Overrides{Reason: *in.Reason}
	for _, name := range slices.Sorted(maps.Keys(in.Limits)) {
		raw := in.Limits[name]
		if string(raw) == "null" {
			continue
		}
		v, err := tenant.ParseLimitOverride(raw)
		if err != nil {
			return nil, &tenant.ValidationError{Field: "limits." + name, Reason: err.Error()}
		}
		if o.Limits == nil {
			o.Limits = tenant.LimitOverrides{}
		}
		o.Limits[name] = v
	}
	for name, v := range in.Features {
		if v == nil {
			continue
		}
		if o.Features == nil {
			o.Features = map[string]bool{}
		}
		o.Features[name] = *v
	}
	if err := o.Validate(h.catalog); err != nil {
		return nil, err
	}
	return o, nil
}

// describeOverrides is the audit line's summary: "users=500, sso=true" or "none".
func describeOverrides(o *tenant.Overrides) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(o.Limits)) {
		v := fmt.Sprintf("%g", o.Limits[k])
		if o.Limits[k] == tenant.Unlimited {
			v = tenant.UnlimitedWord
		}
		parts = append(parts, k+"="+v)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Features)) {
		parts = append(parts, fmt.Sprintf("%s=%t", k, o.Features[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

var errNoEntitlements = &authError{status: http.StatusNotFound, detail: "entitlements are not configured"}

// header returns the request header name (API Gateway lowercases them; a test event
// may not).
func (r *request) header(name string) string {
	for k, v := range r.ev.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
