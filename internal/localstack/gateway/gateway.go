// Package gateway is devstack's stand-in for the API Gateway HTTP API of template.yaml:
// it matches requests to the routes of the AWS::Serverless::Function HttpApi events,
// runs the JWT authorizer (package jwtauth), invokes the function with the exact
// payload format 2.0 event API Gateway would send, and maps the function's answer back
// to HTTP the way API Gateway does. [Gateway] lists what is emulated.
//
// Known differences from AWS: paths are served without a stage prefix whatever
// Config.Stage says ($default semantics); requestContext.domainName keeps the local
// port (so functions can build working self-links); HEAD is not mapped to GET; no
// CORS, throttling, custom domains, Lambda authorizers or stage variables; and
// requestId is a UUID rather than API Gateway's short base64 id.
package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/randid"
)

// Constants of the emulated API.
const (
	// MaxBodyBytes is API Gateway's 10 MB request payload quota; larger bodies get 413.
	MaxBodyBytes = 10 << 20
	// JWKSPath is where the gateway publishes the authorizer's signing key, unauthenticated.
	JWKSPath = "/.well-known/jwks.json"
	// DefaultStage is the stage name reported when Config.Stage is empty.
	DefaultStage = "$default"
	// DefaultAPIID is the apiId reported when Config.APIID is empty.
	DefaultAPIID = "local"
	// AccountID is the requestContext.accountId of every event (the AWS documentation's
	// example account, as sam local uses).
	AccountID = "123456789012"
	// DefaultTimeout is API Gateway's maximum integration timeout (30 s); an invocation
	// still running then is answered 503.
	DefaultTimeout = 30 * time.Second
	// TimeFormat is the layout of requestContext.time.
	TimeFormat = "02/Jan/2006:15:04:05 -0700"
)

// Route is one route of the HTTP API: an HttpApi event of a function in template.yaml.
type Route struct {
	// Method is the HTTP method, or "ANY".
	Method string
	// Path is the SAM path: literal segments, {param} for one segment, and a final
	// {proxy+} (any name) for one or more segments.
	Path string
	// Function is the logical id of the function the route invokes.
	Function string
	// Auth is true when the JWT authorizer guards the route (the API's default), false
	// for events with Auth: {Authorizer: NONE}.
	Auth bool
	// Scopes are the route's AuthorizationScopes. Empty (the template's case) means any
	// valid token passes and, as in API Gateway, requestContext.authorizer.jwt.scopes
	// is null; otherwise the token needs one of them (else 403) and jwt.scopes carries
	// the token's scopes.
	Scopes []string
}

// Key returns the route key, "METHOD /path", as requestContext.routeKey shows it.
func (r Route) Key() string { return r.Method + " " + r.Path }

// Invoker runs a function synchronously, like Lambda's Invoke API.
type Invoker interface {
	// Invoke runs function with payload. A function that failed returns its error
	// document as result and the error type (X-Amz-Function-Error) as functionError;
	// err is for failures to invoke at all.
	Invoke(ctx context.Context, function string, payload []byte) (result []byte, functionError string, err error)
}

// Authorizer is the JWT authorizer: *jwtauth.Authority satisfies it.
type Authorizer interface {
	// Verify checks an Authorization header value and returns the token's claims.
	Verify(authorization string) (jwtauth.Claims, error)
	// JWKS returns the JSON Web Key Set that verifies the tokens.
	JWKS() []byte
}

var _ Authorizer = (*jwtauth.Authority)(nil)

// Config configures a Gateway.
type Config struct {
	// Routes of the API. Required; route keys must be unique.
	Routes []Route
	// Invoker runs the functions. Required.
	Invoker Invoker
	// Authorizer verifies tokens; required when a route has Auth. Its JWKS is served
	// at JWKSPath.
	Authorizer Authorizer
	// Stage is requestContext.stage; empty means "$default". Paths are always served
	// without a stage prefix, as on the $default stage.
	Stage string
	// APIID is requestContext.apiId; empty means "local".
	APIID string
	// Logger receives the access log and integration errors; nil discards them.
	Logger *slog.Logger
	// Timeout bounds each invocation; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock for requestContext.time; nil means time.Now.
	Now func() time.Time
	// NewRequestID makes requestContext.requestId; nil means a random UUID.
	NewRequestID func() string
}

