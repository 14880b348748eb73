package lifecycle_test

// Billing truth under at-least-once: what Stripe holds after a lifecycle flow, read
// back from the requests the recording proxy saw (it models what Stripe remembers:
// idempotency keys, canceled subscriptions, subscriptions created while their answer
// was lost).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// subscriptions replays every recorded Stripe request onto known (the subscriptions
// that existed before the test's flows ran).
func subscriptions(s *stack.Stack, known ...testenv.SubscriptionState) map[string]testenv.SubscriptionState {
	k := map[string]testenv.SubscriptionState{}
	for _, sub := range known {
		k[sub.ID] = sub
	}
	return testenv.ReplayBilling(s.Stripe.Requests(), k)
}

// assertBilled checks "ACTIVE means billed" from the recorded requests: an ACTIVE
// tenant's subscription is live and on its plan's price.
func assertBilled(t *testing.T, s *stack.Stack, id string, known ...testenv.SubscriptionState) {
	t.Helper()
	tn := st.Tenant(t, s, id)
	if tn.State != tenant.Active {
		t.Fatalf("%s is %s, not ACTIVE", id, tn.State)
	}
	sub, ok := subscriptions(s, known...)[tn.Billing.SubscriptionID]
	if !ok || sub.Ended() || sub.Price != "price_"+string(tn.Plan) {
		t.Errorf("ACTIVE on %s without a live subscription at its price: subscription %q is %+v (known to Stripe: %v)", tn.Plan, tn.Billing.SubscriptionID, sub, ok)
	}
}

// createdFor returns the subscriptions Stripe created for customer, as replayed.
func createdFor(s *stack.Stack, customer string, known ...testenv.SubscriptionState) []testenv.SubscriptionState {
	var out []testenv.SubscriptionState
	subs := subscriptions(s, known...)
	for _, r := range s.Stripe.RequestsTo("POST /v1/subscriptions$") {
		if r.Applied && r.Form.Get("customer") == customer {
			out = append(out, subs[r.ObjectID])
		}
	}
	return out
}

// deliverStripe signs one Stripe event and delivers it to the webhook function.
func deliverStripe(t *testing.T, s *stack.Stack, spec stack.StripeEventSpec) {
	t.Helper()
	body, err := stack.StripeEvent(testenv.RepoRoot(), spec)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /webhooks/stripe", RawPath: "/webhooks/stripe", Body: string(body),
		Headers: map[string]string{"content-type": "application/json; charset=utf-8",
			"stripe-signature": stack.SignStripeEvent(body, stack.StripeWebhookTestSecret, time.Now())},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: "POST /webhooks/stripe", RequestID: "req-" + spec.ID,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/webhooks/stripe"}},
	}
	raw, _ := json.Marshal(ev)
	res, err := s.Lambda.Invoke(context.Background(), "StripeWebhookFunction", raw)
	if err != nil || res.FunctionError != "" {
		t.Fatalf("webhook: %v %s", err, res.Payload)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook answered %s", res.Payload)
	}
}

// waitReleased waits until no operation holds the tenant and returns it.
func waitReleased(t *testing.T, s *stack.Stack, id string, state tenant.State) *tenant.Tenant {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if tn := st.Tenant(t, s, id); tn.State == state && tn.Operation == "" {
			return tn
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("%s did not settle in %s", id, state)
	return nil
}

// TestReactivateCanceledSubscription: Stripe ended a tenant's subscription
// (customer.subscription.deleted suspended it); an operator reactivates it, onto its
// own plan and onto another one. The billing step reads the subscription's status,
// finds it canceled and creates a new subscription at the plan's price for the same
// customer, marked with the operation; the tenant is ACTIVE and billed.
func TestReactivateCanceledSubscription(t *testing.T) {
	s := st.Shared(t)
	for i, plan := range []tenant.Plan{tenant.Starter, tenant.Professional} {
		t.Run("onto "+string(plan), func(t *testing.T) {
			id := fmt.Sprintf("ended-%d", i)
			st.Clone(t, s, "tenant_acme", id) // starter
			ended := endedSubscription(id)
			s.Stripe.SetSubscription(ended)
			deliverStripe(t, s, stack.StripeEventSpec{Type: "customer.subscription.deleted", TenantID: id, ID: "evt_ended_" + id})
			if tn := waitReleased(t, s, id, tenant.Suspended); !strings.Contains(tn.SuspendReason, "cancel") {
				t.Fatalf("suspended for %q", tn.SuspendReason)
			}
			opID := st.OperationID(t, reactivate(t, s, id, plan, st.Admin))
			if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
				t.Fatalf("reactivation %v", op)
			}
			assertBilled(t, s, id, ended)
			var created []testenv.StripeRequest
			for _, r := range s.Stripe.RequestsTo("POST /v1/subscriptions$") {
				if r.Form.Get("customer") == ended.Customer {
					created = append(created, r)
				}
			}
			if len(created) != 1 {
				t.Fatalf("%d subscription creates for %s, want 1", len(created), ended.Customer)
			}
			c := created[0]
			if c.Form.Get("customer") != "cus_"+id || c.Form.Get("items[0][price]") != "price_"+string(plan) || c.IdempotencyKey != opID+":0:billing-new" ||
				c.Form.Get("metadata[tenant_id]") != id || c.Form.Get("metadata[operation_id]") != opID || c.Form.Get("metadata[attempt]") != "0" {
				t.Errorf("create %s key %q form %v", c.Path, c.IdempotencyKey, c.Form)
			}
			if tn := st.Tenant(t, s, id); tn.Billing.SubscriptionID != c.ObjectID || tn.Plan != plan {
				t.Errorf("tenant on %s with subscription %q, want %q", tn.Plan, tn.Billing.SubscriptionID, c.ObjectID)
			}
			if n := len(s.Stripe.RequestsTo("POST /v1/subscriptions/" + ended.ID)); n != 0 {
				t.Errorf("%d updates sent to the canceled subscription", n)
			}
		})
	}
}

