package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
	"github.com/tenantflow/tenantflow/shared/tenantview"
)

// Listing bounds of GET /tenants.
const (
	defaultListLimit = 25
	maxListLimit     = 100
	maxNameRunes     = 200
	maxEmailBytes    = 254
)

// emailPattern is the shape of a tenant's e-mail address as openapi.yaml states it:
// dot-atom "@" dot-atom, where an atom character is anything but controls, space and
// RFC 5322's specials. net/mail also accepts an [IP] domain literal, which no billing
// address needs and a schema pattern cannot state; this refuses it.
var emailPattern = sync.OnceValue(func() *regexp.Regexp {
	const atext = `[^\x00-\x20\x7f"(),.:;<>@\[\\\]]`
	return regexp.MustCompile(`^` + atext + `+([.]` + atext + `+)*@` + atext + `+([.]` + atext + `+)*$`)
})

// createTenantRequest is the body of POST /tenants. Pointers tell a missing field from
// an empty one, so "required" is reported as such.
type createTenantRequest struct {
	ID    *string `json:"id"`
	Name  *string `json:"name"`
	Plan  *string `json:"plan"`
	Email *string `json:"email"`
}

// validate returns the tenant to create (id generated when absent).
func (h *Handler) validateCreate(in createTenantRequest) (*tenant.Tenant, error) {
	if in.Name == nil {
		return nil, &tenant.ValidationError{Field: "name", Reason: "required"}
	}
	if n := utf8.RuneCountInString(*in.Name); strings.TrimSpace(*in.Name) == "" || n > maxNameRunes {
		return nil, &tenant.ValidationError{Field: "name", Reason: fmt.Sprintf("must be 1-%d characters and not blank", maxNameRunes)}
	}
	if in.Plan == nil {
		return nil, &tenant.ValidationError{Field: "plan", Reason: "required; one of " + h.planNames()}
	}
	plan, err := h.catalog.Parse(*in.Plan)
	if err != nil {
		return nil, err
	}
	t := &tenant.Tenant{Name: *in.Name, Plan: plan, State: tenant.Provisioning}
	if in.ID != nil {
		if err := tenant.ValidateID(*in.ID); err != nil {
			return nil, err
		}
		t.ID = *in.ID
	} else {
		t.ID = newTenantID()
	}
	if in.Email != nil && *in.Email != "" {
		a, err := mail.ParseAddress(*in.Email)
		if err != nil || a.Address != *in.Email || len(*in.Email) > maxEmailBytes || !emailPattern().MatchString(*in.Email) {
			return nil, &tenant.ValidationError{Field: "email", Reason: "must be a plain e-mail address such as billing@example.com"}
		}
		t.Email = *in.Email
	}
	return t, nil
}

func (h *Handler) planNames() string {
	plans := h.catalog.Plans()
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// newTenantID returns "tenant_" and 16 random base32 characters (80 bits), which
// satisfies tenant.ValidateID.
func newTenantID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "tenant_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// createTenant creates the tenant in PROVISIONING, then writes its entitlements, creates
// its subscription and activates it. Each step after the first is idempotent, so when
// one fails the tenant stays PROVISIONING and the same request, repeated, resumes it.
func (h *Handler) createTenant(ctx context.Context, r *request) (response, error) {
	as, err := r.who.permit("", tenant.ActCreate)
	if err != nil {
		return response{}, err
	}
	var in createTenantRequest
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	want, err := h.validateCreate(in)
	if err != nil {
		return response{}, err
	}
	if _, err := tenant.Decide(tenant.Query{Action: tenant.ActCreate, Actor: as, Plan: want.Plan, Catalog: h.catalog}); err != nil {
		return response{}, err
	}
	r.tenantID = want.ID
	t, err := h.store.CreateTenant(ctx, want, r.who.actor("create"))
	var ce *tenant.ConflictError
	if errors.As(err, &ce) {
		if t, err = h.resumable(ctx, want); err != nil {
			return response{}, err
		}
	} else if err != nil {
		return response{}, err
	}
	active, err := h.finishCreate(ctx, r, t, in.ID == nil)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: h.tenantView(active), location: "/tenants/" + active.ID}, nil
}

// resumable returns the existing tenant when the request repeats the create of a tenant
// that is still PROVISIONING; anything else is a conflict.
func (h *Handler) resumable(ctx context.Context, want *tenant.Tenant) (*tenant.Tenant, error) {
	cur, err := h.store.GetTenant(ctx, want.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case cur.State != tenant.Provisioning:
		return nil, &tenant.ConflictError{TenantID: want.ID, Reason: "tenant already exists (state " + string(cur.State) + ")"}
	case cur.Name != want.Name || cur.Plan != want.Plan || cur.Email != want.Email:
		return nil, &tenant.ConflictError{TenantID: want.ID, Reason: "tenant is being created with a different name, plan or email"}
	}
	return cur, nil
}

