package invariants

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// api is the HTTP API as clients reach it: a local API Gateway (the routes of
// template.yaml, its JWT authorizer) in front of the stack's Lambda service, so every
// request goes through the real api bootstrap with a real token, and Stripe's
// deliveries through the real webhook bootstrap with a real signature.
type api struct {
	url    string
	srv    *http.Server
	client *http.Client
	auth   *jwtauth.Authority
}

// signingKey is generated once per process: RSA key generation is the slow part of
// an authority, and every api of the process may share the key.
var signingKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// startAPI serves the template's HTTP API routes on a free 127.0.0.1 port.
func startAPI(s *stack.Stack) (*api, error) {
	routes, err := stack.HTTPRoutes(s.Template)
	if err != nil {
		return nil, err
	}
	key, err := signingKey()
	if err != nil {
		return nil, err
	}
	auth, err := jwtauth.NewWithKey(jwtauth.Config{Issuer: stack.LocalParams["JwtIssuer"], Audience: []string{stack.LocalParams["JwtAudience"]}}, key)
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(gateway.Config{Routes: routes, Invoker: invoker{s}, Authorizer: auth, Timeout: 60 * time.Second})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &api{url: "http://" + ln.Addr().String(), srv: &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second},
		client: &http.Client{Timeout: 90 * time.Second}, auth: auth}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

func (a *api) close() {
	_ = a.srv.Close()
	a.client.CloseIdleConnections()
}

// invoker runs the gateway's invocations on the stack's Lambda service.
type invoker struct{ s *stack.Stack }

func (i invoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, string, error) {
	res, err := i.s.Lambda.Invoke(ctx, function, payload)
	if err != nil {
		return nil, "", err
	}
	return res.Payload, res.FunctionError, nil
}

// tokens of the actors that call the API.
func (a *api) operatorToken() (string, error) { return a.auth.OperatorToken() }
func (a *api) tenantToken(id string) (string, error) {
	return a.auth.TenantToken(id)
}
func (a *api) meteringToken() (string, error) {
	return a.auth.Mint(jwtauth.Claims{"sub": "svc_metering", "scope": "tenants/usage"})
}

// answer is an HTTP answer: its status and body.
type answer struct {
	Status int
	Body   []byte
}

// field returns a top-level string field of a JSON body ("" when absent).
func (r answer) field(name string) string {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

func (r answer) String() string {
	body := bytes.TrimSpace(r.Body)
	if len(body) > 300 {
		body = append(body[:300:300], "..."...)
	}
	return fmt.Sprintf("%d %s", r.Status, body)
}

// call sends one request with a bearer token (none when token is empty) and extra
// headers.
func (a *api) call(ctx context.Context, method, path, token string, body any, headers map[string]string) (answer, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return answer{Status: resp.StatusCode, Body: out}, nil
}
