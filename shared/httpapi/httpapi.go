// Package httpapi is the HTTP boundary of the control plane: it routes API Gateway HTTP
// API (payload v2) requests by route key, reads the caller from the JWT claims the
// authorizer passed on, decodes and validates bodies strictly, calls the store and the
// flows, and maps every error to an application/problem+json response.
//
// It is the only place that knows about HTTP status codes. Handle never returns an
// error to the Lambda runtime: a runtime error would become a bare 500 from API Gateway
// with no body and no log line tying it to the request.
//
// Who may do what (auth.go):
//   - A token with AdminScope (tenants/admin) may do everything.
//   - A token with a tenant_id claim may read and change its own tenant, except usage.
//   - A token with UsageScope (tenants/usage), the metering service's, may report usage
//     for any tenant and nothing else. Tenant tokens may not report usage: a tenant
//     that reported zero would pass the usage check of a downgrade.
//
// Choices a client can see:
//   - Bodies that cannot be read as the route's JSON object (malformed, wrong JSON
//     type, unknown field, trailing data, empty) are 400; readable bodies that break a
//     rule (missing field, negative usage, unknown plan) are 422; over MaxBodyBytes is 413.
//   - Every number that is stored is bounded, because DynamoDB refuses numbers beyond
//     1e-130..1e+125 or 38 digits (a 500 otherwise): usage figures are in the ranges
//     documented on tenant.Usage (users and api_calls_per_month integers 0..1e15,
//     storage_gb 0 or 1e-6..1e9), and a figure outside them is a 422 naming the field,
//     also when it is an integer too long for int64 or a number beyond float64. Integer
//     figures are plain digits: 2.5 or 1e3 is a 400 (expected an integer).
//   - Path ids are checked before any read (ids.go): a tenant id is 3-64 characters of
//     a-z, 0-9, '_' or '-' starting with a letter or digit (tenant.ValidateID); an
//     operation id is "op_" and 1-77 characters of a-z, 0-9 or '_' (at most 80, the
//     limit of a Step Functions execution name; flow.NewOperationID makes them).
//     A malformed id is a 404 like a missing resource: it comes after the 401 of a
//     request without a token, and on /tenants/{id} before the 403 of a token of
//     another tenant, so the answer depends on the id's shape only.
//   - GET /tenants requires ?state=: a default would let a client that forgot it believe
//     it saw every tenant. limit is 1..100 (default 25); next_cursor is null on the last
//     page and only valid with the same state.
//   - at_period_end of a downgrade is optional and defaults to false.
//   - In a tenant's limits, null means unlimited.
//   - POST /tenants with an id that exists answers 409, except when the tenant is still
//     PROVISIONING and the body is the same: then the create resumes where a previous
//     attempt failed (503) and answers 201.
//   - Another tenant's operation is a 404, like a missing one, so ids cannot be probed.
//   - Every POST, PUT and DELETE honours Idempotency-Key (idempotency.go): the first
//     answer is replayed for 24 h, another request with the key is a 422, a request
//     still running with it a 409. List cursors are HMAC-signed (cursor.go).
//   - GET /operations/{id} shows admins the whole record and a tenant token the public
//     OperationResponse: no requested_by, no raw cause, only the error name and a fixed
//     message.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Config holds the dependencies of a Handler. Subscriptions may be nil (billing
// disabled); Now may be nil (time.Now); everything else is required.
type Config struct {
	Store         TenantStore
	Provisioner   Provisioner
	PlanChanges   PlanChanges
	Lifecycle     Lifecycle
	Operations    Operations
	Subscriptions Subscriptions
	// Exports may be nil (the export routes then answer 404).
	Exports Exports
	Catalog *tenant.Catalog
	Logger  *slog.Logger
	Now     func() time.Time
	// Idempotency keeps Idempotency-Key claims and answers (idempotency.go); nil
	// ignores the header.
	Idempotency IdempotencyStore
	// CursorKey signs list cursors (cursor.go); empty means a random key per cold
	// start, so a cursor then only works within one container.
	CursorKey []byte
	// Console serves the operator console's static files (console.go); nil answers
	// its routes 404.
	Console Console
	// Index lists operations and counts for GET /operations and GET /stats; nil
	// means Store, when it has them (*store.Store does), else those routes answer 404.
	Index OperationIndex
	// Steps reads execution histories for GET /operations/{id}/steps; nil: 404.
	Steps StepReader
}

