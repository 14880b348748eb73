package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// stripeMockStartTimeout bounds stripe-mock's start; it needs about 1.4 s on a
// 2-core machine to load its OpenAPI spec, more under a loaded CI.
const stripeMockStartTimeout = 30 * time.Second

// StripeMock is a running stripe-mock. It validates requests against Stripe's OpenAPI
// spec and answers with fixtures, keeping no state, so one process can serve any
// number of tests and proxies at once.
type StripeMock struct {
	// URL is stripe-mock's plain-HTTP origin, e.g. "http://127.0.0.1:40123".
	URL  string
	proc *Process
}

// StartStripeMock starts the stripe-mock binary bin on two free loopback ports (HTTP
// and HTTPS: without -https-addr it would bind HTTPS on every interface). A port taken
// between FreePort and the bind makes stripe-mock exit; that is retried.
func StartStripeMock(bin string) (*StripeMock, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		httpPort, err := FreePort()
		if err != nil {
			return nil, err
		}
		httpsPort, err := FreePort()
		if err != nil {
			return nil, err
		}
		if httpsPort == httpPort {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
		proc, err := StartProcess("stripe-mock", addr, stripeMockStartTimeout, nil, bin,
			"-http-addr", addr, "-https-addr", fmt.Sprintf("127.0.0.1:%d", httpsPort))
		if err != nil {
			lastErr = err
			continue
		}
		return &StripeMock{URL: "http://" + addr, proc: proc}, nil
	}
	return nil, fmt.Errorf("start stripe-mock: %w", lastErr)
}

// Stop ends the stripe-mock process.
func (m *StripeMock) Stop() { m.proc.Stop() }

// StripeRequest is one request the proxy received.
type StripeRequest struct {
	// Method is the HTTP method (GET, POST, DELETE).
	Method string `json:"method"`
	// Path is the URL path, e.g. "/v1/subscriptions/sub_123".
	Path string `json:"path"`
	// Query is the URL query (GET parameters such as expand[]).
	Query url.Values `json:"query,omitempty"`
	// Form is the parsed application/x-www-form-urlencoded body, e.g.
	// Form.Get("items[0][price]").
	Form url.Values `json:"form,omitempty"`
	// IdempotencyKey is the Idempotency-Key header ("" when absent).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// StripeVersion is the Stripe-Version header.
	StripeVersion string `json:"stripe_version,omitempty"`
	// Time is when the proxy received the request.
	Time time.Time `json:"time"`
	// Status is the HTTP status the client got (0 for a dropped connection).
	Status int `json:"status"`
	// Injected is true when FailNext or StubNext answered instead of stripe-mock, or
	// the proxy did for a customer it saw deleted.
	Injected bool `json:"injected,omitempty"`
	// Replayed is true when the answer was the stored first answer of the request's
	// idempotency key, as Stripe gives it (with the Idempotent-Replayed header).
	Replayed bool `json:"replayed,omitempty"`
	// Applied is true when Stripe carried the write out: a POST or DELETE answered
	// 2xx by stripe-mock, whether or not the answer reached the client. Refusals,
	// injected answers and replays are not applied.
	Applied bool `json:"applied,omitempty"`
	// Lost is true when LoseNext dropped the answer after Stripe produced it.
	Lost bool `json:"lost,omitempty"`
	// ObjectID is the top-level "id" of a successful JSON answer (a created
	// subscription's id, say): stripe-mock makes up ids, so this is how a test follows
	// what a create made. A replay carries the first answer's id; a lost answer keeps
	// the id Stripe gave it.
	ObjectID string `json:"object_id,omitempty"`
}

