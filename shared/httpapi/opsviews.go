package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The operator's read routes (the console's overview, queue and operation views):
//
//   - GET /operations lists operations by tenant (?tenant_id=, any status) or, for
//     admins, across tenants by status (running, needs_attention, scheduled), each
//     from an index (store/opsindex.go), never a Scan. One of the two is required: a
//     default would make a client believe it saw every operation. A tenant's own
//     token lists only its own tenant and must name it. limit is 1..100 (default
//     25); next_cursor is HMAC-signed (cursor.go) and only valid for the same
//     tenant_id and status. A filtered page may hold fewer than limit operations
//     while next_cursor is not null.
//   - GET /operations/{id}/steps folds the operation's Step Functions execution
//     histories into steps (flow.StepReader), with the visibility of
//     GET /operations/{id}; a tenant's own token sees no raw causes.
//   - GET /stats (admins) counts tenants per state and operations per list, and
//     names the next period-end plan changes and purges due.

// OperationIndex lists operations and counts what the overview shows; *store.Store
// implements it.
type OperationIndex interface {
	TenantOperationsPage(ctx context.Context, tenantID string, f store.OpFilter, cursor string, limit int32) (store.OpsPage, error)
	OpenOperationsPage(ctx context.Context, kind, cursor string, limit int32) (store.OpsPage, error)
	ScheduledOperationsPage(ctx context.Context, cursor string, limit int32) (store.OpsPage, error)
	CountByState(ctx context.Context, state tenant.State) (int64, error)
	CountOpen(ctx context.Context, kind string) (int64, error)
	CountDue(ctx context.Context, kind string) (int64, error)
	NextDue(ctx context.Context, kind string, limit int32) ([]*tenant.Tenant, error)
}

var _ OperationIndex = (*store.Store)(nil)

// StepReader reports an operation's steps from its execution histories;
// flow.StepReader implements it.
type StepReader interface {
	Steps(ctx context.Context, op *tenant.Operation) (*flow.Steps, error)
}

// Operation list filters of GET /operations.
const (
	opsRunning        = "running"
	opsNeedsAttention = "needs_attention"
	opsScheduled      = "scheduled"
	opsSucceeded      = "succeeded"
	opsFailed         = "failed"
)

// crossTenantStatuses are the statuses an admin may list without tenant_id: each is
// an index of its own.
var crossTenantStatuses = []string{opsRunning, opsNeedsAttention, opsScheduled}

// tenantStatuses are the statuses a tenant's listing may filter on.
var tenantStatuses = []string{opsRunning, opsNeedsAttention, opsScheduled, opsSucceeded, opsFailed}

// maxUpcoming bounds the upcoming list of GET /stats.
const maxUpcoming = 20

// OperationsResponse is one page of GET /operations: each operation as
// GET /operations/{id} shows it to the caller. NextCursor is null on the last page.
type OperationsResponse struct {
	Operations []any   `json:"operations"`
	NextCursor *string `json:"next_cursor"`
}

// StatsResponse is GET /stats.
type StatsResponse struct {
	// TenantsByState has every lifecycle state, 0 included.
	TenantsByState map[tenant.State]int64 `json:"tenants_by_state"`
	Operations     OperationCounts        `json:"operations"`
	// Upcoming are the next period-end plan changes and purges, soonest first,
	// overdue ones (not yet handled by their sweep) included; at most 20.
	Upcoming []Upcoming `json:"upcoming"`
	AsOf     time.Time  `json:"as_of"`
}

// OperationCounts are the sizes of the cross-tenant operation lists.
type OperationCounts struct {
	Running        int64 `json:"running"`
	NeedsAttention int64 `json:"needs_attention"`
	Scheduled      int64 `json:"scheduled"`
}

// Upcoming is one thing due: a plan change at the period end (with its operation and
// target plan) or the purge of a deleted tenant when its retention ends.
type Upcoming struct {
	Kind        string       `json:"kind"`
	TenantID    string       `json:"tenant_id"`
	DueAt       time.Time    `json:"due_at"`
	OperationID string       `json:"operation_id,omitempty"`
	ToPlan      *tenant.Plan `json:"to_plan,omitempty"`
}

// Upcoming kinds.
const (
	upcomingPlanChange = "plan_change"
	upcomingPurge      = "purge"
)