// TestLostSubscriptionCreateIsCompensated: a win-back after the paid period ran out
// creates a new subscription; Stripe creates it but the answer is lost. The undo
// finds that subscription again (the operation's metadata on the customer's
// subscriptions) and cancels it, never the tenant's old one; when it cannot, the
// operation needs attention, and the operator retry (a new attempt, so new
// idempotency keys) finishes it.
func TestLostSubscriptionCreateIsCompensated(t *testing.T) {
	s := st.Shared(t)
	cases := []struct {
		name string
		// lose is how many answers of the create are lost (-1: all of them).
		lose int
		// failFinish makes the later step fail so that compensation runs.
		failFinish bool
		// cancelFails answers the undo's cancel with a 500 (stored under its key).
		cancelFails bool
	}{
		{name: "answer lost on every try", lose: -1},
		{name: "answer lost once, then a later step fails", lose: 1, failFinish: true},
		{name: "answer lost and the cancel fails", lose: -1, cancelFails: true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("lostnew-%d", i)
			deletedClone(t, s, "tenant_acme", id, time.Now().UTC().Add(-time.Hour))
			ended := endedSubscription(id)
			s.Stripe.SetSubscription(ended)
			defer s.Lambda.ClearFaults()
			defer s.Stripe.ClearFaults()
			s.Stripe.LoseNext(c.lose, "POST /v1/subscriptions$")
			if c.failFinish {
				if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleFinishFunction", Count: -1, ErrorType: "InjectedFault", Message: "finish failed"}); err != nil {
					t.Fatal(err)
				}
			}
			if c.cancelFails {
				s.Stripe.FailNext(1, "DELETE /v1/subscriptions/", 500, "api_error")
			}
			opID := st.OperationID(t, reactivate(t, s, id, tenant.Professional, st.Admin))
			op := st.WaitDone(t, s, opID)
			s.Lambda.ClearFaults()
			s.Stripe.ClearFaults()
			tn := st.Tenant(t, s, id)
			created := createdFor(s, ended.Customer, ended)
			if len(created) == 0 {
				t.Fatal("the test needs a subscription created by the operation")
			}
			if op["status"] != "FAILED" || tn.State != tenant.Deleted || tn.Operation != "" {
				t.Fatalf("operation %v; tenant %s held by %q", op["status"], tn.State, tn.Operation)
			}
			if !c.cancelFails {
				if op["needs_attention"] == true {
					t.Errorf("needs attention after a complete compensation: %v", op)
				}
				for _, sub := range created {
					if !sub.Ended() {
						t.Errorf("subscription %s created by %s still live after its compensation: %+v", sub.ID, opID, sub)
					}
				}
				return
			}
			if op["needs_attention"] != true || fmt.Sprint(op["compensation_incomplete"]) != "[billing]" || tn.Attention != opID {
				t.Fatalf("a subscription that could not be canceled must need attention: %v, tenant attention %q", op, tn.Attention)
			}
			// Stripe replays the first answer (the 500) to the same key; the operator
			// retry is a new attempt with new keys and cancels it.
			resp := st.Call(t, s, st.Event(t, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil, st.Admin))
			if resp.StatusCode != 202 {
				t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
			}
			if op := st.WaitDone(t, s, opID); op["status"] != "FAILED" || op["needs_attention"] == true {
				t.Fatalf("after retry: %v", op)
			}
			for _, sub := range createdFor(s, ended.Customer, ended) {
				if !sub.Ended() {
					t.Errorf("subscription %s still live after the retry: %+v", sub.ID, sub)
				}
			}
			var keys []string
			for _, r := range s.Stripe.RequestsTo("DELETE /v1/subscriptions/") {
				if strings.HasPrefix(r.IdempotencyKey, opID+":") {
					keys = append(keys, fmt.Sprintf("%s=%d", r.IdempotencyKey, r.Status))
				}
			}
			if len(keys) < 2 || !strings.HasPrefix(keys[0], opID+":0:") || !strings.HasPrefix(keys[len(keys)-1], opID+":1:") || !strings.HasSuffix(keys[len(keys)-1], "=200") {
				t.Errorf("cancels %v: want attempt 0's key answered 500, then attempt 1's new key", keys)
			}
		})
	}
}