// Handler serves the HTTP API. It is safe for concurrent use and built once per cold
// start.
type Handler struct {
	store   TenantStore
	prov    Provisioner
	plans   PlanChanges
	life    Lifecycle
	ops     Operations
	subs    Subscriptions
	exports Exports
	catalog *tenant.Catalog
	log     *slog.Logger
	now     func() time.Time
	idem    IdempotencyStore
	cursors cursorSigner
	console Console
	index   OperationIndex
	steps   StepReader
}

// New checks cfg and returns a Handler. A missing dependency is an error here, at cold
// start, rather than a nil dereference on the first request.
func New(cfg Config) (*Handler, error) {
	var missing []string
	if cfg.Store == nil {
		missing = append(missing, "Store")
	}
	if cfg.Provisioner == nil {
		missing = append(missing, "Provisioner")
	}
	if cfg.PlanChanges == nil {
		missing = append(missing, "PlanChanges")
	}
	if cfg.Operations == nil {
		missing = append(missing, "Operations")
	}
	if cfg.Lifecycle == nil {
		missing = append(missing, "Lifecycle")
	}
	if cfg.Catalog == nil {
		missing = append(missing, "Catalog")
	}
	if cfg.Logger == nil {
		missing = append(missing, "Logger")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("httpapi: missing %s", strings.Join(missing, ", "))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	index := cfg.Index
	if ix, ok := cfg.Store.(OperationIndex); ok && index == nil {
		index = ix
	}
	return &Handler{store: cfg.Store, prov: cfg.Provisioner, plans: cfg.PlanChanges, life: cfg.Lifecycle, ops: cfg.Operations, subs: cfg.Subscriptions, exports: cfg.Exports,
		catalog: cfg.Catalog, log: cfg.Logger, now: now, idem: cfg.Idempotency, cursors: newCursorSigner(cfg.CursorKey),
		index: index, steps: cfg.Steps, console: cfg.Console}, nil
}

// request is one call in flight: the event, the caller, and what the log line needs.
type request struct {
	ev          *events.APIGatewayV2HTTPRequest
	who         principal
	tenantID    string
	operationID string
}

// pathID returns the {id} path parameter.
func (r *request) pathID() string { return r.ev.PathParameters["id"] }

// response is what a route returns on success.
type response struct {
	status   int
	body     any
	location string // path below the API base, e.g. /tenants/x
}

type route func(h *Handler, ctx context.Context, r *request) (response, error)

// routes is keyed by API Gateway route keys: exactly the HttpApi events of ApiFunction in
// template.yaml (a test compares the two).
var routes = map[string]route{
	"POST /tenants":                (*Handler).createTenant,
	"GET /tenants":                 (*Handler).listTenants,
	"GET /tenants/{id}":            (*Handler).getTenant,
	"PUT /tenants/{id}/usage":      (*Handler).putUsage,
	"GET /tenants/{id}/audit":      (*Handler).getAudit,
	"POST /tenants/{id}/upgrade":   (*Handler).upgrade,
	"POST /tenants/{id}/downgrade": (*Handler).downgrade,
	"GET /operations/{id}":         (*Handler).getOperation,
	"POST /operations/{id}/retry":  (*Handler).retryOperation,

	// The operator's read routes (opsviews.go).
	"GET /operations":            (*Handler).listOperations,
	"GET /operations/{id}/steps": (*Handler).getOperationSteps,
	"GET /stats":                 (*Handler).getStats,

	// The purge's certificate (certificates.go).
	"GET /tenants/{id}/deletion-certificate": (*Handler).getDeletionCertificate,
	"DELETE /tenants/{id}":                   (*Handler).deleteTenant,
	"POST /tenants/{id}/suspend":             (*Handler).suspendTenant,
	"POST /tenants/{id}/reactivate":          (*Handler).reactivateTenant,

	// GDPR data exports (exports.go).
	"POST /tenants/{id}/exports":            (*Handler).requestExport,
	"GET /tenants/{id}/exports":             (*Handler).listExports,
	"GET /tenants/{id}/exports/{export_id}": (*Handler).getExport,
}

// RouteKeys returns the route keys the handler serves, sorted.
func RouteKeys() []string {
	keys := make([]string, 0, len(routes)+len(consoleRoutes))
	for k := range routes {
		keys = append(keys, k)
	}
	keys = append(keys, consoleRoutes...)
	slices.Sort(keys)
	return keys
}

// Handle serves one request. It always returns a response and a nil error: failures
// become problem responses, a panic becomes a 500, and each request is logged once.
func (h *Handler) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := h.now()
	r := &request{ev: &ev, who: principalFrom(&ev)}
	var resp events.APIGatewayV2HTTPResponse
	var cause error
	if slices.Contains(consoleRoutes, ev.RouteKey) {
		resp, cause = h.serveConsole(r)
	} else {
		resp, cause = h.serve(ctx, r)
	}
	attrs := []any{
		"route", ev.RouteKey, "status", resp.StatusCode, "latency_ms", float64(h.now().Sub(start).Microseconds()) / 1000,
		"request_id", ev.RequestContext.RequestID,
	}
	if r.tenantID != "" {
		attrs = append(attrs, "tenant_id", r.tenantID)
	}
	if r.operationID != "" {
		attrs = append(attrs, "operation_id", r.operationID)
	}
	if r.who.sub != "" {
		attrs = append(attrs, "sub", r.who.sub)
	}
	level := slog.LevelInfo
	if cause != nil {
		attrs = append(attrs, "error", cause.Error())
		if resp.StatusCode >= 500 {
			level = slog.LevelError
		}
	}
	h.log.Log(ctx, level, "request", attrs...)
	return resp, nil
}

