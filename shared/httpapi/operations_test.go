package httpapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestOperationViews: an admin reads the whole tenant.Operation; the operation's tenant
// reads OperationResponse, which has neither requested_by nor the raw cause (which may
// carry Stripe request ids) and explains a failure with a fixed sentence.
func TestOperationViews(t *testing.T) {
	created := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	effective := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	const secret = "stripe: card_declined (request req_Q1w2E3r4T5y6) at arn:aws:lambda:us-east-1:123456789012:function:steps"
	ops := []struct {
		op              tenant.Operation
		wantError       any // error name in the public view (nil = null)
		wantMessage     string
		wantEffectiveAt bool
	}{
		{tenant.Operation{ID: "op_1_usage", Kind: tenant.KindDowngrade, Status: tenant.OpFailed, Error: "UsageExceedsLimitError",
			Cause: `{"errorMessage":"usage exceeds the limits of plan free: users 4 > 3","errorType":"UsageExceedsLimitError"}`},
			"UsageExceedsLimitError", "usage exceeds the limits of the target plan", false},
		{tenant.Operation{ID: "op_2_billing", Kind: tenant.KindUpgrade, Status: tenant.OpFailed, Error: "States.TaskFailed", Cause: secret},
			"States.TaskFailed", "the change did not complete and was rolled back; contact support with the operation id", false},
		// An error "name" that is really text is not shown either.
		{tenant.Operation{ID: "op_3_odd", Kind: tenant.KindUpgrade, Status: tenant.OpFailed, Error: secret, Cause: secret},
			"OperationFailed", "the change did not complete and was rolled back; contact support with the operation id", false},
		{tenant.Operation{ID: "op_4_noname", Kind: tenant.KindUpgrade, Status: tenant.OpFailed, Cause: secret},
			"OperationFailed", "the change did not complete and was rolled back; contact support with the operation id", false},
		{tenant.Operation{ID: "op_5_scheduled", Kind: tenant.KindDowngrade, Status: tenant.OpScheduled, AtPeriodEnd: true, EffectiveAt: &effective},
			nil, "the change is scheduled and runs at effective_at", true},
		{tenant.Operation{ID: "op_6_running", Kind: tenant.KindUpgrade, Status: tenant.OpRunning}, nil, "the change is in progress", false},
	}
	h, plans, _ := unitHandler(t)
	plans.mu.Lock()
	for i := range ops {
		op := &ops[i].op
		op.TenantID, op.FromPlan, op.ToPlan, op.RequestedBy, op.CreatedAt, op.UpdatedAt = "tenant_acme", tenant.Starter, tenant.Free, "user_acme_alice", created, created
		plans.ops[op.ID] = op
	}
	plans.mu.Unlock()

	for _, c := range ops {
		// Admin: the record as stored, cause and requested_by included.
		resp := invokeEvent(t, h, req("GET /operations/{id}", c.op.ID, authz(adminClaims), ""))
		if resp.StatusCode != 200 {
			t.Fatalf("%s admin: status %d: %s", c.op.ID, resp.StatusCode, resp.Body)
		}
		var full tenant.Operation
		if err := json.Unmarshal([]byte(resp.Body), &full); err != nil {
			t.Fatal(err)
		}
		if full.RequestedBy != "user_acme_alice" || full.Cause != c.op.Cause || full.Error != c.op.Error || full.Status != c.op.Status {
			t.Errorf("%s admin view %s", c.op.ID, resp.Body)
		}
		if m := bodyMap(t, resp); m["requested_by"] == nil || (c.op.Cause != "" && m["cause"] == nil) {
			t.Errorf("%s admin view lacks requested_by or cause: %s", c.op.ID, resp.Body)
		}

		// Tenant: the public view only.
		resp = invokeEvent(t, h, req("GET /operations/{id}", c.op.ID, authz(acmeClaims), ""))
		if resp.StatusCode != 200 {
			t.Fatalf("%s tenant: status %d: %s", c.op.ID, resp.StatusCode, resp.Body)
		}
		m := bodyMap(t, resp)
		if got := sortedKeys(m); !slices.Equal(got, publicOperationKeys) {
			t.Errorf("%s tenant view keys %v, want %v", c.op.ID, got, publicOperationKeys)
		}
		if _, ok := m["requested_by"]; ok {
			t.Errorf("%s: requested_by shown to the tenant: %s", c.op.ID, resp.Body)
		}
		if _, ok := m["cause"]; ok {
			t.Errorf("%s: cause shown to the tenant: %s", c.op.ID, resp.Body)
		}
		for _, leak := range []string{"req_Q1w2E3r4T5y6", "arn:aws", "user_acme_alice", "users 4 > 3", "errorMessage"} {
			if strings.Contains(resp.Body, leak) {
				t.Errorf("%s: tenant view contains %q: %s", c.op.ID, leak, resp.Body)
			}
		}
		if m["error"] != c.wantError || m["message"] != c.wantMessage || m["operation_id"] != c.op.ID || m["tenant_id"] != "tenant_acme" ||
			m["kind"] != c.op.Kind || m["status"] != string(c.op.Status) || m["from_plan"] != "starter" || m["to_plan"] != "free" ||
			m["at_period_end"] != c.op.AtPeriodEnd || m["created_at"] != "2026-01-02T00:00:00Z" || (m["effective_at"] != nil) != c.wantEffectiveAt {
			t.Errorf("%s tenant view %s; want error %v, message %q", c.op.ID, resp.Body, c.wantError, c.wantMessage)
		}
	}

	// Another tenant's token sees none of it: the 404 of a missing operation.
	resp := invokeEvent(t, h, req("GET /operations/{id}", "op_2_billing", authz(map[string]string{"sub": "bob", "tenant_id": "tenant_techstart"}), ""))
	if resp.StatusCode != 404 || strings.Contains(resp.Body, "req_") {
		t.Errorf("other tenant: %d %s", resp.StatusCode, resp.Body)
	}
}
