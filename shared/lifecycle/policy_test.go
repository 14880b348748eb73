package lifecycle_test

// End-to-end checks of the lifecycle policy (docs/policy.md) where flows combine: a
// suspension survives the tenant's own deletion and win-back, and a plan is entered
// only when usage fits it, on every path. The assertions read the API's answers, so
// they say what a client sees.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// view reads the tenant through the API, as an operator.
func view(t *testing.T, s *stack.Stack, id string) map[string]any {
	t.Helper()
	resp := st.Call(t, s, st.Event(t, "GET", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil, st.Admin))
	if resp.StatusCode != 200 {
		t.Fatalf("GET tenant: %d %s", resp.StatusCode, resp.Body)
	}
	return st.Body(t, resp)
}

func succeeded(t *testing.T, s *stack.Stack, resp events.APIGatewayV2HTTPResponse, what string) {
	t.Helper()
	if op := st.WaitDone(t, s, st.OperationID(t, resp)); op["status"] != "SUCCEEDED" {
		t.Fatalf("%s: %v", what, op)
	}
}

func reportUsage(t *testing.T, s *stack.Stack, id string, u map[string]any) {
	t.Helper()
	metering := map[string]string{"sub": "svc_metering", "scope": "tenants/usage"}
	resp := st.Call(t, s, st.Event(t, "PUT", "/tenants/"+id+"/usage", "/tenants/{id}/usage", map[string]string{"id": id}, u, metering))
	if resp.StatusCode != 200 {
		t.Fatalf("usage report: %d %s", resp.StatusCode, resp.Body)
	}
}

