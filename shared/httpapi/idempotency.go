package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/store"
)

// Idempotency-Key (docs/api.md, "Idempotency"): every POST, PUT and DELETE accepts the
// header. The first request with a key claims it (a conditional put in TenantsTable),
// runs, and its answer (status, body, Content-Type and Location) is kept for
// IdempotencyTTL:
//   - the same key with the same method, path, query and body replays that answer, with
//     Idempotent-Replayed: true;
//   - the same key with another request is a 422 (idempotency-key-reused);
//   - the same key while the first request is still running is a 409
//     (idempotency-in-progress) with Retry-After; a claim whose request crashed is
//     taken over by the same request after IdempotencyLease.
//
// Keys are scoped to the caller (JWT sub and tenant_id claim): two callers never see
// each other's answers. Answers of 500 and above are not kept (the claim is released),
// so a retry after a 503 runs again. Requests without a token are not recorded (they
// are a 401 anyway). A key must be 1-255 printable ASCII characters, else 400.

// IdempotencyHeader is the request header that names an idempotency key.
const IdempotencyHeader = "Idempotency-Key"

// Idempotency timings.
const (
	// IdempotencyTTL is how long a key and its answer are kept (DynamoDB TTL on
	// expires_at).
	IdempotencyTTL = 24 * time.Hour
	// IdempotencyLease is how long a claim without an answer blocks the key; it is
	// longer than the function's 30 s timeout, so only a crashed attempt's claim ends.
	IdempotencyLease  = 60 * time.Second
	maxIdempotencyKey = 255
)

// IdempotencyStore keeps idempotency claims and answers; *store.Store implements it.
type IdempotencyStore interface {
	ClaimIdempotency(ctx context.Context, key, hash string, lease, ttl time.Duration) (bool, *store.IdempotencyRecord, error)
	CompleteIdempotency(ctx context.Context, rec *store.IdempotencyRecord, status int, headers map[string]string, body string) error
	ReleaseIdempotency(ctx context.Context, rec *store.IdempotencyRecord) error
}

var _ IdempotencyStore = (*store.Store)(nil)

// replayedHeaders are the response headers an answer keeps.
var replayedHeaders = []string{"Content-Type", "Location", "Retry-After", "WWW-Authenticate"}

// idempotencyKey returns the request's Idempotency-Key (case-insensitive header name,
// as API Gateway lower-cases them) and whether it has one.
func idempotencyKey(ev *events.APIGatewayV2HTTPRequest) (string, bool) {
	for k, v := range ev.Headers {
		if strings.EqualFold(k, IdempotencyHeader) {
			return v, true
		}
	}
	return "", false
}

func validIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > maxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// writes are the methods whose requests honour Idempotency-Key.
func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodDelete
}

// requestHash fingerprints what the key protects: method, path, query and body (the
// decoded bytes when API Gateway base64-encoded it).
func requestHash(ev *events.APIGatewayV2HTTPRequest) string {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(ev.Body); err == nil {
			body = b
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", routeMethod(ev), ev.RawPath, ev.RawQueryString)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func routeMethod(ev *events.APIGatewayV2HTTPRequest) string {
	if m, _, ok := strings.Cut(ev.RouteKey, " "); ok {
		return m
	}
	return ev.RequestContext.HTTP.Method
}

// scopedKey binds a key to its caller; hashed, so the item key is bounded and no claim
// can forge another caller's prefix.
func scopedKey(p principal, key string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s\x00%d:%s\x00%s", len(p.sub), p.sub, len(p.tenantID), p.tenantID, key)
	return hex.EncodeToString(h.Sum(nil))
}

// idempotent runs next once per key: it claims the key, runs the route, keeps its
// answer and replays it to repeats. It is a no-op without a store, on reads, without a
// token and without the header.
func (h *Handler) idempotent(ctx context.Context, r *request, next func() (events.APIGatewayV2HTTPResponse, error)) (events.APIGatewayV2HTTPResponse, error) {
	key, ok := idempotencyKey(r.ev)
	if h.idem == nil || !ok || !isWrite(routeMethod(r.ev)) || !r.who.authenticated {
		return next()
	}
	if !validIdempotencyKey(key) {
		p := newProblem(http.StatusBadRequest, "malformed-idempotency-key", "header "+IdempotencyHeader+" must be 1-255 printable ASCII characters")
		return h.problemResponse(r, p), errors.New(p.Detail)
	}
	hash := requestHash(r.ev)
	claimed, rec, err := h.idem.ClaimIdempotency(ctx, scopedKey(r.who, key), hash, IdempotencyLease, IdempotencyTTL)
	if err != nil {
		p := newProblem(http.StatusServiceUnavailable, "dependency-unavailable", "the idempotency record could not be read; it is safe to retry")
		return h.problemResponse(r, p), err
	}
	if !claimed {
		switch {
		case rec.RequestHash != hash:
			p := newProblem(http.StatusUnprocessableEntity, "idempotency-key-reused",
				"this "+IdempotencyHeader+" was already used for a different request (method, path or body); use a new key")
			return h.problemResponse(r, p), errors.New(p.Detail)
		case rec.Status != store.IdempotencyDone:
			p := newProblem(http.StatusConflict, "idempotency-in-progress", "a request with this "+IdempotencyHeader+" is still in progress; retry later")
			return h.problemResponse(r, p), errors.New(p.Detail)
		}
		headers := map[string]string{"Cache-Control": "no-store", "Idempotent-Replayed": "true"}
		for k, v := range rec.ResponseHeaders {
			headers[k] = v
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: rec.ResponseStatus, Headers: headers, Body: rec.ResponseBody}, nil
	}
	defer func() {
		if p := recover(); p != nil {
			// serve turns the panic into a 500; that answer is not kept either.
			_ = h.idem.ReleaseIdempotency(ctx, rec)
			panic(p)
		}
	}()
	resp, cause := next()
	if resp.StatusCode >= 500 {
		// Not kept: the client is told to retry, and the retry must run again.
		if err := h.idem.ReleaseIdempotency(ctx, rec); err != nil {
			h.log.WarnContext(ctx, "release idempotency key", "error", err.Error())
		}
		return resp, cause
	}
	kept := map[string]string{}
	for _, k := range replayedHeaders {
		if v, ok := resp.Headers[k]; ok {
			kept[k] = v
		}
	}
	// The answer kept holds the tenant's data: the record names the tenant the route
	// resolved, so a purge finds it (store.ByTenantIndex).
	rec.TenantRef = r.tenantID
	if err := h.idem.CompleteIdempotency(ctx, rec, resp.StatusCode, kept, resp.Body); err != nil {
		// The route ran; its answer stands. A repeat finds the claim in progress until
		// the lease ends, then runs again (the routes refuse what was already done).
		h.log.WarnContext(ctx, "store idempotent answer", "error", err.Error())
	}
	return resp, cause
}