// Gateway serves the HTTP API. It is immutable after New and safe for concurrent use.
//
// Emulated from API Gateway HTTP APIs: route selection (most specific route wins,
// exact method before ANY; no match, including a wrong method, is 404), the JWT
// authorizer (401 with API Gateway's www-authenticate challenge; 403 for a missing
// route scope), the payload 2.0 event (decoded rawPath, raw rawQueryString, lower-cased
// and comma-joined headers, Cookie moved to cookies, x-forwarded-* and
// x-amzn-trace-id added, text or base64 body by content type), the 10 MB request
// limit, the 30 s integration timeout (503), and the 2.0 response rules (structured
// response with statusCode, otherwise an inferred 200 application/json; a function
// error is 500). Every response carries an apigw-requestid header.
type Gateway struct {
	routes  []compiledRoute
	inv     Invoker
	auth    Authorizer
	stage   string
	apiID   string
	log     *slog.Logger
	timeout time.Duration
	now     func() time.Time
	newID   func() string
}

// New validates cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Invoker == nil {
		return nil, errors.New("gateway: an Invoker is required")
	}
	g := &Gateway{
		inv:     cfg.Invoker,
		auth:    cfg.Authorizer,
		stage:   cfg.Stage,
		apiID:   cfg.APIID,
		log:     cfg.Logger,
		timeout: cfg.Timeout,
		now:     cfg.Now,
		newID:   cfg.NewRequestID,
	}
	if g.stage == "" {
		g.stage = DefaultStage
	}
	if g.apiID == "" {
		g.apiID = DefaultAPIID
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.newID == nil {
		g.newID = randid.UUID
	}
	seen := map[string]bool{}
	for _, r := range cfg.Routes {
		cr, err := compile(r)
		if err != nil {
			return nil, err
		}
		if seen[cr.Key()] {
			return nil, fmt.Errorf("gateway: duplicate route %q", cr.Key())
		}
		seen[cr.Key()] = true
		if cr.Auth && g.auth == nil {
			return nil, fmt.Errorf("gateway: route %q needs the JWT authorizer but none is configured", cr.Key())
		}
		g.routes = append(g.routes, cr)
	}
	return g, nil
}

// Routes returns the configured routes, normalized (upper-case methods).
func (g *Gateway) Routes() []Route {
	out := make([]Route, len(g.routes))
	for i, r := range g.routes {
		out[i] = r.Route
	}
	return out
}

// exchange is what one request learned, for the access log.
type exchange struct {
	route    string
	function string
	status   int
	authErr  string
}

