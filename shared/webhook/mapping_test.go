package webhook_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/tenant"
	"github.com/tenantflow/tenantflow/shared/webhook"
)

// TestMappingTable is the table of docs/flows.md: intent of each event, and the
// action for each tenant situation.
func TestMappingTable(t *testing.T) {
	intents := []struct {
		typ, status string
		want        webhook.Intent
	}{
		{webhook.SubscriptionUpdated, "unpaid", webhook.SuspendNonpayment},
		{webhook.SubscriptionUpdated, "canceled", webhook.SuspendCanceled},
		{webhook.SubscriptionDeleted, "canceled", webhook.SuspendCanceled},
		{webhook.SubscriptionUpdated, "active", webhook.Reactivate},
		{webhook.InvoicePaid, "", webhook.Reactivate},
		{webhook.SubscriptionUpdated, "past_due", webhook.None},
		{webhook.SubscriptionUpdated, "incomplete", webhook.None},
		{"charge.succeeded", "", webhook.None},
	}
	for _, c := range intents {
		if got := webhook.IntentOf(webhook.Fact{Type: c.typ, Status: c.status}); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.typ, c.status, got, c.want)
		}
	}
	free := func(s tenant.State, reason string) *tenant.Tenant {
		return &tenant.Tenant{State: s, SuspendReason: reason}
	}
	held := func(s tenant.State) *tenant.Tenant { return &tenant.Tenant{State: s, Operation: "op_x"} }
	actions := []struct {
		in   webhook.Intent
		t    *tenant.Tenant
		want webhook.Action
	}{
		{webhook.SuspendNonpayment, free(tenant.Active, ""), webhook.StartSuspension},
		{webhook.SuspendCanceled, free(tenant.Active, ""), webhook.StartSuspension},
		{webhook.SuspendNonpayment, free(tenant.Suspended, "fraud"), webhook.NoChange},
		{webhook.SuspendNonpayment, held(tenant.Upgrading), webhook.Busy},
		{webhook.SuspendNonpayment, held(tenant.Reactivating), webhook.Busy},
		{webhook.SuspendNonpayment, &tenant.Tenant{State: tenant.Active, Attention: "op_y"}, webhook.Busy},
		{webhook.Reactivate, free(tenant.Suspended, webhook.ReasonNonpayment), webhook.StartReactivation},
		{webhook.Reactivate, free(tenant.Suspended, webhook.ReasonCanceled), webhook.NoChange},
		{webhook.Reactivate, free(tenant.Suspended, "fraud review"), webhook.NoChange},
		{webhook.Reactivate, held(tenant.Suspended), webhook.Busy},
		{webhook.Reactivate, free(tenant.Active, ""), webhook.NoChange},
		{webhook.Reactivate, held(tenant.Reactivating), webhook.NoChange},
	}
	for _, c := range actions {
		if got := webhook.Decide(c.in, c.t); got != c.want {
			t.Errorf("%s on %+v: %s, want %s", c.in, *c.t, got, c.want)
		}
	}
	// A deletion running may still roll back: the event waits for its outcome. Once
	// DELETED or PURGED the tenant is never touched.
	for _, in := range []webhook.Intent{webhook.SuspendNonpayment, webhook.SuspendCanceled, webhook.Reactivate} {
		if got := webhook.Decide(in, held(tenant.Deleting)); got != webhook.Busy {
			t.Errorf("%s on DELETING: %s, want busy", in, got)
		}
		for _, s := range []tenant.State{tenant.Deleted, tenant.Purged} {
			if got := webhook.Decide(in, free(s, "")); got != webhook.NoChange {
				t.Errorf("%s on %s: %s, want no_change", in, s, got)
			}
		}
	}
}

// TestNoSecretRefuses: without a webhook secret every delivery is a 503 (Stripe
// retries) and nothing is read.
func TestNoSecretRefuses(t *testing.T) {
	h := &webhook.Handler{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{Body: "{}"})
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("%v %d %s", err, resp.StatusCode, resp.Body)
	}
}