// serve runs the route and turns its result into a response. It returns the error to
// log, if any.
func (h *Handler) serve(ctx context.Context, r *request) (resp events.APIGatewayV2HTTPResponse, cause error) {
	defer func() {
		if p := recover(); p != nil {
			cause = fmt.Errorf("panic: %v", p)
			h.log.ErrorContext(ctx, "panic in route", "route", r.ev.RouteKey, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp = h.problemResponse(r, internalProblem())
		}
	}()
	rt, ok := routes[r.ev.RouteKey]
	if !ok {
		p := newProblem(http.StatusNotFound, "no-route", fmt.Sprintf("no route for %s %s", r.ev.RequestContext.HTTP.Method, r.ev.RawPath))
		return h.problemResponse(r, p), errors.New(p.Detail)
	}
	return h.idempotent(ctx, r, func() (events.APIGatewayV2HTTPResponse, error) {
		res, err := rt(h, ctx, r)
		if err != nil {
			p := toProblem(err)
			return h.problemResponse(r, p), err
		}
		return h.jsonResponse(r, res)
	})
}

// basePath is the stage prefix of rawPath ("/dev" when the API is called on a named
// stage), so that Location headers resolve against the URL the client used.
func basePath(ev *events.APIGatewayV2HTTPRequest) string {
	st := ev.RequestContext.Stage
	if st == "" || st == "$default" || !strings.HasPrefix(ev.RawPath, "/"+st+"/") {
		return ""
	}
	return "/" + st
}

func (h *Handler) jsonResponse(r *request, res response) (events.APIGatewayV2HTTPResponse, error) {
	body, err := json.Marshal(res.body)
	if err != nil {
		// Only a programming error gets here (all bodies are plain structs).
		return h.problemResponse(r, internalProblem()), fmt.Errorf("marshal response: %w", err)
	}
	headers := map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}
	if res.location != "" {
		headers["Location"] = basePath(r.ev) + res.location
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: res.status, Headers: headers, Body: string(body)}, nil
}

func (h *Handler) problemResponse(r *request, p Problem) events.APIGatewayV2HTTPResponse {
	p.Instance = r.ev.RawPath
	p.RequestID = r.ev.RequestContext.RequestID
	body, _ := json.Marshal(p)
	headers := map[string]string{"Content-Type": ContentTypeProblem, "Cache-Control": "no-store"}
	switch p.Status {
	case http.StatusUnauthorized:
		headers["WWW-Authenticate"] = "Bearer"
	case http.StatusServiceUnavailable:
		headers["Retry-After"] = "1"
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: p.Status, Headers: headers, Body: string(body)}
}
