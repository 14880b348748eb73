package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func withKey(ev events.APIGatewayV2HTTPRequest, key string) events.APIGatewayV2HTTPRequest {
	if ev.Headers == nil {
		ev.Headers = map[string]string{}
	}
	ev.Headers["idempotency-key"] = key
	return ev
}

func TestIdempotencyReplaysTheFirstAnswer(t *testing.T) {
	e := newEnv(t)
	up := withKey(req("POST /tenants/{id}/upgrade", "tenant_techstart", authz(adminClaims), `{"plan":"starter"}`), "k-1")
	first := invokeEvent(t, e.h, up)
	if first.StatusCode != 202 {
		t.Fatalf("first %d %s", first.StatusCode, first.Body)
	}
	again := invokeEvent(t, e.h, up)
	if again.StatusCode != 202 || again.Body != first.Body || again.Headers["Location"] != first.Headers["Location"] ||
		again.Headers["Idempotent-Replayed"] != "true" {
		t.Fatalf("replay %d %v %s, want %s", again.StatusCode, again.Headers, again.Body, first.Body)
	}
	if calls := e.plans.Calls(); len(calls) != 1 {
		t.Fatalf("plan calls %v, want one", calls)
	}
	// Same key, other body: 422, nothing runs.
	other := withKey(req("POST /tenants/{id}/upgrade", "tenant_techstart", authz(adminClaims), `{"plan":"professional"}`), "k-1")
	if r := invokeEvent(t, e.h, other); r.StatusCode != 422 || problem(t, r).Type != "urn:tenantflow:problem:idempotency-key-reused" {
		t.Fatalf("other body %d %s", r.StatusCode, r.Body)
	}
	// Same key, same body, another caller: its own scope, so it runs (and is refused
	// by the domain: the tenant is busy), not a replay.
	other2 := withKey(req("POST /tenants/{id}/upgrade", "tenant_techstart", authz(map[string]string{"sub": "admin2", "scope": "tenants/admin"}), `{"plan":"starter"}`), "k-1")
	if r := invokeEvent(t, e.h, other2); r.Headers["Idempotent-Replayed"] != "" {
		t.Fatalf("another caller got the replay: %d %s", r.StatusCode, r.Body)
	}
	// Errors below 500 are answers too and are replayed.
	bad := withKey(req("PUT /tenants/{id}/usage", "tenant_acme", authz(adminClaims), `{"users":-1,"storage_gb":0,"api_calls_per_month":0}`), "k-2")
	r1, r2 := invokeEvent(t, e.h, bad), invokeEvent(t, e.h, bad)
	if r1.StatusCode != 422 || r2.StatusCode != 422 || r1.Body != r2.Body || r2.Headers["Content-Type"] != httpapi.ContentTypeProblem {
		t.Fatalf("422 replay %d/%d %s", r1.StatusCode, r2.StatusCode, r2.Body)
	}
}

func TestIdempotencyKeyFormat(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"", strings.Repeat("a", 256), "bad\x7fkey", "tab\tkey", "é"} {
		r := invokeEvent(t, e.h, withKey(req("PUT /tenants/{id}/usage", "tenant_acme", authz(adminClaims), `{"users":1,"storage_gb":0,"api_calls_per_month":0}`), k))
		if r.StatusCode != 400 || problem(t, r).Type != "urn:tenantflow:problem:malformed-idempotency-key" {
			t.Errorf("key %q: %d %s", k, r.StatusCode, r.Body)
		}
	}
	for _, k := range []string{"a", strings.Repeat("~", 255), "uuid 1234-abcd !#"} {
		r := invokeEvent(t, e.h, withKey(req("PUT /tenants/{id}/usage", "tenant_acme", authz(adminClaims), `{"users":1,"storage_gb":0,"api_calls_per_month":0}`), k))
		if r.StatusCode != 200 {
			t.Errorf("key %q: %d %s", k, r.StatusCode, r.Body)
		}
	}
	// Reads ignore the header; no token is a 401 whatever the key.
	if r := invokeEvent(t, e.h, withKey(req("GET /tenants/{id}", "tenant_acme", authz(adminClaims), ""), "")); r.StatusCode != 200 {
		t.Errorf("GET with empty key: %d", r.StatusCode)
	}
	if r := invokeEvent(t, e.h, withKey(req("POST /tenants/{id}/upgrade", "tenant_acme", nil, `{}`), "")); r.StatusCode != 401 {
		t.Errorf("no token: %d", r.StatusCode)
	}
}