// queryLimit reads ?limit= (1..maxListLimit, default defaultListLimit).
func queryLimit(q map[string]string) (int32, error) {
	s, ok := q["limit"]
	if !ok {
		return defaultListLimit, nil
	}
	outOfRange := &tenant.ValidationError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", maxListLimit)}
	n, err := strconv.Atoi(s)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, outOfRange
	case err != nil:
		return 0, badRequest("query parameter limit: expected an integer, got %q", s)
	case n < 1 || n > maxListLimit:
		return 0, outOfRange
	}
	return int32(n), nil
}

// opsCursor binds the store's cursor to the listing (tenant and status) it belongs to.
type opsCursor struct {
	Listing string `json:"l"`
	After   string `json:"a"`
}

func (h *Handler) encodeOpsCursor(listing, next string) string {
	b, _ := json.Marshal(opsCursor{Listing: listing, After: next})
	return h.cursors.sign(base64.RawURLEncoding.EncodeToString(b))
}

func (h *Handler) decodeOpsCursor(s, listing string) (string, error) {
	if s == "" {
		return "", nil
	}
	bad := &tenant.ValidationError{Field: "cursor", Reason: "not a cursor returned by this API"}
	payload, ok := h.cursors.verify(s)
	if !ok {
		return "", bad
	}
	var c opsCursor
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.After == "" {
		return "", bad
	}
	if c.Listing != listing {
		return "", &tenant.ValidationError{Field: "cursor", Reason: "belongs to another listing (other tenant_id or status)"}
	}
	return c.After, nil
}

// listOperations serves GET /operations.
func (h *Handler) listOperations(ctx context.Context, r *request) (response, error) {
	if !r.who.authenticated {
		return response{}, errUnauthenticated
	}
	if h.index == nil {
		return response{}, &unknownIDError{kind: "operation listing"}
	}
	q := r.ev.QueryStringParameters
	tenantID, status := q["tenant_id"], q["status"]
	if tenantID != "" {
		if tenant.ValidateID(tenantID) != nil {
			return response{}, &tenant.ValidationError{Field: "tenant_id", Reason: tenantIDRule}
		}
		r.tenantID = tenantID
	}
	if !r.who.admin {
		if tenantID == "" {
			return response{}, &authError{status: http.StatusForbidden,
				detail: "listing operations across tenants requires the " + AdminScope + " scope; a tenant's token lists its own with tenant_id"}
		}
		if err := r.who.requireTenant(tenantID); err != nil {
			return response{}, err
		}
	}
	switch {
	case tenantID == "" && status == "":
		return response{}, &tenant.ValidationError{Field: "status", Reason: "required without tenant_id; one of " + strings.Join(crossTenantStatuses, ", ")}
	case tenantID == "" && !slices.Contains(crossTenantStatuses, status):
		return response{}, &tenant.ValidationError{Field: "status", Reason: "without tenant_id, one of " + strings.Join(crossTenantStatuses, ", ")}
	case status != "" && !slices.Contains(tenantStatuses, status):
		return response{}, &tenant.ValidationError{Field: "status", Reason: "one of " + strings.Join(tenantStatuses, ", ")}
	}
	limit, err := queryLimit(q)
	if err != nil {
		return response{}, err
	}
	listing := tenantID + "|" + status
	after, err := h.decodeOpsCursor(q["cursor"], listing)
	if err != nil {
		return response{}, err
	}
	var page store.OpsPage
	if tenantID != "" {
		// An unknown tenant is a 404, not an empty list.
		if _, err := h.store.GetTenant(ctx, tenantID); err != nil {
			return response{}, err
		}
		page, err = h.index.TenantOperationsPage(ctx, tenantID, opFilter(status), after, limit)
	} else {
		switch status {
		case opsRunning:
			page, err = h.index.OpenOperationsPage(ctx, store.OpenOperation, after, limit)
		case opsNeedsAttention:
			page, err = h.index.OpenOperationsPage(ctx, store.OpenAttention, after, limit)
		case opsScheduled:
			page, err = h.index.ScheduledOperationsPage(ctx, after, limit)
		}
	}
	if err != nil {
		return response{}, err
	}
	out := OperationsResponse{Operations: make([]any, len(page.Operations))}
	for i, op := range page.Operations {
		if r.who.admin {
			out.Operations[i] = op
		} else {
			out.Operations[i] = operationView(op)
		}
	}
	if page.Next != "" {
		c := h.encodeOpsCursor(listing, page.Next)
		out.NextCursor = &c
	}
	return response{status: http.StatusOK, body: out}, nil
}

