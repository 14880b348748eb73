// Package apifuzz is a property-based tester of the HTTP API, in the manner of
// Schemathesis but in Go: it reads openapi.yaml, and for every operation it makes
// positive requests (parameters and bodies valid for the schemas) and negative ones
// (wrong types, out of bounds, bad patterns, unknown or missing fields), sends them
// with several kinds of token (none, a malformed one, an operator's, the tenant's own,
// another tenant's, the metering service's) to a running API, and checks each answer:
//
//   - never a 5xx;
//   - the status is one the operation lists (its `default` does not count: the spec
//     must name every status the API gives);
//   - the body matches the schema declared for that status and Content-Type;
//   - a request the spec calls invalid never gets a 2xx.
//
// Every generated request is first labelled by validating it against the spec with
// kin-openapi, so a "negative" request is one the spec really refuses. Values the
// API hands out (tenant, operation and export ids in 2xx bodies) are kept and reused
// as path parameters, so requests reach real resources and not only 404s. It covers
// whatever operations the spec has: a route added to openapi.yaml is tested as soon
// as it is there. A run is determined by its seed (the API's own state, moved by the
// flows the requests start, is not).
package apifuzz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Token kinds a request is sent with.
const (
	TokenNone     = "none"
	TokenBad      = "malformed"
	TokenAdmin    = "admin"
	TokenOwn      = "own-tenant"
	TokenOther    = "other-tenant"
	TokenMetering = "metering"
)

var tokenKinds = []string{TokenNone, TokenBad, TokenAdmin, TokenAdmin, TokenOwn, TokenOwn, TokenOther, TokenMetering}

// Tokens mints bearer tokens for the kinds of caller.
type Tokens interface {
	Admin() (string, error)
	Tenant(id string) (string, error)
	Metering() (string, error)
}

// Config configures a Run.
type Config struct {
	Spec    *openapi3.T
	BaseURL string
	Tokens  Tokens
	Client  *http.Client
	Seed    uint64
	// PerOperation is how many requests each operation gets (half positive, half
	// negative); default 12.
	PerOperation int
	// Known seeds the value pools by pool key ("tenant_id": the example tenants).
	Known map[string][]string
	// Deadline, when set, ends the run early (the cases sent so far are judged).
	Deadline time.Time
}

// Case is one generated request.
type Case struct {
	Op       string // "METHOD /path/template"
	Positive bool
	What     string // for a negative: what it breaks
	Token    string
	Method   string
	Path     string // the path sent (escaped)
	Query    url.Values
	Header   http.Header
	Body     []byte // nil: no body
}

func (c *Case) String() string {
	kind := "positive"
	if !c.Positive {
		kind = "negative (" + c.What + ")"
	}
	u := c.Path
	if len(c.Query) > 0 {
		u += "?" + c.Query.Encode()
	}
	var hs []string
	for k, v := range c.Header {
		if k != "Authorization" {
			hs = append(hs, fmt.Sprintf("%s: %q", k, strings.Join(v, ",")))
		}
	}
	sort.Strings(hs)
	body := string(c.Body)
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("%s %s [%s, token %s] %s body=%s", c.Method, u, kind, c.Token, strings.Join(hs, " "), body)
}

// Failure is a check an answer broke.
type Failure struct {
	Case   *Case
	Status int
	Body   string
	Check  string
}

func (f Failure) String() string {
	body := f.Body
	if len(body) > 400 {
		body = body[:400] + "…"
	}
	return fmt.Sprintf("%s\n    request: %s\n    answer:  %d %s", f.Check, f.Case, f.Status, body)
}

// Report is what a run did.
type Report struct {
	Sent     int
	Failures []Failure
	// Statuses counts answers per operation and status, e.g. "GET /tenants/{id}" →
	// "200" → 3, for seeing what the run reached.
	Statuses map[string]map[string]int
	// Skipped names operations for which no request could be generated, with why.
	Skipped []string
}

