package webhook_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/webhook"
)

// fixtureOutcomes is what each events/stripe-webhook fixture does when Stripe delivers
// it, signed, for the seeded ACTIVE tenant_acme on a fresh stack.
var fixtureOutcomes = map[string]string{
	"charge.succeeded":                       webhook.OutcomeIgnored,
	"customer.subscription.deleted":          "suspension_started",
	"customer.subscription.updated-active":   "no_change",
	"customer.subscription.updated-past_due": webhook.OutcomeIgnored,
	"customer.subscription.updated-unpaid":   "suspension_started",
	"invoice.paid":                           "no_change",
	// The same events in the shape of Stripe's 2025 API versions (2025-03-31.basil on).
	"customer.subscription.updated-unpaid-2025": "suspension_started",
	"invoice.paid-2025":                         "no_change",
}

// TestStripeFixtures delivers every Stripe event fixture once, as API Gateway would
// hand it to the function (built for tenant_acme and signed with the local secret),
// and checks the answer. The fixtures are payloads, not Lambda events, so what is
// invoked (also by `make sam-local`) is the delivery built from each.
func TestStripeFixtures(t *testing.T) {
	types := stack.StripeEventTypes(testenv.RepoRoot())
	for _, typ := range types {
		if _, ok := fixtureOutcomes[typ]; !ok {
			t.Errorf("events/stripe-webhook/%s.json has no expected outcome in fixtureOutcomes", typ)
		}
	}
	for typ := range fixtureOutcomes {
		if !slices.Contains(types, typ) {
			t.Errorf("fixtureOutcomes names %s, which is not in events/stripe-webhook", typ)
		}
	}
	for _, typ := range types {
		want, ok := fixtureOutcomes[typ]
		if !ok {
			continue
		}
		t.Run(typ, func(t *testing.T) {
			s := st.Shared(t)
			root := testenv.RepoRoot()
			body, err := stack.StripeEvent(root, stack.StripeEventSpec{Type: typ, TenantID: "tenant_acme"})
			if err != nil {
				t.Fatal(err)
			}
			raw := deliveryEvent(t, body, stack.SignStripeEvent(body, stack.StripeWebhookTestSecret, time.Now()))
			res := st.Fixture(t, s, fn, "stripe-webhook/"+typ+".json", raw, fmt.Sprintf("HTTP 200 %s", want))
			if res.FunctionError != "" {
				t.Fatalf("function error: %s", res.Payload)
			}
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(res.Payload, &resp); err != nil {
				t.Fatalf("answer %s: %v", res.Payload, err)
			}
			var got webhook.Result
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || resp.StatusCode != 200 || !got.Received || got.Outcome != want {
				t.Errorf("answer %d %s, want 200 with outcome %q", resp.StatusCode, resp.Body, want)
			}
		})
	}
}

// deliveryEvent is the API Gateway v2 event of one Stripe delivery (as deliver sends).
func deliveryEvent(t *testing.T, body []byte, sig string) []byte {
	t.Helper()
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /webhooks/stripe", RawPath: "/webhooks/stripe", Body: string(body),
		Headers: map[string]string{"content-type": "application/json; charset=utf-8", "stripe-signature": sig},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "POST /webhooks/stripe", RequestID: "req-" + t.Name(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/webhooks/stripe"},
		},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