// ServeHTTP handles one API request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	now := g.now()
	reqID := g.newID()
	w.Header().Set("Apigw-Requestid", reqID)
	x := &exchange{}
	defer func() {
		g.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", x.route),
			slog.Int("status", x.status),
			slog.Duration("latency", time.Since(start)),
			slog.String("function", x.function),
			slog.String("request_id", reqID),
			slog.String("auth_error", x.authErr),
		)
	}()

	if r.Method == http.MethodGet && r.URL.Path == JWKSPath && g.auth != nil {
		x.route = "GET " + JWKSPath
		x.status = http.StatusOK
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(g.auth.JWKS())
		return
	}

	rawPath := decodePath(r.URL.EscapedPath())
	route, params := g.match(r.Method, rawPath)
	if route == nil {
		g.message(w, x, http.StatusNotFound, "Not Found")
		return
	}
	x.route, x.function = route.Key(), route.Function

	if r.ContentLength > MaxBodyBytes {
		g.message(w, x, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		g.message(w, x, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > MaxBodyBytes {
		g.message(w, x, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}

	var authz *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
	if route.Auth {
		claims, err := g.auth.Verify(strings.Join(r.Header.Values("Authorization"), ","))
		if err != nil {
			x.authErr = err.Error()
			w.Header().Set("Www-Authenticate", jwtauth.Challenge(err, route.Scopes))
			g.message(w, x, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if !claims.HasAnyScope(route.Scopes) {
			x.authErr = "token has none of the route's scopes"
			scopes := strings.Join(route.Scopes, " ")
			w.Header().Set("Www-Authenticate", `Bearer scope=`+quote(scopes)+
				` error="insufficient_scope" error_description=`+quote("the token needs one of the scopes: "+scopes))
			g.message(w, x, http.StatusForbidden, "Forbidden")
			return
		}
		jwtDesc := &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims.Flatten()}
		if len(route.Scopes) > 0 {
			jwtDesc.Scopes = claims.Scopes()
		}
		authz = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: jwtDesc}
	}

	ev := g.event(r, route, rawPath, params, body, authz, reqID, now)
	payload, err := marshalEvent(ev)
	if err != nil {
		g.log.Error("gateway: marshal event", "err", err)
		g.message(w, x, http.StatusInternalServerError, "Internal Server Error")
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), g.timeout)
	defer cancel()
	result, fnErr, err := g.inv.Invoke(ctx, route.Function, payload)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil:
		// Also when a late result did arrive: API Gateway has answered 503 by then.
		g.log.Error("gateway: integration timed out", "function", route.Function, "timeout", g.timeout, "request_id", reqID)
		g.message(w, x, http.StatusServiceUnavailable, "Service Unavailable")
		return
	case err != nil:
		g.log.Error("gateway: invoke failed", "function", route.Function, "err", err, "request_id", reqID)
		g.message(w, x, http.StatusBadGateway, err.Error())
		return
	case fnErr != "":
		var doc struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(result, &doc)
		g.log.Error("gateway: function error", "function", route.Function, "function_error", fnErr,
			"error_type", doc.ErrorType, "error_message", doc.ErrorMessage, "request_id", reqID)
		g.message(w, x, http.StatusInternalServerError, "Internal Server Error")
		return
	}

	resp, err := mapResponse(result)
	if err != nil {
		g.log.Error("gateway: malformed function response", "function", route.Function, "err", err, "request_id", reqID)
		g.message(w, x, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if resp.ignoredMultiValue {
		g.log.Warn("gateway: multiValueHeaders ignored: payload 2.0 responses use headers (comma-joined) and cookies",
			"function", route.Function, "request_id", reqID)
	}
	h := w.Header()
	for k, vs := range resp.header {
		h[k] = vs
	}
	if h.Get("Content-Type") == "" {
		h["Content-Type"] = nil // never let net/http sniff one
	}
	x.status = resp.status
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// message writes one of API Gateway's own JSON answers, {"message": "..."}.
func (g *Gateway) message(w http.ResponseWriter, x *exchange, status int, msg string) {
	x.status = status
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// event builds the payload 2.0 request.
func (g *Gateway) event(r *http.Request, route *compiledRoute, rawPath string, params map[string]string,
	body []byte, authz *events.APIGatewayV2HTTPRequestContextAuthorizerDescription, reqID string, now time.Time,
) events.APIGatewayV2HTTPRequest {
	sourceIP := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = host
	}
	if len(params) == 0 {
		params = nil
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              route.Key(),
		RawPath:               rawPath,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies(r.Header),
		Headers:               headers(r, sourceIP, now),
		QueryStringParameters: queryParameters(r.URL.RawQuery),
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     route.Key(),
			AccountID:    AccountID,
			Stage:        g.stage,
			RequestID:    reqID,
			Authorizer:   authz,
			APIID:        g.apiID,
			DomainName:   r.Host,
			DomainPrefix: domainPrefix(r.Host),
			Time:         now.UTC().Format(TimeFormat),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		ev.Body, ev.IsBase64Encoded = encodeBody(r.Header.Get("Content-Type"), body)
		if ev.Headers["content-length"] == "" { // chunked upload: API Gateway buffers, then knows
			ev.Headers["content-length"] = strconv.Itoa(len(body))
		}
	}
	return ev
}

// wireContext is events.APIGatewayV2HTTPRequestContext without the mTLS
// "authentication" member, which aws-lambda-go always marshals (a struct field with
// omitempty) but API Gateway sends only with mutual TLS.
type wireContext struct {
	RouteKey     string                                                      `json:"routeKey"`
	AccountID    string                                                      `json:"accountId"`
	Stage        string                                                      `json:"stage"`
	RequestID    string                                                      `json:"requestId"`
	Authorizer   *events.APIGatewayV2HTTPRequestContextAuthorizerDescription `json:"authorizer,omitempty"`
	APIID        string                                                      `json:"apiId"`
	DomainName   string                                                      `json:"domainName"`
	DomainPrefix string                                                      `json:"domainPrefix"`
	Time         string                                                      `json:"time"`
	TimeEpoch    int64                                                       `json:"timeEpoch"`
	HTTP         events.APIGatewayV2HTTPRequestContextHTTPDescription        `json:"http"`
}

type wireRequest struct {
	events.APIGatewayV2HTTPRequest
	RequestContext wireContext `json:"requestContext"` // shadows the embedded field
}

// marshalEvent encodes ev as the invocation payload.
func marshalEvent(ev events.APIGatewayV2HTTPRequest) ([]byte, error) {
	rc := ev.RequestContext
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "a&b", not "a\u0026b", as API Gateway writes it
	err := enc.Encode(wireRequest{
		APIGatewayV2HTTPRequest: ev,
		RequestContext: wireContext{
			RouteKey: rc.RouteKey, AccountID: rc.AccountID, Stage: rc.Stage, RequestID: rc.RequestID,
			Authorizer: rc.Authorizer, APIID: rc.APIID, DomainName: rc.DomainName, DomainPrefix: rc.DomainPrefix,
			Time: rc.Time, TimeEpoch: rc.TimeEpoch, HTTP: rc.HTTP,
		},
	})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}

// quote writes an RFC 7230 quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// traceID makes an X-Ray trace header in API Gateway's format.
func traceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s", now.Unix(), hex.EncodeToString(b[:]))
}
