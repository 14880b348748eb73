package httpapi_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

const newcoBody = `{"id": "tenant_newco", "name": "NewCo Ltd", "plan": "starter", "email": "billing@newco.example"}`

func create(t *testing.T, e *env, body string) (int, httpapi.Problem) {
	t.Helper()
	resp := invokeEvent(t, e.h, req("POST /tenants", "", authz(adminClaims), body))
	if resp.StatusCode >= 400 {
		return resp.StatusCode, problem(t, resp)
	}
	return resp.StatusCode, httpapi.Problem{}
}

func states(t *testing.T, st *store.Store, id string) [][2]tenant.State {
	t.Helper()
	trail, err := st.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]tenant.State
	for _, a := range trail {
		out = append(out, [2]tenant.State{a.From, a.To})
	}
	return out
}

// TestCreateResumesAfterBillingFailure: a billing failure leaves the tenant
// PROVISIONING with a 503; the identical request resumes it with the same idempotency
// key; any other repeat is a 409.
func TestCreateResumesAfterBillingFailure(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.subs.failures = 1

	status, p := create(t, e, newcoBody)
	if status != 503 || !strings.Contains(p.Detail, "PROVISIONING") || strings.Contains(p.Detail, "stripe") {
		t.Fatalf("first attempt: %d %+v", status, p)
	}
	got, err := e.st.GetTenant(ctx, "tenant_newco")
	if err != nil || got.State != tenant.Provisioning {
		t.Fatalf("after failure: %+v %v", got, err)
	}
	if _, err := e.st.GetEntitlements(ctx, "tenant_newco"); err != nil {
		t.Fatalf("entitlements not written before billing: %v", err)
	}

	// A different body must not take over the half-created tenant.
	if status, p := create(t, e, strings.Replace(newcoBody, "starter", "professional", 1)); status != 409 {
		t.Fatalf("different body on PROVISIONING: %d %+v", status, p)
	}

	if status, p := create(t, e, newcoBody); status != 201 {
		t.Fatalf("resume: %d %+v", status, p)
	}
	got, _ = e.st.GetTenant(ctx, "tenant_newco")
	if got.State != tenant.Active || got.Plan != tenant.Starter || got.Billing.SubscriptionID != "sub_tenant_newco" {
		t.Fatalf("after resume: %+v", got)
	}
	if keys := e.subs.Keys(); !slices.Equal(keys, []string{"create:tenant_newco", "create:tenant_newco"}) {
		t.Fatalf("billing keys %v, want the same key twice", keys)
	}
	want := [][2]tenant.State{{"", tenant.Provisioning}, {tenant.Provisioning, tenant.Active}}
	if s := states(t, e.st, "tenant_newco"); !slices.Equal(s, want) {
		t.Fatalf("audit %v, want %v", s, want)
	}

	// Once ACTIVE, even the identical request is a conflict and changes nothing.
	if status, p := create(t, e, newcoBody); status != 409 || !strings.Contains(p.Detail, "already exists") {
		t.Fatalf("repeat after success: %d %+v", status, p)
	}
	if again, _ := e.st.GetTenant(ctx, "tenant_newco"); again.Version != got.Version {
		t.Fatalf("repeat changed the tenant: %+v", again)
	}
	if n := len(e.subs.Keys()); n != 2 {
		t.Fatalf("billing called %d times", n)
	}
}

// failingProvisioner fails its first n calls, then delegates.
type failingProvisioner struct {
	next  httpapi.Provisioner
	fails atomic.Int32
}

func (f *failingProvisioner) Initial(ctx context.Context, id string, plan tenant.Plan) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("dynamodb: throttled")
	}
	return f.next.Initial(ctx, id, plan)
}

func TestCreateResumesAfterProvisioningFailure(t *testing.T) {
	var prov *failingProvisioner
	e := newEnv(t, func(c *httpapi.Config) {
		prov = &failingProvisioner{next: c.Provisioner}
		prov.fails.Store(1)
		c.Provisioner = prov
	})
	// Without an id the 503 must tell the client which id to repeat with.
	status, p := create(t, e, `{"name": "Nameless", "plan": "free"}`)
	if status != 503 || !strings.Contains(p.Detail, `"id": "tenant_`) {
		t.Fatalf("first attempt: %d %+v", status, p)
	}
	id := p.Detail[strings.Index(p.Detail, `"id": "`)+7:]
	id = id[:strings.Index(id, `"`)]
	if k := e.subs.Keys(); len(k) != 0 {
		t.Fatalf("billing called before provisioning succeeded: %v", k)
	}
	if status, p := create(t, e, `{"id": "`+id+`", "name": "Nameless", "plan": "free"}`); status != 201 {
		t.Fatalf("resume: %d %+v", status, p)
	}
}

func TestCreateWithBillingDisabled(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config) { c.Subscriptions = nil })
	if status, p := create(t, e, newcoBody); status != 201 {
		t.Fatalf("create: %d %+v", status, p)
	}
	got, _ := e.st.GetTenant(context.Background(), "tenant_newco")
	if got.State != tenant.Active || got.Billing != (tenant.BillingRef{}) {
		t.Fatalf("stored %+v", got)
	}
}

// TestConcurrentIdenticalCreates: racing identical creates make one ACTIVE tenant with
// one audit line per transition; losers get 409 (or 201 if they resumed first).
func TestConcurrentIdenticalCreates(t *testing.T) {
	e := newEnv(t)
	const n = 8
	codes := make(chan int, n)
	for range n {
		go func() {
			resp := invokeEvent(t, e.h, req("POST /tenants", "", authz(adminClaims), newcoBody))
			codes <- resp.StatusCode
		}()
	}
	created := 0
	for range n {
		switch c := <-codes; c {
		case 201:
			created++
		case 409:
		default:
			t.Errorf("status %d", c)
		}
	}
	if created != 1 {
		t.Errorf("%d creates answered 201, want exactly 1", created)
	}
	want := [][2]tenant.State{{"", tenant.Provisioning}, {tenant.Provisioning, tenant.Active}}
	if s := states(t, e.st, "tenant_newco"); !slices.Equal(s, want) {
		t.Fatalf("audit %v, want %v", s, want)
	}
}
