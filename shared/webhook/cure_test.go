package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestWebhookPaymentWhileDeletedCuresNonpayment: a tenant suspended for nonpayment
// deletes itself (the suspension is kept on the DELETED tenant); its invoice is then
// paid. The payment cannot lift a suspension of a DELETED tenant, but it removes its
// cause (one audited write, the tenant stays DELETED), so the tenant's own win-back
// later comes back ACTIVE instead of SUSPENDED for a debt Stripe says is paid.
func TestWebhookPaymentWhileDeletedCuresNonpayment(t *testing.T) {
	s := st.Shared(t)
	id := "wh-cure"
	st.Clone(t, s, "tenant_acme", id)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	if code, body := deliverOnce(t, s, event(t, "customer.subscription.updated-unpaid", id, "evt_cure_unpaid", base.Add(30*time.Second))); code != 200 || !strings.Contains(body, "suspension_started") {
		t.Fatalf("unpaid: %d %s", code, body)
	}
	settle(t, s, []string{id})
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended || tn.Cause() != tenant.CauseNonpayment {
		t.Fatalf("after unpaid: %s cause %q", tn.State, tn.Cause())
	}
	del := st.Call(t, s, st.Event(t, "DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil, st.TenantToken(id)))
	if op := st.WaitDone(t, s, st.OperationID(t, del)); op["status"] != "SUCCEEDED" {
		t.Fatalf("deletion: %v", op)
	}
	tn := st.Tenant(t, s, id)
	if tn.State != tenant.Deleted || tn.Cause() != tenant.CauseNonpayment {
		t.Fatalf("after the deletion: %s cause %q, want DELETED keeping cause nonpayment", tn.State, tn.Cause())
	}
	paid := event(t, "invoice.paid", id, "evt_cure_paid", base.Add(90*time.Second))
	code, body := deliverOnce(t, s, paid)
	t.Logf("invoice.paid while DELETED: %d %s", code, body)
	if code != 200 || !strings.Contains(body, `"suspension_cause_cleared"`) {
		t.Errorf("invoice.paid while DELETED: %d %s, want 200 suspension_cause_cleared", code, body)
	}
	after := st.Tenant(t, s, id)
	t.Logf("tenant after the payment: %s cause %q reason %q plan %s", after.State, after.SuspendCause, after.SuspendReason, after.Plan)
	if after.State != tenant.Deleted || after.SuspendCause != "" || after.SuspendReason != "" || after.Operation != "" {
		t.Errorf("after the payment: %s cause %q reason %q held by %q, want DELETED with no suspension", after.State, after.SuspendCause, after.SuspendReason, after.Operation)
	}
	if after.PurgeAfter == nil || tn.PurgeAfter == nil || !after.PurgeAfter.Equal(*tn.PurgeAfter) || after.Plan != tn.Plan {
		t.Errorf("the payment changed more than the cause: plan %s→%s, purge_after %v→%v", tn.Plan, after.Plan, tn.PurgeAfter, after.PurgeAfter)
	}
	trail, err := s.Store().Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, a := range trail {
		if a.Who == "system:stripe-webhook" && a.From == tenant.Deleted && a.To == tenant.Deleted && strings.Contains(a.Reason, "payment received while deleted") {
			audited++
			t.Logf("audit: %s %s->%s %q", a.Who, a.From, a.To, a.Reason)
		}
	}
	if audited != 1 {
		t.Errorf("%d audit records of the cleared cause, want 1", audited)
	}
	// Stripe's redelivery changes nothing more.
	if code, body := deliverOnce(t, s, paid); code != 200 || !strings.Contains(body, "duplicate") {
		t.Errorf("redelivery: %d %s, want duplicate", code, body)
	}
	// The tenant's own win-back now ends ACTIVE.
	back := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/reactivate", "/tenants/{id}/reactivate", map[string]string{"id": id},
		map[string]string{"plan": string(tn.Plan)}, st.TenantToken(id)))
	t.Logf("win-back: %d %s", back.StatusCode, back.Body)
	if op := st.WaitDone(t, s, st.OperationID(t, back)); op["status"] != "SUCCEEDED" {
		t.Fatalf("win-back: %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Active || tn.Cause() != "" {
		t.Errorf("after the win-back: %s cause %q, want ACTIVE without a suspension", tn.State, tn.Cause())
	}
}
