// Package client is a Go client for tenantflow's HTTP API (openapi.yaml at the
// repository root), for operators' tools, CI scripts and the app plane's services.
//
// It is written by hand rather than generated: the API is small, and a generator would
// add a runtime dependency to every service that imports it. spec_test.go keeps it
// equal to openapi.yaml instead: every operation of the spec has a method here, each
// method sends the method, path, parameters and body the spec describes, and the Go
// types carry exactly the JSON fields of the spec's schemas.
//
// What the client does for its callers:
//   - every write (POST, PUT, DELETE) carries an Idempotency-Key, generated unless the
//     caller passes one (WithIdempotencyKey), and the client's own retries of a write
//     reuse it, so a retried request never starts a second flow;
//   - answers of 429 and 5xx, and network errors, are retried with capped exponential
//     backoff (Retry-After is honoured); every other error is returned at once;
//   - an error answer is a *Problem (errors.As), with the problem's type URN, status,
//     detail, limit violations and allowed states;
//   - WaitOperation and WaitExport poll until a flow ends, DownloadExport verifies the
//     export's SHA-256, and EntitlementsCache keeps a tenant's entitlements with ETag
//     revalidation for a service's hot path.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is where `make dev` serves the API.
const DefaultEndpoint = "http://127.0.0.1:3000"

// Client calls one tenantflow API. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	hc        *http.Client
	token     func(context.Context) (string, error)
	userAgent string
	retry     Retry
	poll      Poll
	newKey    func() string
}

// Retry bounds the client's own retries of 429, 5xx and network errors.
type Retry struct {
	// Attempts is the most tries of one request, the first included (1: no retry).
	Attempts int
	// Base is the first backoff; each retry doubles it, up to Max, with jitter.
	Base, Max time.Duration
}

// DefaultRetry tries a request up to 4 times over about 2 seconds.
var DefaultRetry = Retry{Attempts: 4, Base: 200 * time.Millisecond, Max: 5 * time.Second}

// Option configures a Client.
type Option func(*Client)

// WithToken sends a fixed bearer token.
func WithToken(token string) Option {
	return func(c *Client) {
		c.token = func(context.Context) (string, error) { return token, nil }
	}
}

// WithTokenSource asks f for the bearer token before every request, so a service can
// refresh its token without building a new client.
func WithTokenSource(f func(context.Context) (string, error)) Option {
	return func(c *Client) { c.token = f }
}

// WithHTTPClient sets the HTTP client (timeouts, transport); default: one with a 30 s
// timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetry replaces DefaultRetry.
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r } }

// WithPoll replaces DefaultPoll for WaitOperation and WaitExport.
func WithPoll(p Poll) Option { return func(c *Client) { c.poll = p } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the API at endpoint (e.g. https://api.example.com/prod; a
// stage prefix is kept).
func New(endpoint string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: endpoint %q: want http(s)://host[:port][/stage]", endpoint)
	}
	c := &Client{
		base:      u,
		hc:        &http.Client{Timeout: 30 * time.Second},
		userAgent: "tenantflow-go-client",
		retry:     DefaultRetry,
		poll:      DefaultPoll,
		newKey:    newIdempotencyKey,
	}
	for _, o := range opts {
		o(c)
	}
	if c.retry.Attempts < 1 {
		c.retry.Attempts = 1
	}
	return c, nil
}

// Endpoint is the API's base URL.
func (c *Client) Endpoint() string { return c.base.String() }

// WriteOption changes one write request.
type WriteOption func(*request)

// WithIdempotencyKey sends key instead of a generated one: repeating a call with the
// same key and body replays the first answer (also across processes, for 24 h).
func WithIdempotencyKey(key string) WriteOption { return func(r *request) { r.key = key } }

// newIdempotencyKey is 128 random bits: unique per logical request of this client.
func newIdempotencyKey() string {
	var b [16]byte
	crand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return "tfk-" + hex.EncodeToString(b[:])
}

// request is one API call before it is sent.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	body   any // JSON-encoded when not nil
	raw    []byte
	header http.Header
	// idempotent: the spec's operation takes an Idempotency-Key.
	idempotent bool
	key        string
	// accept lists the success statuses the caller handles (default: any 2xx).
	accept []int
}

// response is a successful answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r, retrying what may be retried, and returns the answer of a success
// status, or a *Problem for an error answer.
func (c *Client) do(ctx context.Context, r *request, opts ...WriteOption) (*response, error) {
	for _, o := range opts {
		o(r)
	}
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("client: encode %s %s: %w", r.method, r.path, err)
		}
	} else if r.raw != nil {
		body = r.raw
	}
	if r.idempotent && r.key == "" {
		// Generated once per logical call, before the first try, so every retry sends it.
		r.key = c.newKey()
	}
	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawPath = c.base.EscapedPath() + r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, r, u.String(), body)
		wait, retry := c.retryable(resp, err)
		if err == nil && !retry {
			return c.answer(r, resp)
		}
		if err != nil {
			lastErr = fmt.Errorf("%s %s: %w", r.method, r.path, err)
		} else {
			_, lastErr = c.answer(r, resp)
		}
		if !retry || attempt >= c.retry.Attempts || ctx.Err() != nil {
			return nil, lastErr
		}
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, r *request, target string, body []byte) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.key != "" {
		req.Header.Set("Idempotency-Key", r.key)
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// retryable says whether to try again, and how long the server asked to wait.
// Network errors, 429 and 5xx are retried; so is 409 idempotency-in-progress, which
// is this client's own earlier try still running on the server.
func (c *Client) retryable(resp *response, err error) (time.Duration, bool) {
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return 0, false
		}
		return 0, !strings.HasPrefix(err.Error(), "token:")
	}
	switch {
	case resp.status == http.StatusTooManyRequests, resp.status >= 500 && resp.status != http.StatusNotImplemented:
	case resp.status == http.StatusConflict && problemType(resp.body) == TypeIdempotencyInProgress:
	default:
		return 0, false
	}
	wait := time.Duration(0)
	if s, err := strconv.Atoi(resp.header.Get("Retry-After")); err == nil && s >= 0 {
		wait = min(time.Duration(s)*time.Second, c.retry.Max)
	}
	return wait, true
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.Base << (attempt - 1)
	if d > c.retry.Max || d <= 0 {
		d = c.retry.Max
	}
	// Full jitter on half of it: spreads clients that failed together.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// answer turns a final response into the success body or a *Problem.
func (c *Client) answer(r *request, resp *response) (*response, error) {
	ok := resp.status >= 200 && resp.status < 300
	if len(r.accept) > 0 {
		ok = false
		for _, s := range r.accept {
			ok = ok || s == resp.status
		}
	}
	if ok {
		return resp, nil
	}
	return nil, problemOf(r.method, r.path, resp)
}

// decode reads a JSON answer into v.
func decode[T any](resp *response, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(resp.body, v); err != nil {
		return nil, fmt.Errorf("client: decode %d answer: %w", resp.status, err)
	}
	if r, ok := any(v).(interface{ setRaw([]byte) }); ok {
		r.setRaw(resp.body)
	}
	return v, nil
}