func (h *Handler) finishCreate(ctx context.Context, r *request, t *tenant.Tenant, generatedID bool) (*tenant.Tenant, error) {
	retry := "repeat the same request to resume"
	if generatedID {
		retry = fmt.Sprintf("repeat the request with \"id\": %q to resume", t.ID)
	}
	unavailable := func(step string, err error) error {
		return &unavailableError{detail: fmt.Sprintf("tenant %s was created but %s did not finish; it stays PROVISIONING; %s", t.ID, step, retry), cause: err}
	}
	if err := h.prov.Initial(ctx, t.ID, t.Plan); err != nil {
		return nil, unavailable("provisioning", err)
	}
	billing := t.Billing
	if h.subs != nil && billing.SubscriptionID == "" {
		// The key is derived from the tenant id so that a resumed create reuses the
		// subscription of an attempt that failed after billing answered.
		cus, sub, periodEnd, err := h.subs.CreateSubscription(ctx, t.ID, t.Name, t.Email, t.Plan, "create:"+t.ID)
		if err != nil {
			return nil, unavailable("billing", err)
		}
		billing.CustomerID, billing.SubscriptionID = cus, sub
		if !periodEnd.IsZero() {
			end := periodEnd.UTC()
			billing.CurrentPeriodEnd = &end
		}
	}
	active, err := h.store.Transition(ctx, t.ID, tenant.Provisioning, tenant.Active, t.Version,
		func(x *tenant.Tenant) { x.Billing = billing }, r.who.actor("provisioned"))
	var ce *tenant.ConflictError
	switch {
	case errors.As(err, &ce):
		return nil, err // another request finished or changed it first
	case err != nil:
		return nil, unavailable("activation", err)
	}
	return active, nil
}

func (h *Handler) getTenant(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if err := r.who.requireTenant(r.tenantID); err != nil {
		return response{}, err
	}
	t, err := h.store.GetTenant(ctx, r.tenantID)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: h.tenantView(t)}, nil
}

// listCursor binds the store's opaque cursor to the state it lists, so a cursor reused
// with another state is refused as bad input instead of reaching DynamoDB.
type listCursor struct {
	State tenant.State `json:"s"`
	After string       `json:"a"`
}

func (h *Handler) encodeListCursor(state tenant.State, next string) string {
	b, _ := json.Marshal(listCursor{State: state, After: next})
	return h.cursors.sign(base64.RawURLEncoding.EncodeToString(b))
}

func (h *Handler) decodeListCursor(s string, state tenant.State) (string, error) {
	if s == "" {
		return "", nil
	}
	var c listCursor
	payload, ok := h.cursors.verify(s)
	if !ok {
		return "", &tenant.ValidationError{Field: "cursor", Reason: "not a cursor returned by this API"}
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.After == "" {
		return "", &tenant.ValidationError{Field: "cursor", Reason: "not a cursor returned by this API"}
	}
	if c.State != state {
		return "", &tenant.ValidationError{Field: "cursor", Reason: fmt.Sprintf("belongs to a listing of state %s, not %s", c.State, state)}
	}
	return c.After, nil
}

// listTenants lists the tenants of one state. state is required: a default would make
// a client that forgot it believe it saw every tenant.
func (h *Handler) listTenants(ctx context.Context, r *request) (response, error) {
	if err := r.who.requireAdmin("listing tenants"); err != nil {
		return response{}, err
	}
	q := r.ev.QueryStringParameters
	raw, ok := q["state"]
	if !ok || raw == "" {
		return response{}, &tenant.ValidationError{Field: "state", Reason: "required query parameter; one of " + joinStates(tenant.States)}
	}
	state, err := tenant.ParseState(raw)
	if err != nil {
		return response{}, err
	}
	limit := defaultListLimit
	if s, ok := q["limit"]; ok {
		outOfRange := &tenant.ValidationError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", maxListLimit)}
		n, err := strconv.Atoi(s)
		switch {
		case errors.Is(err, strconv.ErrRange):
			// An integer, only too large for int: the same 422 as 101.
			return response{}, outOfRange
		case err != nil:
			return response{}, badRequest("query parameter limit: expected an integer, got %q", s)
		case n < 1 || n > maxListLimit:
			return response{}, outOfRange
		}
		limit = n
	}
	after, err := h.decodeListCursor(q["cursor"], state)
	if err != nil {
		return response{}, err
	}
	page, err := h.store.ListByState(ctx, state, after, int32(limit))
	if err != nil {
		return response{}, err
	}
	out := ListResponse{Tenants: make([]TenantResponse, len(page.Tenants))}
	for i, t := range page.Tenants {
		out.Tenants[i] = h.tenantView(t)
	}
	if page.Next != "" {
		c := h.encodeListCursor(state, page.Next)
		out.NextCursor = &c
	}
	return response{status: http.StatusOK, body: out}, nil
}

func joinStates(states []tenant.State) string {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func (h *Handler) getAudit(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if err := r.who.requireTenant(r.tenantID); err != nil {
		return response{}, err
	}
	// Read the tenant first: an unknown tenant is a 404, not an empty trail.
	if _, err := h.store.GetTenant(ctx, r.tenantID); err != nil {
		return response{}, err
	}
	entries, err := h.store.Audit(ctx, r.tenantID)
	if err != nil {
		return response{}, err
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	if !r.who.admin {
		// A tenant's own token sees the tenant's view of each entry (the same its
		// export holds).
		for i := range entries {
			entries[i] = tenantview.Audit(entries[i])
		}
	}
	return response{status: http.StatusOK, body: AuditResponse{TenantID: r.tenantID, Entries: entries}}, nil
}