func opFilter(status string) store.OpFilter {
	switch status {
	case opsRunning:
		return store.OpFilter{Status: tenant.OpRunning}
	case opsScheduled:
		return store.OpFilter{Status: tenant.OpScheduled}
	case opsSucceeded:
		return store.OpFilter{Status: tenant.OpSucceeded}
	case opsFailed:
		return store.OpFilter{Status: tenant.OpFailed}
	case opsNeedsAttention:
		return store.OpFilter{NeedsAttention: true}
	}
	return store.OpFilter{}
}

// visibleOperation reads the {id} operation for a caller who may see it: an admin,
// or a token of the operation's tenant. Another tenant's operation is a 404 like a
// missing one.
func (h *Handler) visibleOperation(ctx context.Context, r *request) (*tenant.Operation, error) {
	if !r.who.authenticated {
		return nil, errUnauthenticated
	}
	if !r.who.admin && r.who.tenantID == "" {
		return nil, &authError{status: http.StatusForbidden, detail: "reading operations requires the " + AdminScope + " scope or a " + TenantClaim + " claim"}
	}
	id := r.pathID()
	if !validOperationID(id) {
		return nil, &malformedIDError{kind: "operation", rule: operationIDRule}
	}
	r.operationID = id
	op, err := h.ops.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !r.who.canActOn(op.TenantID) {
		return nil, &tenant.NotFoundError{Kind: "operation", ID: id}
	}
	r.tenantID = op.TenantID
	return op, nil
}

// getOperationSteps serves GET /operations/{id}/steps.
func (h *Handler) getOperationSteps(ctx context.Context, r *request) (response, error) {
	op, err := h.visibleOperation(ctx, r)
	if err != nil {
		return response{}, err
	}
	if h.steps == nil {
		return response{}, &unknownIDError{kind: "execution history"}
	}
	rep, err := h.steps.Steps(ctx, op)
	if err != nil {
		return response{}, &unavailableError{detail: "the execution history of operation " + op.ID + " could not be read; try again", cause: err}
	}
	if !r.who.admin {
		// A tenant's own token sees what failed, not the raw causes (as on
		// GET /operations/{id}).
		for i := range rep.Steps {
			rep.Steps[i].Cause = nil
		}
	}
	return response{status: http.StatusOK, body: rep}, nil
}

// getStats serves GET /stats (admins).
func (h *Handler) getStats(ctx context.Context, r *request) (response, error) {
	if err := r.who.requireAdmin("reading the statistics"); err != nil {
		return response{}, err
	}
	if h.index == nil {
		return response{}, &unknownIDError{kind: "statistics"}
	}
	out := StatsResponse{TenantsByState: map[tenant.State]int64{}, Upcoming: []Upcoming{}, AsOf: h.now().UTC()}
	for _, s := range tenant.States {
		n, err := h.index.CountByState(ctx, s)
		if err != nil {
			return response{}, err
		}
		out.TenantsByState[s] = n
	}
	var err error
	if out.Operations.Running, err = h.index.CountOpen(ctx, store.OpenOperation); err != nil {
		return response{}, err
	}
	if out.Operations.NeedsAttention, err = h.index.CountOpen(ctx, store.OpenAttention); err != nil {
		return response{}, err
	}
	if out.Operations.Scheduled, err = h.index.CountDue(ctx, store.DueChange); err != nil {
		return response{}, err
	}
	changes, err := h.index.NextDue(ctx, store.DueChange, maxUpcoming)
	if err != nil {
		return response{}, err
	}
	for _, t := range changes {
		if pc := t.PendingChange; pc != nil {
			plan := pc.Plan
			out.Upcoming = append(out.Upcoming, Upcoming{Kind: upcomingPlanChange, TenantID: t.ID, DueAt: pc.EffectiveAt, OperationID: pc.OperationID, ToPlan: &plan})
		}
	}
	purges, err := h.index.NextDue(ctx, store.DuePurge, maxUpcoming)
	if err != nil {
		return response{}, err
	}
	for _, t := range purges {
		if t.PurgeAfter != nil {
			out.Upcoming = append(out.Upcoming, Upcoming{Kind: upcomingPurge, TenantID: t.ID, DueAt: *t.PurgeAfter})
		}
	}
	slices.SortStableFunc(out.Upcoming, func(a, b Upcoming) int { return a.DueAt.Compare(b.DueAt) })
	if len(out.Upcoming) > maxUpcoming {
		out.Upcoming = out.Upcoming[:maxUpcoming]
	}
	return response{status: http.StatusOK, body: out}, nil
}
