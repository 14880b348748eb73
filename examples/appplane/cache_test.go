package appplane_test

// The cache against the local stack: the real HTTP API (the gateway emulating API
// Gateway with its JWT authorizer, in front of the real api bootstrap on the local
// Lambda service) and the real lifecycle bus, whose events the stack delivers to a
// queue the test reads as an app-plane consumer would.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/examples/appplane"
	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// api serves the template's HTTP routes on 127.0.0.1 and mints tokens.
type api struct {
	url  string
	auth *jwtauth.Authority
}

func startAPI(t *testing.T, s *stack.Stack) *api {
	t.Helper()
	fns, err := s.Template.Functions()
	if err != nil {
		t.Fatal(err)
	}
	var routes []gateway.Route
	for _, f := range fns {
		for _, ev := range f.Events {
			if method, path, ok := ev.HttpRoute(); ok && ev.Type == "HttpApi" && f.LogicalID == "ApiFunction" {
				routes = append(routes, gateway.Route{Method: method, Path: path, Function: f.LogicalID, Auth: true})
			}
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.NewWithKey(jwtauth.Config{Issuer: stack.LocalParams["JwtIssuer"], Audience: []string{stack.LocalParams["JwtAudience"]}}, key)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Routes: routes, Invoker: invoker{s}, Authorizer: auth, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &api{url: "http://" + ln.Addr().String(), auth: auth}
}

type invoker struct{ s *stack.Stack }

func (i invoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, string, error) {
	res, err := i.s.Lambda.Invoke(ctx, function, payload)
	if err != nil {
		return nil, "", err
	}
	return res.Payload, res.FunctionError, nil
}

// call sends one request with the operator's token and decodes the JSON answer.
func (a *api) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	token, err := a.auth.OperatorToken()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// countingTransport counts the requests the cache sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestCacheFollowsAPlanChange is the acceptance of the app-plane example: the cache
// reads a tenant's entitlements once, revalidates them with a 304 after max-age, and a
// plan change reaches it with the first delivery of the lifecycle bus's events,
// without another read; repeated and older events change nothing.
func TestCacheFollowsAPlanChange(t *testing.T) {
	s := st.Shared(t)
	a := startAPI(t, s)
	ctx := context.Background()
	const id = "tenant_techstart"

	now := time.Now()
	clock := func() time.Time { return now }
	rt := &countingTransport{}
	cache := appplane.New(appplane.Config{BaseURL: a.url, HTTP: &http.Client{Transport: rt, Timeout: 60 * time.Second}, Now: clock,
		Token: func(context.Context) (string, error) {
			return a.auth.Mint(jwtauth.Claims{"sub": "svc_app", "scope": "tenants/entitlements"})
		}})

	free, err := cache.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if free.Plan != "free" || free.State != "ACTIVE" || *free.Limits.Users != 3 || free.Allows("custom_domain") || !free.Allows("api_access") {
		t.Fatalf("first read %+v", free)
	}
	if _, err := cache.Get(ctx, id); err != nil || rt.n.Load() != 1 {
		t.Fatalf("a read within max-age went to the API (%d requests, %v)", rt.n.Load(), err)
	}
	now = now.Add(61 * time.Second)
	if again, err := cache.Get(ctx, id); err != nil || again.Version != free.Version || cache.Stats().NotModified != 1 || rt.n.Load() != 2 {
		t.Fatalf("revalidation after max-age: %+v %v, stats %+v", again, err, cache.Stats())
	}

	// The plan change, through the API as an operator would.
	code, body := a.call(t, "POST", "/tenants/"+id+"/upgrade", `{"plan":"starter"}`)
	if code != 202 {
		t.Fatalf("upgrade: %d %v", code, body)
	}
	if op := st.WaitDone(t, s, body["operation_id"].(string)); op["status"] != "SUCCEEDED" {
		t.Fatalf("upgrade %v", op)
	}

	// One delivery of the bus's events, as the app plane's queue consumer gets them.
	published := st.Published(t, s, id)
	var changes [][]byte
	for _, e := range published {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cache.ApplyEvent(raw); err != nil {
			t.Fatal(err)
		}
		if e.DetailType == appplane.EventType {
			changes = append(changes, raw)
		}
	}
	if len(changes) != 1 {
		t.Fatalf("%d TenantEntitlementsChanged events for one upgrade, want 1 (events %v)", len(changes), st.Events(t, s, id))
	}
	requests := rt.n.Load()
	starter, err := cache.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if starter.Plan != "starter" || *starter.Limits.Users != 10 || !starter.Allows("custom_domain") || starter.Version <= free.Version {
		t.Fatalf("after the event: %+v", starter)
	}
	if rt.n.Load() != requests {
		t.Fatal("the cache read the API although the event had brought the change")
	}

	// At least once and out of order: a repeat and the old document are ignored.
	if applied, _ := cache.ApplyEvent(changes[0]); applied {
		t.Fatal("a repeated event was applied")
	}
	if cache.Apply(free) {
		t.Fatal("an older document replaced a newer one")
	}
	if got, _ := cache.Get(ctx, id); got.Plan != "starter" {
		t.Fatalf("after stale events: %+v", got)
	}

	// After max-age the cache reads again and the API agrees with the event.
	now = now.Add(61 * time.Second)
	fresh, err := cache.Get(ctx, id)
	if err != nil || fresh.Version != starter.Version || fresh.Plan != "starter" {
		t.Fatalf("read after the event's max-age: %+v %v", fresh, err)
	}
}