// Stripe is a recording, fault-injecting reverse proxy in front of a stripe-mock.
// Point the billing adapter's BaseURL at URL. Since stripe-mock keeps no state, the
// recorded requests are how tests assert billing effects: which calls, with which
// form fields and idempotency keys. The proxy also models what Stripe remembers
// (stripe_model.go): each idempotency key's first answer, and the subscriptions the
// requests created, changed or canceled.
type Stripe struct {
	// URL is the proxy's origin on 127.0.0.1.
	URL string

	srv   *http.Server
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	requests []StripeRequest
	rules    []*stripeRule
	// subs and order are the subscriptions known beyond stripe-mock's fixture, in
	// the order they became known; keys and inflight model idempotency keys.
	subs     map[string]*SubscriptionState
	order    []string
	keys     map[string]*keyed
	inflight map[string]bool
	// deleted remembers the customers a DELETE removed, so that later requests get
	// Stripe's answers for a deleted customer: a read says deleted=true, another
	// DELETE is a 404 "No such customer" (stripe-mock would answer both as if the
	// customer were there).
	deleted map[string]bool
}

// stripeRule answers the next n matching requests itself, or (lose) lets them reach
// Stripe and drops the answer.
type stripeRule struct {
	matcher
	keySuffix string // "" matches any key
	n         int
	forever   bool
	lose      bool
	status    int // 0 drops the connection
	body      []byte
}

// NewStripeProxy starts a recording proxy to upstream (a stripe-mock URL) on a free
// 127.0.0.1 port. Besides Stripe's paths it serves a control API for processes that
// cannot call its methods (devstack, scripts):
//
//	GET    /__testenv/requests       the recorded requests as JSON
//	DELETE /__testenv/requests       Reset
//	POST   /__testenv/fail           JSON {"n":1,"match":"POST /v1/subscriptions","status":500,"type":"api_error"}
//	POST   /__testenv/lose           JSON {"n":1,"match":"POST /v1/subscriptions$"} (n -1: every one)
//	GET    /__testenv/subscriptions  the known subscriptions (SubscriptionState) as JSON
//	POST   /__testenv/subscriptions  JSON SubscriptionState: SetSubscription
func NewStripeProxy(upstream string) (*Stripe, error) {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("stripe proxy: bad upstream %q: %v", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stripe proxy: listen: %w", err)
	}
	s := &Stripe{URL: "http://" + ln.Addr().String()}
	s.forget()
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Accept-Encoding") // the model reads the answers
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "stripe proxy: upstream: "+err.Error(), http.StatusBadGateway)
		},
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the proxy (not the stripe-mock behind it).
func (s *Stripe) Close() { _ = s.srv.Close() }

// Requests returns a copy of the requests received so far, oldest first.
func (s *Stripe) Requests() []StripeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StripeRequest, len(s.requests))
	for i, r := range s.requests {
		r.Query = cloneValues(r.Query)
		r.Form = cloneValues(r.Form)
		out[i] = r
	}
	return out
}

// RequestsTo returns the recorded requests that match, in the syntax of FailNext
// ("POST /v1/subscriptions/sub_1", or a bare path prefix for any method).
func (s *Stripe) RequestsTo(match string) []StripeRequest {
	m := parseMatch(match)
	var out []StripeRequest
	for _, r := range s.Requests() {
		if m.matches(r.Method, r.Path) {
			out = append(out, r)
		}
	}
	return out
}

// Reset forgets the recorded requests, any pending FailNext, StubNext or LoseNext,
// and what the model remembers (idempotency keys, subscriptions).
func (s *Stripe) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget()
}

// ClearFaults drops every pending FailNext, FailKey, StubNext and LoseNext rule, and
// keeps the recorded requests and what the model remembers.
func (s *Stripe) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// forget empties the recorded and remembered state; s.mu is held (or s is new).
func (s *Stripe) forget() {
	s.requests, s.rules, s.order = nil, nil, nil
	s.subs = map[string]*SubscriptionState{}
	s.keys = map[string]*keyed{}
	s.inflight = map[string]bool{}
	s.deleted = map[string]bool{}
}

