package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/shared/webhook"
)

// TestReadFactShapes reads the subscription fact of invoices and subscriptions in the
// 2023-10-16 shape (what stripe-go v76 pins) and in the shape of Stripe's API versions
// since 2025-03-31.basil, where an invoice names its subscription and the metadata
// snapshot only under parent.subscription_details and a subscription's billing period
// moved to its items. Each event goes through the real signature check first.
func TestReadFactShapes(t *testing.T) {
	const secret = "whsec_shapes"
	want := webhook.Fact{EventID: "evt_shape", Created: 1767312000, SubscriptionID: "sub_t1", TenantID: "t1"}
	cases := []struct {
		name, typ, status, object string
		want                      webhook.Fact
	}{
		{"invoice 2023-10-16, subscription id", webhook.InvoicePaid, "",
			`{"object":"invoice","subscription":"sub_t1","subscription_details":{"metadata":{"tenant_id":"t1"}}}`, want},
		{"invoice 2023-10-16, the invoice's own metadata is not the subscription's", webhook.InvoicePaid, "",
			`{"object":"invoice","metadata":{"tenant_id":"someone_else"},"subscription":"sub_t1","subscription_details":{"metadata":{"tenant_id":"t1"}}}`, want},
		{"invoice 2023-10-16, subscription expanded", webhook.InvoicePaid, "",
			`{"object":"invoice","subscription":{"id":"sub_t1","object":"subscription","metadata":{"tenant_id":"t1"}}}`, want},
		{"invoice 2025-03-31.basil, subscription id", webhook.InvoicePaid, "",
			`{"object":"invoice","parent":{"type":"subscription_details","quote_details":null,"subscription_details":{"subscription":"sub_t1","metadata":{"tenant_id":"t1"}}}}`, want},
		{"invoice 2025-03-31.basil, subscription expanded", webhook.InvoicePaid, "",
			`{"object":"invoice","parent":{"type":"subscription_details","subscription_details":{"subscription":{"id":"sub_t1","object":"subscription","metadata":{"tenant_id":"t1"}},"metadata":{}}}}`, want},
		{"invoice 2025-03-31.basil, the invoice's own metadata is not the subscription's", webhook.InvoicePaid, "",
			`{"object":"invoice","metadata":{"tenant_id":"someone_else"},"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_t1","metadata":{"tenant_id":"t1"}}}}`, want},
		{"invoice 2025-03-31.basil of a quote (no subscription)", webhook.InvoicePaid, "",
			`{"object":"invoice","parent":{"type":"quote_details","quote_details":{"quote":"qt_1"},"subscription_details":null}}`,
			webhook.Fact{EventID: "evt_shape", Created: 1767312000}},
		{"subscription 2023-10-16", webhook.SubscriptionUpdated, "unpaid",
			`{"id":"sub_t1","object":"subscription","status":"unpaid","metadata":{"tenant_id":"t1"},"current_period_end":1769904000}`, want},
		{"subscription 2025-03-31.basil", webhook.SubscriptionUpdated, "unpaid",
			`{"id":"sub_t1","object":"subscription","status":"unpaid","metadata":{"tenant_id":"t1"},"items":{"object":"list","data":[{"id":"si_1","current_period_start":1767225600,"current_period_end":1769904000}]}}`, want},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			version := "2023-10-16"
			if strings.Contains(c.name, "basil") {
				version = "2025-03-31.basil"
			}
			body, _ := json.Marshal(map[string]any{"id": "evt_shape", "object": "event", "api_version": version, "created": 1767312000,
				"type": c.typ, "data": map[string]any{"object": json.RawMessage(c.object)}})
			ev, err := webhook.StripeVerifier{Secret: secret}.Verify(body, stack.SignStripeEvent(body, secret, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := webhook.ReadFact(ev)
			if err != nil {
				t.Fatal(err)
			}
			w := c.want
			w.Type, w.Status = c.typ, c.status
			if got != w {
				t.Errorf("read %+v, want %+v", got, w)
			}
		})
	}
}
