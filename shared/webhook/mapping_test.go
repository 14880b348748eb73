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
// action for each tenant situation (the lifecycle policy's answer for Stripe).
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
	free := func(s tenant.State, cause string) *tenant.Tenant {
		return &tenant.Tenant{State: s, SuspendCause: cause, SuspendReason: "why: " + cause}
	}
	held := func(s tenant.State) *tenant.Tenant { return &tenant.Tenant{State: s, Operation: "op_x"} }
	actions := []struct {
		in   webhook.Intent
		t    *tenant.Tenant
		want webhook.Action
	}{
		{webhook.SuspendNonpayment, free(tenant.Active, ""), webhook.StartSuspension},
		{webhook.SuspendCanceled, free(tenant.Active, ""), webhook.StartSuspension},
		{webhook.SuspendNonpayment, free(tenant.Suspended, tenant.CauseOperator), webhook.NoChange},
		{webhook.SuspendNonpayment, held(tenant.Upgrading), webhook.Busy},
		{webhook.SuspendNonpayment, held(tenant.Reactivating), webhook.Busy},
		{webhook.SuspendNonpayment, &tenant.Tenant{State: tenant.Active, Attention: "op_y"}, webhook.Busy},
		// Waiting for an operator, every event waits: the operator's retry or resolve
		// decides where the tenant is, and the event applies on top of it.
		{webhook.Reactivate, &tenant.Tenant{State: tenant.Active, Attention: "op_y"}, webhook.Busy},
		{webhook.SuspendNonpayment, &tenant.Tenant{State: tenant.Suspended, SuspendCause: tenant.CauseNonpayment, Attention: "op_y"}, webhook.Busy},
		{webhook.SuspendCanceled, &tenant.Tenant{State: tenant.Suspended, SuspendCause: tenant.CauseOperator, Attention: "op_y"}, webhook.Busy},
		{webhook.SuspendNonpayment, held(tenant.Suspended), webhook.NoChange}, // a suspension running
		{webhook.Reactivate, free(tenant.Suspended, tenant.CauseNonpayment), webhook.StartReactivation},
		{webhook.Reactivate, free(tenant.Suspended, tenant.CauseCanceled), webhook.NoChange},
		{webhook.Reactivate, free(tenant.Suspended, tenant.CauseOperator), webhook.NoChange},
		// An operator who typed "nonpayment" as the reason still suspended for cause
		// operator: a payment does not lift it.
		{webhook.Reactivate, &tenant.Tenant{State: tenant.Suspended, SuspendCause: tenant.CauseOperator, SuspendReason: "nonpayment"}, webhook.NoChange},
		// A record from before causes: the webhook's reason is its cause.
		{webhook.Reactivate, &tenant.Tenant{State: tenant.Suspended, SuspendReason: webhook.ReasonNonpayment}, webhook.StartReactivation},
		{webhook.Reactivate, held(tenant.Suspended), webhook.Busy},
		{webhook.Reactivate, free(tenant.Active, ""), webhook.NoChange},
		{webhook.Reactivate, held(tenant.Upgrading), webhook.NoChange},
		// A win-back may end SUSPENDED for nonpayment (the tenant's own, after it
		// deleted itself while suspended): the payment waits for it.
		{webhook.Reactivate, held(tenant.Reactivating), webhook.Busy},
	}
	for _, c := range actions {
		if got := webhook.Decide(c.in, c.t); got != c.want {
			t.Errorf("%s on %s (cause %q, held by %q): %s, want %s", c.in, c.t.State, c.t.Cause(), c.t.Operation, got, c.want)
		}
	}
	all := []webhook.Intent{webhook.SuspendNonpayment, webhook.SuspendCanceled, webhook.Reactivate}
	for _, st := range []tenant.State{tenant.Deleted, tenant.Purged} {
		for _, in := range all {
			if got := webhook.Decide(in, held(st)); got != webhook.NoChange {
				t.Errorf("%s on %s: %s, want no_change", in, st, got)
			}
			want := webhook.NoChange
			if in == webhook.Reactivate && st == tenant.Deleted {
				want = webhook.ClearCause // see the cases below
			}
			if got := webhook.Decide(in, free(st, tenant.CauseNonpayment)); got != want {
				t.Errorf("%s on a free %s (cause nonpayment): %s, want %s", in, st, got, want)
			}
			if got := webhook.Decide(in, &tenant.Tenant{State: st, Attention: "op_y"}); got != webhook.NoChange {
				t.Errorf("%s on a %s waiting for an operator: %s, want no_change", in, st, got)
			}
		}
	}
	// A payment meets a DELETED tenant that kept its suspension: it clears a
	// nonpayment cause (the tenant stays DELETED), and only that cause; it waits for
	// an operation holding the tenant (a win-back may end SUSPENDED for nonpayment),
	// or for an operator.
	deleted := []struct {
		t    *tenant.Tenant
		want webhook.Action
	}{
		{free(tenant.Deleted, tenant.CauseNonpayment), webhook.ClearCause},
		{&tenant.Tenant{State: tenant.Deleted, SuspendReason: webhook.ReasonNonpayment}, webhook.ClearCause}, // before causes
		{free(tenant.Deleted, tenant.CauseOperator), webhook.NoChange},
		{free(tenant.Deleted, tenant.CauseCanceled), webhook.NoChange},
		{&tenant.Tenant{State: tenant.Deleted}, webhook.NoChange},
		{&tenant.Tenant{State: tenant.Deleted, SuspendCause: tenant.CauseNonpayment, Operation: "op_x"}, webhook.Busy},
		{&tenant.Tenant{State: tenant.Deleted, SuspendCause: tenant.CauseNonpayment, Attention: "op_y"}, webhook.Busy},
	}
	for _, c := range deleted {
		if got := webhook.Decide(webhook.Reactivate, c.t); got != c.want {
			t.Errorf("reactivate on DELETED (cause %q, held by %q, attention %q): %s, want %s", c.t.Cause(), c.t.Operation, c.t.Attention, got, c.want)
		}
		for _, in := range []webhook.Intent{webhook.SuspendNonpayment, webhook.SuspendCanceled} {
			if got := webhook.Decide(in, c.t); got != webhook.NoChange {
				t.Errorf("%s on DELETED (cause %q): %s, want no_change", in, c.t.Cause(), got)
			}
		}
	}
	// A deletion that fails puts the tenant back ACTIVE or SUSPENDED: an event that
	// arrives while it runs waits for it (503) instead of being dropped.
	for _, in := range all {
		if got := webhook.Decide(in, held(tenant.Deleting)); got != webhook.Busy {
			t.Errorf("%s on DELETING: %s, want busy", in, got)
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