// FailNext makes the next n requests that match answer with status and a Stripe-shaped
// error of stripeErrorType (e.g. 500 "api_error", 402 "card_error", 429
// "invalid_request_error"), without reaching stripe-mock. match is a path prefix,
// optionally preceded by a method and a space: "POST /v1/subscriptions/"; a trailing
// "$" asks for the exact path ("POST /v1/subscriptions$" is a create only). A
// card_error carries code card_declined, a 429 code rate_limit. Status 0 drops the
// connection without an answer (a network failure). Rules are used in the order they
// were added. As at Stripe, an error answered to a request with an idempotency key is
// that key's answer from then on (except 409, 429 and a dropped connection, which
// Stripe answers before it runs the request).
func (s *Stripe) FailNext(n int, match string, status int, stripeErrorType string) {
	s.StubNext(n, match, status, string(injectedError(status, stripeErrorType)))
}

// injectedError is the Stripe-shaped error body FailNext answers with.
func injectedError(status int, stripeErrorType string) []byte {
	body := map[string]any{
		"type":    stripeErrorType,
		"message": fmt.Sprintf("testenv: injected %d %s", status, stripeErrorType),
	}
	switch {
	case stripeErrorType == "card_error":
		body["code"] = "card_declined"
		body["decline_code"] = "generic_decline"
	case status == http.StatusTooManyRequests:
		body["code"] = "rate_limit"
	}
	b, _ := json.Marshal(map[string]any{"error": body})
	return b
}

// StubNext makes the next n requests that match (see FailNext) answer with status and
// the JSON body, without reaching stripe-mock. Tests use it to give a GET the state
// that stateless stripe-mock cannot (a paused, canceled or scheduled subscription).
func (s *Stripe) StubNext(n int, match string, status int, body string) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &stripeRule{matcher: parseMatch(match), n: n, status: status, body: []byte(body)})
}

// FailKey is FailNext for the requests whose idempotency key ends with suffix, on any
// path: ":billing-rollback" fails a compensation's write whatever its operation and
// attempt, and lets the forward step's write of the same subscription through.
func (s *Stripe) FailKey(n int, suffix string, status int, stripeErrorType string) {
	if n <= 0 || suffix == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &stripeRule{keySuffix: suffix, n: n, status: status, body: injectedError(status, stripeErrorType)})
}

// LoseNext lets the next n requests that match (see FailNext) reach Stripe, which
// carries them out and stores their answer under their idempotency key, then drops
// the connection instead of answering: the client cannot tell whether the write
// happened. n < 0 loses every matching answer, replays included, until Reset.
func (s *Stripe) LoseNext(n int, match string) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &stripeRule{matcher: parseMatch(match), n: n, forever: n < 0, lose: true})
}

// matcher is a parsed "[METHOD ]path-prefix[$]".
type matcher struct {
	method string // "" matches any
	prefix string
	exact  bool
}

func parseMatch(s string) matcher {
	var m matcher
	s = strings.TrimSpace(s)
	if meth, p, ok := strings.Cut(s, " "); ok {
		m.method, s = strings.ToUpper(meth), strings.TrimSpace(p)
	}
	m.prefix, m.exact = strings.CutSuffix(s, "$")
	return m
}

func (m matcher) matches(method, path string) bool {
	if m.method != "" && m.method != method {
		return false
	}
	if m.exact {
		return path == m.prefix
	}
	return strings.HasPrefix(path, m.prefix)
}

// ServeHTTP records the request, then answers it from a rule or through stripe-mock.
func (s *Stripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/__testenv/") {
		s.control(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "stripe proxy: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := StripeRequest{
		Method:         r.Method,
		Path:           r.URL.Path,
		Query:          r.URL.Query(),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		StripeVersion:  r.Header.Get("Stripe-Version"),
		Time:           time.Now(),
	}
	if len(rec.Query) == 0 {
		rec.Query = nil
	}
	if len(body) > 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil {
			rec.Form = form
		}
	}

	s.mu.Lock()
	idx := len(s.requests)
	rule := s.takeRule(r.Method, r.URL.Path, rec.IdempotencyKey)
	if rule == nil {
		rule = s.deletedCustomer(r.Method, r.URL.Path)
	}
	rec.Injected = rule != nil && !rule.lose
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	var ans *stripeAnswer
	held := false
	if rec.Injected {
		ans = &stripeAnswer{status: rule.status, body: rule.body}
	} else {
		ans, held = s.idempotent(rec)
		if ans == nil {
			ans = s.refuse(rec)
		}
		if ans == nil {
			ans = s.forward(r, rec)
		}
	}
	lost := rule != nil && rule.lose
	s.mu.Lock()
	s.settle(rec, ans, held)
	if idx < len(s.requests) { // Reset may have run meanwhile
		got := &s.requests[idx]
		got.Status, got.Replayed, got.Applied, got.Lost, got.ObjectID = ans.status, ans.replayed, ans.applied, lost, ans.objectID
		if lost {
			got.Status = 0
		}
	}
	if id := customerID(r.URL.Path); id != "" && r.Method == http.MethodDelete && ans.status == http.StatusOK && !rec.Injected && !lost {
		s.deleted[id] = true
	}
	s.mu.Unlock()
	if lost || ans.status == 0 {
		dropConnection(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", fmt.Sprintf("req_testenv_%d", idx+1))
	if ans.replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.body)
}

