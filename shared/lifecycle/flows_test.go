package lifecycle_test

// End-to-end tests of deletion, suspension and reactivation as they run in AWS: API
// Gateway events through the real api bootstrap, the real statemachines/*.asl.json on
// the local Step Functions service, the real step bootstraps against moto and
// stripe-mock. Faults are injected from outside, through the local Lambda service.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func deleteTenant(t *testing.T, s *stack.Stack, id string, body any, claims map[string]string) events.APIGatewayV2HTTPResponse {
	return st.Call(t, s, st.Event(t, "DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, body, claims))
}

func reactivate(t *testing.T, s *stack.Stack, id string, plan tenant.Plan, claims map[string]string) events.APIGatewayV2HTTPResponse {
	return st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/reactivate", "/tenants/{id}/reactivate", map[string]string{"id": id}, map[string]any{"plan": plan}, claims))
}

func suspend(t *testing.T, s *stack.Stack, id, reason string) events.APIGatewayV2HTTPResponse {
	return st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/suspend", "/tenants/{id}/suspend", map[string]string{"id": id}, map[string]any{"reason": reason}, st.Admin))
}

// billingState replays the recorded Stripe subscription updates into the effective
// price and cancel_at_period_end (testenv.ReplaySubscription).
func billingState(s *stack.Stack, subID string, price string, canceling bool) (string, bool) {
	return testenv.ReplaySubscription(s.Stripe.RequestsTo("POST /v1/subscriptions/"+subID), price, canceling)
}

// deletedClone is a copy of an example tenant that was soft-deleted at deletedAt with
// a 30-day retention: state DELETED, entitlements revoked, subscription canceling at
// the end of its period (on the plan's price, as Stripe holds it).
func deletedClone(t *testing.T, s *stack.Stack, example, id string, deletedAt time.Time) {
	t.Helper()
	ctx := context.Background()
	src := st.Tenant(t, s, example)
	c := *src
	after := deletedAt.AddDate(0, 0, 30)
	c.ID, c.State, c.DeletedAt, c.PurgeAfter, c.RetentionDays = id, tenant.Deleted, &deletedAt, &after, 30
	c.Billing.SubscriptionID, c.Billing.CustomerID = "sub_"+id, "cus_"+id
	if _, err := s.Store().CreateTenant(ctx, &c, store.Actor{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store().PutEntitlements(ctx, &tenant.Entitlements{TenantID: id, Plan: c.Plan, Access: tenant.AccessRevoked, EventPublished: true}, 0); err != nil {
		t.Fatal(err)
	}
	s.Stripe.SetSubscription(testenv.SubscriptionState{ID: c.Billing.SubscriptionID, Customer: c.Billing.CustomerID, Status: "active",
		Price: "price_" + string(c.Plan), CancelAtPeriodEnd: true, Metadata: map[string]string{"tenant_id": id}})
}

// TestSoftDeleteAndWinBack: a professional tenant deletes itself with a 30-day
// retention (its own token), is DELETED with purge_after set, cannot be upgraded, and
// wins itself back onto professional.
func TestSoftDeleteAndWinBack(t *testing.T) {
	s := st.Shared(t)
	id := "winback-pro"
	st.Clone(t, s, "tenant_enterprise", id)
	own := st.TenantToken(id)
	before := time.Now().UTC()
	resp := deleteTenant(t, s, id, map[string]any{"retention_days": 30}, own)
	opID := st.OperationID(t, resp)
	body := st.Body(t, resp)
	if body["retention_days"] != float64(30) {
		t.Fatalf("answer %s", resp.Body)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("deletion %v", op)
	}
	tn := st.Tenant(t, s, id)
	if tn.State != tenant.Deleted || tn.DeletedAt == nil || tn.PurgeAfter == nil || tn.RetentionDays != 30 || tn.Operation != "" {
		t.Fatalf("after deletion: %+v", tn)
	}
	if got := tn.PurgeAfter.Sub(*tn.DeletedAt); got != 30*24*time.Hour || tn.DeletedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("deleted_at %v purge_after %v", tn.DeletedAt, tn.PurgeAfter)
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessRevoked || e.Limits != (tenant.Limits{}) {
		t.Fatalf("entitlements after deletion %+v", e)
	}
	if _, canceling := billingState(s, "sub_"+id, "price_professional", false); !canceling {
		t.Fatal("subscription not set to cancel at period end")
	}
	// DELETED -> ACTIVE directly is not a transition: an upgrade is refused naming
	// the states a deleted tenant may move to.
	up := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/upgrade", "/tenants/{id}/upgrade", map[string]string{"id": id}, map[string]any{"plan": "enterprise"}, st.Admin))
	if up.StatusCode != 409 || !strings.Contains(up.Body, "REACTIVATING") || !strings.Contains(up.Body, "PURGED") {
		t.Fatalf("upgrade of a deleted tenant: %d %s", up.StatusCode, up.Body)
	}
	// Win back, self-service.
	opID = st.OperationID(t, reactivate(t, s, id, tenant.Professional, own))
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("reactivation %v", op)
	}
	tn = st.Tenant(t, s, id)
	pro, _ := tenant.DefaultCatalog().Limits(tenant.Professional)
	if tn.State != tenant.Active || tn.Plan != tenant.Professional || tn.DeletedAt != nil || tn.PurgeAfter != nil || tn.RetentionDays != 0 {
		t.Fatalf("after win-back: %+v", tn)
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessActive || e.Limits != pro {
		t.Fatalf("entitlements after win-back %+v", e)
	}
	assertBilled(t, s, id, testenv.SubscriptionState{ID: "sub_" + id, Status: "active", Price: "price_professional"})
	want := []string{"ACTIVE->DELETING", "DELETING->DELETED", "DELETED->REACTIVATING", "REACTIVATING->ACTIVE"}
	if tr := st.Transitions(t, s, id); !slices.Equal(tr, want) {
		t.Fatalf("audit %v, want %v", tr, want)
	}
	if ev := st.Events(t, s, id); !slices.Equal(ev, []string{"TenantDeleted", "TenantEntitlementsChanged", "TenantReactivated", "TenantEntitlementsChanged"}) {
		t.Fatalf("events %v", ev)
	}
}

// TestRetentionEnded: 91 days after its deletion (past purge_after, before any purge
// ran) a tenant cannot be reactivated.
func TestRetentionEnded(t *testing.T) {
	s := st.Shared(t)
	id := "expired-acme"
	deletedClone(t, s, "tenant_acme", id, time.Now().UTC().AddDate(0, 0, -91))
	resp := reactivate(t, s, id, tenant.Starter, st.Admin)
	if resp.StatusCode != 409 || !strings.Contains(resp.Body, "retention period expired") {
		t.Fatalf("reactivation after retention: %d %s", resp.StatusCode, resp.Body)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Deleted || tn.Version != 1 {
		t.Fatalf("refused reactivation changed the tenant: %+v", tn)
	}
}

// TestSuspendedReactivatedOntoStarter: the seeded suspended tenant is reactivated by
// an operator; its own token may not do it.
func TestSuspendedReactivatedOntoStarter(t *testing.T) {
	s := st.Shared(t)
	id := "tenant_suspended"
	if resp := reactivate(t, s, id, tenant.Starter, st.TenantToken(id)); resp.StatusCode != 403 {
		t.Fatalf("tenant token reactivating a suspension: %d %s", resp.StatusCode, resp.Body)
	}
	opID := st.OperationID(t, reactivate(t, s, id, tenant.Starter, st.Admin))
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("reactivation %v", op)
	}
	tn := st.Tenant(t, s, id)
	if tn.State != tenant.Active || tn.Plan != tenant.Starter || tn.SuspendReason != "" {
		t.Fatalf("after reactivation: %+v", tn)
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessActive {
		t.Fatalf("entitlements %+v", e)
	}
	assertBilled(t, s, id, testenv.SubscriptionState{ID: "sub_" + id, Status: "active", Price: "price_starter"})
	if tr := st.Transitions(t, s, id); !slices.Equal(tr, []string{"SUSPENDED->REACTIVATING", "REACTIVATING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
}

// TestSuspendRestrictsAccess: an operator suspends a tenant; access becomes read and
// export only, a plan change is refused, and a deletion still works from there.
func TestSuspendRestrictsAccess(t *testing.T) {
	s := st.Shared(t)
	id := "suspend-acme"
	st.Clone(t, s, "tenant_acme", id)
	if resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/suspend", "/tenants/{id}/suspend", map[string]string{"id": id}, map[string]any{"reason": "x"}, st.TenantToken(id))); resp.StatusCode != 403 {
		t.Fatalf("tenant token suspending itself: %d", resp.StatusCode)
	}
	opID := st.OperationID(t, suspend(t, s, id, "fraud review"))
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("suspension %v", op)
	}
	tn := st.Tenant(t, s, id)
	if tn.State != tenant.Suspended || tn.SuspendReason != "fraud review" || tn.Operation != "" {
		t.Fatalf("after suspension: %+v", tn)
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessSuspended {
		t.Fatalf("entitlements %+v", e)
	}
	if resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/upgrade", "/tenants/{id}/upgrade", map[string]string{"id": id}, map[string]any{"plan": "professional"}, st.Admin)); resp.StatusCode != 409 {
		t.Fatalf("upgrade while suspended: %d %s", resp.StatusCode, resp.Body)
	}
	opID = st.OperationID(t, deleteTenant(t, s, id, nil, st.Admin))
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("deletion of a suspended tenant %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Deleted || tn.RetentionDays != tenant.DefaultRetentionDays {
		t.Fatalf("after deletion: %+v", tn)
	}
	if ev := st.Events(t, s, id); !slices.Equal(ev, []string{"TenantSuspended", "TenantEntitlementsChanged", "TenantDeleted", "TenantEntitlementsChanged"}) {
		t.Fatalf("events %v", ev)
	}
}

// faultModes are {fail before, fail after the handler} x {once, always}.
func faultModes(fn string) []struct {
	name     string
	spec     lambdasvc.FaultSpec
	recovers bool
} {
	return []struct {
		name     string
		spec     lambdasvc.FaultSpec
		recovers bool
	}{
		{"before-once", lambdasvc.FaultSpec{Function: fn, Count: 1, ErrorType: "Lambda.ServiceException", Message: "injected before " + fn}, true},
		{"before-always", lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault", Message: "injected before " + fn}, false},
		{"after-once", lambdasvc.FaultSpec{Function: fn, After: true, Count: 1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + fn}, true},
		{"after-always", lambdasvc.FaultSpec{Function: fn, After: true, Count: -1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + fn}, false},
	}
}

// lifecycleCase is one flow of the fault matrix: how to set its tenant up, start it,
// and what the tenant looks like when it succeeded or when it was rolled back.
type lifecycleCase struct {
	kind  string
	name  string // the case's name, when the kind is not enough
	setup func(t *testing.T, s *stack.Stack, id string)
	start func(t *testing.T, s *stack.Stack, id string) string
	check func(t *testing.T, s *stack.Stack, id string, succeeded bool)
}

var lifecycleCases = []lifecycleCase{
	{
		kind:  tenant.KindDeletion,
		setup: func(t *testing.T, s *stack.Stack, id string) { st.Clone(t, s, "tenant_acme", id) },
		start: func(t *testing.T, s *stack.Stack, id string) string {
			return st.OperationID(t, deleteTenant(t, s, id, nil, st.Admin))
		},
		check: func(t *testing.T, s *stack.Stack, id string, succeeded bool) {
			tn, e := st.Tenant(t, s, id), st.Entitlements(t, s, id)
			_, canceling := billingState(s, "sub_"+id, "price_starter", false)
			if succeeded && (tn.State != tenant.Deleted || tn.PurgeAfter == nil || e.Access != tenant.AccessRevoked || !canceling) {
				t.Errorf("deleted: state %s purge_after %v access %s canceling %v", tn.State, tn.PurgeAfter, e.Access, canceling)
			}
			if !succeeded && (tn.State != tenant.Active || tn.PurgeAfter != nil || (e.Access != tenant.AccessActive && e.Access != "") || canceling) {
				t.Errorf("rolled back: state %s purge_after %v access %s canceling %v", tn.State, tn.PurgeAfter, e.Access, canceling)
			}
		},
	},
	{
		kind: tenant.KindReactivation,
		setup: func(t *testing.T, s *stack.Stack, id string) {
			deletedClone(t, s, "tenant_acme", id, time.Now().UTC().Add(-time.Hour))
		},
		start: func(t *testing.T, s *stack.Stack, id string) string {
			return st.OperationID(t, reactivate(t, s, id, tenant.Professional, st.Admin))
		},
		check: func(t *testing.T, s *stack.Stack, id string, succeeded bool) {
			tn, e := st.Tenant(t, s, id), st.Entitlements(t, s, id)
			price, canceling := billingState(s, "sub_"+id, "price_starter", true)
			if succeeded && (tn.State != tenant.Active || tn.Plan != tenant.Professional || e.Access != tenant.AccessActive || e.Plan != tenant.Professional || price != "price_professional") {
				t.Errorf("reactivated: %s on %s, entitlements %s/%s, price %s", tn.State, tn.Plan, e.Access, e.Plan, price)
			}
			if !succeeded && (tn.State != tenant.Deleted || tn.Plan != tenant.Starter || e.Access != tenant.AccessRevoked || price != "price_starter" || !canceling) {
				t.Errorf("rolled back: %s on %s, entitlements %s, price %s canceling %v", tn.State, tn.Plan, e.Access, price, canceling)
			}
		},
	},
	{
		// A win-back after the paid period ran out: Stripe has ended the
		// subscription, so the reactivation creates a new one (and its compensation
		// cancels it).
		kind: tenant.KindReactivation, name: "reactivation-of-ended",
		setup: func(t *testing.T, s *stack.Stack, id string) {
			deletedClone(t, s, "tenant_acme", id, time.Now().UTC().Add(-time.Hour))
			s.Stripe.SetSubscription(endedSubscription(id))
		},
		start: func(t *testing.T, s *stack.Stack, id string) string {
			return st.OperationID(t, reactivate(t, s, id, tenant.Professional, st.Admin))
		},
		check: func(t *testing.T, s *stack.Stack, id string, succeeded bool) {
			tn, e := st.Tenant(t, s, id), st.Entitlements(t, s, id)
			var live []string
			for _, sub := range subscriptions(s, endedSubscription(id)) {
				if sub.Customer == "cus_"+id && !sub.Ended() {
					live = append(live, sub.ID+"@"+sub.Price)
				}
			}
			if succeeded {
				if tn.State != tenant.Active || tn.Plan != tenant.Professional || e.Access != tenant.AccessActive {
					t.Errorf("reactivated: %s on %s, entitlements %s", tn.State, tn.Plan, e.Access)
				}
				if want := []string{tn.Billing.SubscriptionID + "@price_professional"}; !slices.Equal(live, want) {
					t.Errorf("live subscriptions %v, want %v", live, want)
				}
				return
			}
			if tn.State != tenant.Deleted || tn.Plan != tenant.Starter || e.Access != tenant.AccessRevoked || len(live) != 0 {
				t.Errorf("rolled back: %s on %s, entitlements %s, live subscriptions %v", tn.State, tn.Plan, e.Access, live)
			}
		},
	},
}

// endedSubscription is the subscription of tenant id as Stripe holds it once it has
// ended: canceled, on the starter price.
func endedSubscription(id string) testenv.SubscriptionState {
	return testenv.SubscriptionState{ID: "sub_" + id, Customer: "cus_" + id, Status: "canceled", Price: "price_starter",
		Metadata: map[string]string{"tenant_id": id}}
}

func (c lifecycleCase) String() string {
	if c.name != "" {
		return c.name
	}
	return c.kind
}

// TestLifecycleFaultMatrix runs every forward step of deletion and reactivation under
// each fault mode. After each execution: the tenant is in no busy state and held by
// nobody; it is where the outcome says (deleted / reactivated, or back where it
// was), with entitlements and billing agreeing; a Finish whose answer was lost ends
// SUCCEEDED.
func TestLifecycleFaultMatrix(t *testing.T) {
	s := st.Shared(t)
	steps := []string{"LifecycleClaimFunction", "LifecycleBillingFunction", "LifecycleAccessFunction", "LifecycleFinishFunction"}
	run, passed := 0, 0
	for _, c := range lifecycleCases {
		for _, step := range steps {
			for _, m := range faultModes(step) {
				run++
				id := fmt.Sprintf("lfm-%d-%s", run, c.kind)
				ok := t.Run(fmt.Sprintf("%s/%s/%s", c, step, m.name), func(t *testing.T) {
					c.setup(t, s, id)
					defer s.Lambda.ClearFaults()
					if err := s.Lambda.Inject(m.spec); err != nil {
						t.Fatal(err)
					}
					opID := c.start(t, s, id)
					op := st.WaitDone(t, s, opID)
					s.Lambda.ClearFaults()
					succeeds := m.recovers || (step == "LifecycleFinishFunction" && m.spec.After)
					want := "FAILED"
					if succeeds {
						want = "SUCCEEDED"
					}
					tn := st.Tenant(t, s, id)
					if op["status"] != want || tn.Operation != "" || tn.State == tenant.Deleting || tn.State == tenant.Reactivating {
						t.Fatalf("operation %v; tenant %s held by %q", op["status"], tn.State, tn.Operation)
					}
					if op["needs_attention"] == true || tn.Attention != "" {
						t.Errorf("needs attention after a complete compensation: %v", op)
					}
					c.check(t, s, id, succeeds)
				})
				if ok {
					passed++
				}
			}
		}
	}
	t.Logf("lifecycle fault matrix: %d cases run, %d passed", run, passed)
}

// TestLifecycleCompensationFailingAlways: the last forward step and every compensation
// fail for good. The tenant is still released where it came from, the operation says
// what could not be undone, and once the faults are gone the operator retry finishes
// the compensation.
func TestLifecycleCompensationFailingAlways(t *testing.T) {
	s := st.Shared(t)
	for i, c := range lifecycleCases {
		t.Run(c.String(), func(t *testing.T) {
			id := fmt.Sprintf("lcomp-%d", i)
			c.setup(t, s, id)
			defer s.Lambda.ClearFaults()
			for _, fn := range []string{"LifecycleFinishFunction", "LifecycleUndoAccessFunction", "LifecycleUndoBillingFunction"} {
				if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault", Message: "injected in " + fn}); err != nil {
					t.Fatal(err)
				}
			}
			opID := c.start(t, s, id)
			op := st.WaitDone(t, s, opID)
			tn := st.Tenant(t, s, id)
			inc := fmt.Sprint(op["compensation_incomplete"])
			if op["status"] != "FAILED" || op["needs_attention"] != true || !strings.Contains(inc, "billing") || !strings.Contains(inc, "entitlements") {
				t.Fatalf("operation %v", op)
			}
			if tn.State == tenant.Deleting || tn.State == tenant.Reactivating || tn.Operation != "" || tn.Attention != opID {
				t.Fatalf("tenant %s held by %q attention %q", tn.State, tn.Operation, tn.Attention)
			}
			s.Lambda.ClearFaults()
			resp := st.Call(t, s, st.Event(t, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil, st.Admin))
			if resp.StatusCode != 202 {
				t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
			}
			op = st.WaitDone(t, s, opID)
			if op["status"] != "FAILED" || op["needs_attention"] == true || op["compensation_incomplete"] != nil {
				t.Fatalf("after retry: %v", op)
			}
			if tn := st.Tenant(t, s, id); tn.Attention != "" || tn.Operation != "" {
				t.Fatalf("after retry: tenant %+v", tn)
			}
			c.check(t, s, id, false)
		})
	}
}

// TestSuspensionAccessFailingNeedsAttention: a suspension is never undone; when its
// access step fails for good the tenant stays SUSPENDED and the operation needs
// attention; the operator retry completes it.
func TestSuspensionAccessFailingNeedsAttention(t *testing.T) {
	s := st.Shared(t)
	id := "susp-fail"
	st.Clone(t, s, "tenant_acme", id)
	defer s.Lambda.ClearFaults()
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleAccessFunction", Count: -1, ErrorType: "InjectedFault"}); err != nil {
		t.Fatal(err)
	}
	opID := st.OperationID(t, suspend(t, s, id, "chargeback"))
	op := st.WaitDone(t, s, opID)
	if tn := st.Tenant(t, s, id); op["status"] != "FAILED" || op["needs_attention"] != true || tn.State != tenant.Suspended || tn.Attention != opID {
		t.Fatalf("operation %v tenant %s attention %q", op, tn.State, tn.Attention)
	}
	s.Lambda.ClearFaults()
	if resp := st.Call(t, s, st.Event(t, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil, st.Admin)); resp.StatusCode != 202 {
		t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("after retry: %v", op)
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessSuspended {
		t.Fatalf("entitlements %+v", e)
	}
}