// slowPlans blocks upgrades until released, to observe the in-progress answer.
type slowPlans struct {
	httpapi.PlanChanges
	entered chan struct{}
	release chan struct{}
}

func (s *slowPlans) Upgrade(ctx context.Context, id string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.PlanChanges.Upgrade(ctx, id, plan, by)
}

func TestIdempotencyInProgressIs409(t *testing.T) {
	slow := &slowPlans{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, func(c *httpapi.Config) { slow.PlanChanges = c.PlanChanges; c.PlanChanges = slow })
	up := withKey(req("POST /tenants/{id}/upgrade", "tenant_techstart", authz(adminClaims), `{"plan":"starter"}`), "k-slow")
	var wg sync.WaitGroup
	var first events.APIGatewayV2HTTPResponse
	wg.Add(1)
	go func() { defer wg.Done(); first, _ = e.h.Handle(context.Background(), up) }()
	<-slow.entered
	r := invokeEvent(t, e.h, up)
	if r.StatusCode != 409 || problem(t, r).Type != "urn:tenantflow:problem:idempotency-in-progress" {
		t.Fatalf("while in progress: %d %s", r.StatusCode, r.Body)
	}
	close(slow.release)
	wg.Wait()
	if r := invokeEvent(t, e.h, up); r.StatusCode != 202 || r.Body != first.Body {
		t.Fatalf("after: %d %s, first %d %s", r.StatusCode, r.Body, first.StatusCode, first.Body)
	}
}

// fiveHundred answers 503 once: the claim is released and the retry runs again.
type flakyPlans struct {
	httpapi.PlanChanges
	mu    sync.Mutex
	fails int
}

type transient struct{}

func (transient) Error() string   { return "billing down" }
func (transient) Transient() bool { return true }

func (f *flakyPlans) Upgrade(ctx context.Context, id string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return nil, fmt.Errorf("upgrade: %w", transient{})
	}
	return f.PlanChanges.Upgrade(ctx, id, plan, by)
}

func TestIdempotency5xxIsNotKept(t *testing.T) {
	flaky := &flakyPlans{fails: 1}
	e := newEnv(t, func(c *httpapi.Config) { flaky.PlanChanges = c.PlanChanges; c.PlanChanges = flaky })
	up := withKey(req("POST /tenants/{id}/upgrade", "tenant_techstart", authz(adminClaims), `{"plan":"starter"}`), "k-503")
	if r := invokeEvent(t, e.h, up); r.StatusCode != 503 {
		t.Fatalf("first %d %s", r.StatusCode, r.Body)
	}
	if r := invokeEvent(t, e.h, up); r.StatusCode != 202 || r.Headers["Idempotent-Replayed"] != "" {
		t.Fatalf("retry %d %v %s", r.StatusCode, r.Headers, r.Body)
	}
}

// A claim whose request crashed (in_progress, lease over) is taken over by the same
// request; another request still gets 422.
func TestIdempotencyLeaseTakeover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	st := store.New(e.db, e.st.Table(), func() time.Time { return now.Add(-2 * httpapi.IdempotencyLease) })
	ok, _, err := st.ClaimIdempotency(ctx, "crashed", "h1", httpapi.IdempotencyLease, httpapi.IdempotencyTTL)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, rec, err := e.st.ClaimIdempotency(ctx, "crashed", "h2", httpapi.IdempotencyLease, httpapi.IdempotencyTTL); err != nil || ok || rec.RequestHash != "h1" {
		t.Fatalf("other hash took over: %v %+v %v", ok, rec, err)
	}
	if ok, _, err := e.st.ClaimIdempotency(ctx, "crashed", "h1", httpapi.IdempotencyLease, httpapi.IdempotencyTTL); err != nil || !ok {
		t.Fatalf("same hash after the lease: %v %v", ok, err)
	}
	if ok, rec, err := e.st.ClaimIdempotency(ctx, "crashed", "h1", httpapi.IdempotencyLease, httpapi.IdempotencyTTL); err != nil || ok || rec.Status != store.IdempotencyInProgress {
		t.Fatalf("within the new lease: %v %+v %v", ok, rec, err)
	}
}