// forward sends the request to stripe-mock and passes its answer through the model.
func (s *Stripe) forward(r *http.Request, rec StripeRequest) *stripeAnswer {
	out := httptest.NewRecorder()
	s.proxy.ServeHTTP(out, r)
	ans := &stripeAnswer{status: out.Code, body: out.Body.Bytes(), upstream: true}
	if ans.status >= 200 && ans.status <= 299 {
		s.model(rec, ans)
	}
	return ans
}

// customerID returns the id of a /v1/customers/{id} path ("" otherwise).
func customerID(path string) string {
	id, ok := strings.CutPrefix(path, "/v1/customers/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// deletedCustomer answers, as Stripe does, a request for a customer a DELETE removed:
// a read is 200 {"id", "object": "customer", "deleted": true}, a second DELETE (or an
// update) a 404 resource_missing. s.mu is held.
func (s *Stripe) deletedCustomer(method, path string) *stripeRule {
	id := customerID(path)
	if id == "" || !s.deleted[id] {
		return nil
	}
	if method == http.MethodGet {
		b, _ := json.Marshal(map[string]any{"id": id, "object": "customer", "deleted": true})
		return &stripeRule{status: http.StatusOK, body: b}
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"type": "invalid_request_error", "code": "resource_missing", "param": "id",
		"message": fmt.Sprintf("No such customer: '%s'", id)}})
	return &stripeRule{status: http.StatusNotFound, body: b}
}