// violations returns the limits a 422 usage-exceeds-limit names.
func violations(t *testing.T, resp events.APIGatewayV2HTTPResponse) []string {
	t.Helper()
	var p struct {
		Type       string `json:"type"`
		Violations []struct {
			Limit string `json:"limit"`
		} `json:"violations"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil || !strings.HasSuffix(p.Type, "usage-exceeds-limit") {
		t.Fatalf("not a usage-exceeds-limit problem: %d %s", resp.StatusCode, resp.Body)
	}
	var out []string
	for _, v := range p.Violations {
		out = append(out, v.Limit)
	}
	return out
}

// TestOwnWinBackKeepsTheSuspension (issue 18, finding 1): an operator suspends a
// tenant; the tenant's own token deletes it (allowed: right to erasure) and wins it
// back. The tenant comes back SUSPENDED with the operator's cause and reason, its
// access read and export only, on its plan; only an operator lifts it.
func TestOwnWinBackKeepsTheSuspension(t *testing.T) {
	s := st.Shared(t)
	id := "own-winback-suspended"
	st.Clone(t, s, "tenant_acme", id)
	own := st.TenantToken(id)
	succeeded(t, s, suspend(t, s, id, "abuse review"), "suspension")
	succeeded(t, s, deleteTenant(t, s, id, nil, own), "own deletion while suspended")
	if v := view(t, s, id); v["state"] != "DELETED" || v["suspend_reason"] != "abuse review" {
		t.Fatalf("after the deletion: %v", v)
	} else if v["suspend_cause"] != "operator" {
		t.Errorf("the deletion did not keep the cause: %v", v["suspend_cause"])
	}
	succeeded(t, s, reactivate(t, s, id, tenant.Starter, own), "own win-back")
	v := view(t, s, id)
	if v["state"] != "SUSPENDED" || v["suspend_cause"] != "operator" || v["suspend_reason"] != "abuse review" || v["plan"] != "starter" ||
		v["deleted_at"] != nil || v["purge_after"] != nil {
		t.Fatalf("after the own win-back: state %v cause %v reason %v plan %v deleted_at %v purge_after %v",
			v["state"], v["suspend_cause"], v["suspend_reason"], v["plan"], v["deleted_at"], v["purge_after"])
	}
	if e := st.Entitlements(t, s, id); e.Access != tenant.AccessSuspended {
		t.Errorf("access after the own win-back: %q, want %q", e.Access, tenant.AccessSuspended)
	}
	if _, canceling := billingState(s, "sub_"+id, "price_starter", false); canceling {
		t.Error("the deletion's cancellation was not undone: the subscription still cancels at period end")
	}
	want := []string{"ACTIVE->SUSPENDED", "SUSPENDED->DELETING", "DELETING->DELETED", "DELETED->REACTIVATING", "REACTIVATING->SUSPENDED"}
	if tr := st.Transitions(t, s, id); !slices.Equal(tr, want) {
		t.Errorf("audit %v, want %v", tr, want)
	}
	// Still the operator's suspension: the tenant's token cannot lift it, an
	// operator can.
	if resp := reactivate(t, s, id, tenant.Starter, own); resp.StatusCode != 403 {
		t.Fatalf("own lift after the win-back: %d %s", resp.StatusCode, resp.Body)
	}
	succeeded(t, s, reactivate(t, s, id, tenant.Starter, st.Admin), "operator's lift")
	if v := view(t, s, id); v["state"] != "ACTIVE" || v["suspend_cause"] != nil || v["suspend_reason"] != nil {
		t.Fatalf("after the operator's lift: %v", v)
	}
}

// TestOwnWinBackOfASuspendedTenantKeepsItsPlan: the suspension is kept, so the plan
// is too; asking for another one is a 422 that says why, and changes nothing.
func TestOwnWinBackOfASuspendedTenantKeepsItsPlan(t *testing.T) {
	s := st.Shared(t)
	id := "own-winback-other-plan"
	st.Clone(t, s, "tenant_acme", id)
	own := st.TenantToken(id)
	succeeded(t, s, suspend(t, s, id, "chargeback"), "suspension")
	succeeded(t, s, deleteTenant(t, s, id, nil, own), "own deletion while suspended")
	resp := reactivate(t, s, id, tenant.Professional, own)
	if resp.StatusCode != 422 || !strings.Contains(resp.Body, "SUSPENDED") || !strings.Contains(resp.Body, "starter") {
		t.Fatalf("own win-back onto another plan: %d %s", resp.StatusCode, resp.Body)
	}
	if v := view(t, s, id); v["state"] != "DELETED" || v["plan"] != "starter" {
		t.Fatalf("the refused win-back changed the tenant: %v", v)
	}
	// An operator's win-back lifts the suspension, onto any plan that fits.
	succeeded(t, s, reactivate(t, s, id, tenant.Professional, st.Admin), "operator's win-back")
	if v := view(t, s, id); v["state"] != "ACTIVE" || v["plan"] != "professional" || v["suspend_cause"] != nil {
		t.Fatalf("after the operator's win-back: %v", v)
	}
}

// TestWinBackUsageMustFit (issue 18, finding 2): a professional tenant with 9 users
// is refused a downgrade to free; it deletes itself and asks to come back onto free:
// the same 422, naming every violation. Onto starter, which fits, it comes back.
func TestWinBackUsageMustFit(t *testing.T) {
	s := st.Shared(t)
	id := "winback-usage-fit"
	st.Clone(t, s, "tenant_enterprise", id)
	own := st.TenantToken(id)
	reportUsage(t, s, id, map[string]any{"users": 9, "storage_gb": 0.5, "api_calls_per_month": 5000})
	down := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/downgrade", "/tenants/{id}/downgrade", map[string]string{"id": id}, map[string]any{"plan": "free"}, own))
	if down.StatusCode != 422 || !slices.Equal(violations(t, down), []string{"users"}) {
		t.Fatalf("downgrade to free: %d %s", down.StatusCode, down.Body)
	}
	succeeded(t, s, deleteTenant(t, s, id, nil, own), "own deletion")
	back := reactivate(t, s, id, tenant.Free, own)
	if back.StatusCode != 422 || !slices.Equal(violations(t, back), []string{"users"}) {
		t.Fatalf("win-back onto free: %d %s", back.StatusCode, back.Body)
	}
	if v := view(t, s, id); v["state"] != "DELETED" || v["plan"] != "professional" {
		t.Fatalf("the refused win-back changed the tenant: %v", v)
	}
	succeeded(t, s, reactivate(t, s, id, tenant.Starter, own), "win-back onto starter")
	if v := view(t, s, id); v["state"] != "ACTIVE" || v["plan"] != "starter" {
		t.Fatalf("after the win-back onto starter: %v", v)
	}
}

// TestReactivationClaimRechecksUsage: the flow asks the policy again when it claims
// the tenant, so a reactivation whose request was checked against older usage (here:
// an execution started with an input no API checked) cannot enter a plan the usage
// does not fit. The claim refuses, and the tenant stays DELETED.
func TestReactivationClaimRechecksUsage(t *testing.T) {
	s := st.Shared(t)
	ctx := context.Background()
	id := "claim-rechecks-usage"
	st.Clone(t, s, "tenant_enterprise", id)
	reportUsage(t, s, id, map[string]any{"users": 9, "storage_gb": 0.5, "api_calls_per_month": 5000})
	succeeded(t, s, deleteTenant(t, s, id, nil, st.TenantToken(id)), "own deletion")
	opID := flow.NewOperationID()
	in, _ := json.Marshal(map[string]any{"operation_id": opID, "tenant_id": id, "kind": tenant.KindReactivation, "plan": "free",
		"requested_by": "user_" + id, "actor": "tenant", "action": "win_back"})
	if _, err := s.SFNClient().StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(s.StateMachines["ReactivationStateMachine"]),
		Name: aws.String(opID), Input: aws.String(string(in))}); err != nil {
		t.Fatal(err)
	}
	op := st.WaitDone(t, s, opID)
	if op["status"] != "FAILED" || op["error"] != "UsageExceedsLimitError" {
		t.Fatalf("operation %v", op)
	}
	if v := view(t, s, id); v["state"] != "DELETED" || v["plan"] != "professional" || v["operation_id"] != nil {
		t.Fatalf("after the refused claim: %v", v)
	}
}