// Summary renders Statuses, one line per operation.
func (r *Report) Summary() string {
	var ops []string
	for op := range r.Statuses {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	for _, op := range ops {
		var parts []string
		for st, n := range r.Statuses[op] {
			parts = append(parts, fmt.Sprintf("%s×%d", st, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(&b, "%-45s %s\n", op, strings.Join(parts, " "))
	}
	return b.String()
}

type operation struct {
	key    string
	method string
	path   string
	item   *openapi3.PathItem
	op     *openapi3.Operation
	params []*openapi3.Parameter
	refs   map[*openapi3.Parameter]string // component name of a $ref'd parameter
}

// runner holds one run's state.
type runner struct {
	cfg    Config
	g      *gen
	pools  map[string][]string
	tokens map[string]string
	rep    *Report
}

// textDecoders lets answers in the text types the spec declares (the console's
// pages, scripts and styles) be checked against their string schemas; kin-openapi
// only knows JSON, forms and plain text.
var textDecoders sync.Once

func registerTextDecoders() {
	textDecoders.Do(func() {
		for _, ct := range []string{"text/html", "text/css", "text/javascript"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		}
	})
}

// Run generates and sends the requests and judges the answers.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	registerTextDecoders()
	if cfg.PerOperation <= 0 {
		cfg.PerOperation = 12
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 60 * time.Second}
	}
	r := &runner{cfg: cfg, g: &gen{r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))},
		pools: map[string][]string{}, tokens: map[string]string{}, rep: &Report{Statuses: map[string]map[string]int{}}}
	for k, vs := range cfg.Known {
		r.pools[k] = append(r.pools[k], vs...)
	}
	ops := operations(cfg.Spec)
	// Interleave the operations so that the state one moves (a deletion, a
	// suspension) meets the others, as real clients' requests do.
	var plan []int
	for i := range ops {
		for range cfg.PerOperation {
			plan = append(plan, i)
		}
	}
	r.g.r.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	counts := map[int]int{}
	for _, i := range plan {
		if ctx.Err() != nil || (!cfg.Deadline.IsZero() && time.Now().After(cfg.Deadline)) {
			break
		}
		o := ops[i]
		counts[i]++
		positive := counts[i]%2 == 1
		c, err := r.makeCase(o, positive)
		if err != nil {
			if !slices.Contains(r.rep.Skipped, o.key+": "+err.Error()) {
				r.rep.Skipped = append(r.rep.Skipped, o.key+": "+err.Error())
			}
			continue
		}
		if err := r.send(ctx, o, c); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

// operations lists the spec's operations in a fixed order.
func operations(doc *openapi3.T) []*operation {
	var out []*operation
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, p := range paths {
		item := doc.Paths.Value(p)
		methods := make([]string, 0)
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			op := item.GetOperation(m)
			o := &operation{key: m + " " + p, method: m, path: p, item: item, op: op, refs: map[*openapi3.Parameter]string{}}
			seen := map[string]bool{}
			for _, list := range []openapi3.Parameters{op.Parameters, item.Parameters} {
				for _, pr := range list {
					if pr.Value == nil || seen[pr.Value.In+":"+pr.Value.Name] {
						continue
					}
					seen[pr.Value.In+":"+pr.Value.Name] = true
					o.params = append(o.params, pr.Value)
					if pr.Ref != "" {
						o.refs[pr.Value] = pr.Ref[strings.LastIndex(pr.Ref, "/")+1:]
					}
				}
			}
			out = append(out, o)
		}
	}
	return out
}

// poolKey names the pool a path parameter draws known values from: its own name
// when it says what it is (export_id), else the $ref'd component's name (TenantID →
// tenant_id), else the singular of the segment before it (/tenants/{id} → tenant_id).
func (o *operation) poolKey(p *openapi3.Parameter) string {
	if p.Name != "id" {
		return p.Name
	}
	if ref := o.refs[p]; strings.HasSuffix(ref, "ID") {
		return snake(strings.TrimSuffix(ref, "ID")) + "_id"
	}
	segs := strings.Split(strings.Trim(o.path, "/"), "/")
	for i, s := range segs {
		if s == "{"+p.Name+"}" && i > 0 {
			return strings.TrimSuffix(segs[i-1], "s") + "_id"
		}
	}
	return p.Name
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func schemaOf(p *openapi3.Parameter) *openapi3.Schema {
	if p.Schema != nil && p.Schema.Value != nil {
		return p.Schema.Value
	}
	return &openapi3.Schema{Type: &openapi3.Types{"string"}}
}

// paramValue draws a valid value for p: a known one (from the pools) most of the
// time for path parameters, else one generated from its schema.
func (r *runner) paramValue(o *operation, p *openapi3.Parameter) (string, bool) {
	s := schemaOf(p)
	if p.In == openapi3.ParameterInPath {
		if known := r.pools[o.poolKey(p)]; len(known) > 0 && r.g.chance(0.85) {
			return pick(r.g, known), true
		}
	}
	if p.In == openapi3.ParameterInQuery && r.g.chance(0.3) {
		// A cursor is best the one the API handed out.
		if known := r.pools["next_"+p.Name]; len(known) > 0 {
			return pick(r.g, known), true
		}
	}
	v, ok := r.g.positive(s)
	if !ok {
		return "", false
	}
	return scalar(v), true
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// makeCase builds one request of o: positive, or breaking the spec in one place.
func (r *runner) makeCase(o *operation, positive bool) (*Case, error) {
	for range maxTries {
		c, err := r.draft(o, positive)
		if err != nil {
			return nil, err
		}
		verr := r.validate(o, c)
		if positive == (verr == nil) {
			c.Positive = positive
			return c, nil
		}
	}
	kind := "valid"
	if !positive {
		kind = "invalid"
	}
	return nil, fmt.Errorf("no %s request found in %d tries", kind, maxTries)
}

// draft makes a positive request, then (for a negative) breaks one part of it.
func (r *runner) draft(o *operation, positive bool) (*Case, error) {
	c := &Case{Op: o.key, Method: o.method, Query: url.Values{}, Header: http.Header{}, Token: pick(r.g, tokenKinds)}
	if positive && r.g.chance(0.3) {
		// Valid data is worth most with a token that may act: it reaches the
		// success paths and the state checks behind them.
		c.Token = TokenAdmin
	}
	pathVals := map[string]string{}
	for _, p := range o.params {
		if !p.Required && !r.g.chance(0.6) {
			continue
		}
		v, ok := r.paramValue(o, p)
		if !ok {
			return nil, fmt.Errorf("parameter %s: no valid value", p.Name)
		}
		switch p.In {
		case openapi3.ParameterInPath:
			pathVals[p.Name] = v
		case openapi3.ParameterInQuery:
			c.Query.Set(p.Name, v)
		case openapi3.ParameterInHeader:
			c.Header.Set(p.Name, v)
		}
	}
	var body any
	hasBody := false
	var bodySchema *openapi3.Schema
	if rb := o.op.RequestBody; rb != nil && rb.Value != nil {
		if mt := rb.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
			bodySchema = mt.Schema.Value
			if rb.Value.Required || r.g.chance(0.7) {
				v, ok := r.g.positive(bodySchema)
				if !ok {
					return nil, fmt.Errorf("request body: no valid value")
				}
				body, hasBody = v, true
			}
		}
	}
	if !positive {
		r.breakOne(o, c, pathVals, bodySchema, &body, &hasBody)
	}
	c.Path = o.path
	for name, v := range pathVals {
		c.Path = strings.ReplaceAll(c.Path, "{"+name+"}", url.PathEscape(v))
	}
	if hasBody {
		c.Body, _ = json.Marshal(body)
		c.Header.Set("Content-Type", "application/json")
	}
	return c, nil
}

// breakOne applies one mutation: to a parameter, or to the body.
func (r *runner) breakOne(o *operation, c *Case, pathVals map[string]string, bodySchema *openapi3.Schema, body *any, hasBody *bool) {
	type target struct {
		what  string
		apply func()
	}
	var targets []target
	for _, p := range o.params {
		p := p
		s := schemaOf(p)
		if p.Required {
			targets = append(targets, target{"missing " + p.In + " " + p.Name, func() {
				switch p.In {
				case openapi3.ParameterInQuery:
					c.Query.Del(p.Name)
				case openapi3.ParameterInHeader:
					c.Header.Del(p.Name)
				case openapi3.ParameterInPath:
					pathVals[p.Name] = ""
				}
			}})
		}
		for _, m := range r.g.violations(s, nil) {
			if m.value == nil {
				continue // a parameter is text: null has no spelling
			}
			v := scalar(m.value)
			if p.In == openapi3.ParameterInPath && strings.Contains(v, "/") {
				continue
			}
			targets = append(targets, target{p.In + " " + p.Name + ": " + m.what, func() {
				switch p.In {
				case openapi3.ParameterInQuery:
					c.Query.Set(p.Name, v)
				case openapi3.ParameterInHeader:
					c.Header.Set(p.Name, v)
				case openapi3.ParameterInPath:
					pathVals[p.Name] = v
				}
			}})
		}
	}
	if bodySchema != nil {
		if o.op.RequestBody.Value.Required {
			targets = append(targets, target{"missing body", func() { *hasBody = false }})
		}
		for _, m := range r.g.violations(bodySchema, *body) {
			m := m
			targets = append(targets, target{"body " + m.what, func() { *body, *hasBody = m.value, true }})
		}
	}
	if len(targets) == 0 {
		return
	}
	t := pick(r.g, targets)
	c.What = t.what
	t.apply()
}

// validate labels a request against the spec (nil: valid). Security is not part of
// the label: the token kinds are the tester's own axis.
func (r *runner) validate(o *operation, c *Case) error {
	u := &url.URL{Path: c.Path, RawQuery: c.Query.Encode()}
	req, err := http.NewRequest(o.method, u.String(), bytes.NewReader(c.Body))
	if err != nil {
		return err
	}
	req.Header = c.Header.Clone()
	pathParams := map[string]string{}
	tmpl := strings.Split(strings.Trim(o.path, "/"), "/")
	got := strings.Split(strings.Trim(c.Path, "/"), "/")
	if len(tmpl) != len(got) {
		return fmt.Errorf("path %s does not match %s", c.Path, o.path)
	}
	for i, seg := range tmpl {
		if strings.HasPrefix(seg, "{") {
			v, _ := url.PathUnescape(got[i])
			pathParams[strings.Trim(seg, "{}")] = v
			if v == "" {
				return fmt.Errorf("empty path parameter %s", seg)
			}
		}
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: pathParams,
		Route:   &routers.Route{Spec: r.cfg.Spec, Path: o.path, PathItem: o.item, Method: o.method, Operation: o.op},
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, RejectWhenRequestBodyNotSpecified: true},
	}
	return openapi3filter.ValidateRequest(context.Background(), in)
}

// token returns the Authorization header for the case's kind ("" for none).
func (r *runner) token(c *Case, pathTenant string) (string, error) {
	tenants := r.pools["tenant_id"]
	var (
		key  string
		mint func() (string, error)
	)
	switch c.Token {
	case TokenNone:
		return "", nil
	case TokenBad:
		return "Bearer not-a-jwt", nil
	case TokenAdmin:
		key, mint = "admin", r.cfg.Tokens.Admin
	case TokenMetering:
		key, mint = "metering", r.cfg.Tokens.Metering
	case TokenOwn, TokenOther:
		id := pathTenant
		if id == "" && len(tenants) > 0 {
			id = pick(r.g, tenants)
		}
		if c.Token == TokenOther {
			id = "other-" + id
			if len(tenants) > 1 {
				for range maxTries {
					if o := pick(r.g, tenants); o != pathTenant {
						id = o
						break
					}
				}
			}
		}
		key, mint = "tenant:"+id, func() (string, error) { return r.cfg.Tokens.Tenant(id) }
	}
	if t, ok := r.tokens[key]; ok {
		return t, nil
	}
	t, err := mint()
	if err != nil {
		return "", err
	}
	r.tokens[key] = "Bearer " + t
	return r.tokens[key], nil
}

// send makes the request, judges the answer and harvests ids from it.
func (r *runner) send(ctx context.Context, o *operation, c *Case) error {
	pathTenant := ""
	if strings.HasPrefix(o.path, "/tenants/{id}") {
		pathTenant = strings.Split(strings.TrimPrefix(c.Path, "/tenants/"), "/")[0]
		pathTenant, _ = url.PathUnescape(pathTenant)
	}
	auth, err := r.token(c, pathTenant)
	if err != nil {
		return err
	}
	u := strings.TrimRight(r.cfg.BaseURL, "/") + c.Path
	if len(c.Query) > 0 {
		u += "?" + c.Query.Encode()
	}
	var rd io.Reader
	if c.Body != nil {
		rd = bytes.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, u, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	req.Header = c.Header.Clone()
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	r.rep.Sent++
	st := strconv.Itoa(resp.StatusCode)
	if r.rep.Statuses[o.key] == nil {
		r.rep.Statuses[o.key] = map[string]int{}
	}
	r.rep.Statuses[o.key][st]++
	fail := func(check string) {
		r.rep.Failures = append(r.rep.Failures, Failure{Case: c, Status: resp.StatusCode, Body: string(body), Check: check})
	}
	if resp.StatusCode >= 500 {
		fail("never 5xx")
	}
	if !c.Positive && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		fail("a request the spec refuses got a 2xx")
	}
	if !listed(o.op, resp.StatusCode) {
		fail("status " + st + " is not listed for " + o.key + " (default does not count)")
	} else if err := r.validateAnswer(o, c, resp, body); err != nil {
		fail("answer does not match the schema declared for " + st + ": " + oneLine(err.Error()))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		r.harvest(o.path, body)
	}
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// listed reports whether the operation names status (exactly or as 4XX/5XX).
func listed(op *openapi3.Operation, status int) bool {
	if op.Responses == nil {
		return false
	}
	if op.Responses.Value(strconv.Itoa(status)) != nil {
		return true
	}
	return op.Responses.Value(fmt.Sprintf("%dXX", status/100)) != nil
}

func (r *runner) validateAnswer(o *operation, c *Case, resp *http.Response, body []byte) error {
	u := &url.URL{Path: c.Path, RawQuery: c.Query.Encode()}
	req, err := http.NewRequest(o.method, u.String(), nil)
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: r.cfg.Spec, Path: o.path, PathItem: o.item, Method: o.method, Operation: o.op},
		},
		Status: resp.StatusCode, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// harvest keeps the ids of a 2xx body for later path parameters: every string under
// a key ending in "_id" (and "next_cursor"), and "id" as the id of what the request's
// first path segment names (/tenants → tenant_id).
func (r *runner) harvest(path string, body []byte) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	first := strings.Split(strings.Trim(path, "/"), "/")[0]
	var walk func(key string, v any, depth int)
	walk = func(key string, v any, depth int) {
		if depth > 4 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(k, e, depth+1)
			}
		case []any:
			for _, e := range x {
				walk(key, e, depth+1)
			}
		case string:
			k := key
			if k == "id" {
				k = strings.TrimSuffix(first, "s") + "_id"
			}
			if (strings.HasSuffix(k, "_id") || strings.HasPrefix(k, "next_")) && x != "" && !slices.Contains(r.pools[k], x) {
				r.pools[k] = append(r.pools[k], x)
			}
		}
	}
	walk("", v, 0)
}