// subscriptionID returns the id of a /v1/subscriptions/{id} path ("" otherwise).
func subscriptionID(path string) string {
	id, ok := strings.CutPrefix(path, "/v1/subscriptions/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// takeRule returns the first rule matching and uses one of its answers; s.mu is held.
func (s *Stripe) takeRule(method, path, key string) *stripeRule {
	for i, rule := range s.rules {
		if rule.matches(method, path) && strings.HasSuffix(key, rule.keySuffix) {
			rule.n--
			if rule.n <= 0 && !rule.forever {
				s.rules = append(s.rules[:i], s.rules[i+1:]...)
			}
			return rule
		}
	}
	return nil
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // closes the connection without an answer
}

type failCommand struct {
	N      int    `json:"n"`
	Match  string `json:"match"`
	Status int    `json:"status"`
	Type   string `json:"type"`
}

// known returns the known subscriptions, in the order they became known.
func (s *Stripe) known() []SubscriptionState {
	s.mu.Lock()
	ids := append([]string(nil), s.order...)
	s.mu.Unlock()
	out := []SubscriptionState{}
	for _, id := range ids {
		if st, ok := s.Subscription(id); ok {
			out = append(out, st)
		}
	}
	return out
}

func (s *Stripe) control(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/__testenv/requests" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Requests())
	case r.URL.Path == "/__testenv/requests" && r.Method == http.MethodDelete:
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/__testenv/fail" && r.Method == http.MethodPost:
		var c failCommand
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.N <= 0 || c.Type == "" {
			http.Error(w, `want {"n":>0,"match":"[METHOD ]/v1/...","status":500,"type":"api_error"}`, http.StatusBadRequest)
			return
		}
		s.FailNext(c.N, c.Match, c.Status, c.Type)
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/__testenv/lose" && r.Method == http.MethodPost:
		var c failCommand
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.N == 0 || c.Match == "" {
			http.Error(w, `want {"n":1 (or -1 for every one),"match":"[METHOD ]/v1/...[$]"}`, http.StatusBadRequest)
			return
		}
		s.LoseNext(c.N, c.Match)
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/__testenv/subscriptions" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.known())
	case r.URL.Path == "/__testenv/subscriptions" && r.Method == http.MethodPost:
		var st SubscriptionState
		if err := json.NewDecoder(r.Body).Decode(&st); err != nil || st.ID == "" {
			http.Error(w, `want {"id":"sub_...","customer":"cus_...","status":"canceled","price":"price_..."}`, http.StatusBadRequest)
			return
		}
		s.SetSubscription(st)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// sharedStripe is the stripe-mock that StartStripe starts once per test binary.
var sharedStripe struct {
	mu   sync.Mutex
	mock *StripeMock
}

// StripeMockURL returns the origin of the stripe-mock the tests share:
// $TENANTFLOW_STRIPE_MOCK_URL if set (one already running, e.g. devstack's), else one
// started on first use and stopped by StopAll, so the package's TestMain should be
// os.Exit(testenv.Run(m)). Starting it once saves its ~1.4 s start per test; that is
// safe because stripe-mock keeps no state.
func StripeMockURL() (string, error) {
	if u := os.Getenv("TENANTFLOW_STRIPE_MOCK_URL"); u != "" {
		return u, nil
	}
	sharedStripe.mu.Lock()
	if sharedStripe.mock != nil {
		defer sharedStripe.mu.Unlock()
		return sharedStripe.mock.URL, nil
	}
	bin, err := Tool("bin/stripe-mock")
	if err != nil {
		sharedStripe.mu.Unlock()
		return "", err
	}
	m, err := StartStripeMock(bin)
	if err != nil {
		sharedStripe.mu.Unlock()
		return "", err
	}
	sharedStripe.mock = m
	sharedStripe.mu.Unlock()
	// Registered outside sharedStripe.mu: StopAll holds its own lock while it runs
	// the closers, and this closer takes sharedStripe.mu.
	OnStop(func() {
		sharedStripe.mu.Lock()
		if sharedStripe.mock == m {
			sharedStripe.mock = nil
		}
		sharedStripe.mu.Unlock()
		m.Stop()
	})
	return m.URL, nil
}

// StartStripe gives the test its own recording proxy (own requests, own faults) in
// front of the shared stripe-mock (see StripeMockURL), closed by t.Cleanup. It fails
// the test when stripe-mock is not installed (`make tools` puts it below ToolsDir as
// bin/stripe-mock).
func StartStripe(t testing.TB) *Stripe {
	t.Helper()
	upstream, err := StripeMockURL()
	if err != nil {
		t.Fatalf("testenv: stripe-mock: %v", err)
	}
	p, err := NewStripeProxy(upstream)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

var _ http.Handler = (*Stripe)(nil)

// PID is stripe-mock's process id.
func (m *StripeMock) PID() int { return m.proc.PID() }

// ReplaySubscription folds recorded requests to one subscription, in order, into its
// effective price and cancel_at_period_end, starting from price and canceling: only a
// request Stripe carried out counts (Applied: also when its answer was lost), and a
// repeated idempotency key is Stripe's replay of the first answer, not a second change.
func ReplaySubscription(reqs []StripeRequest, price string, canceling bool) (string, bool) {
	seen := map[string]bool{}
	for _, r := range reqs {
		if !r.Applied {
			continue
		}
		if r.IdempotencyKey != "" {
			if seen[r.IdempotencyKey] {
				continue
			}
			seen[r.IdempotencyKey] = true
		}
		if p := r.Form.Get("items[0][price]"); p != "" {
			price = p
		}
		if c := r.Form.Get("cancel_at_period_end"); c != "" {
			canceling = c == "true"
		}
	}
	return price, canceling
}
