package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// listOps calls GET /operations with query q as claims and returns status and body.
func listOps(t *testing.T, e *env, claims map[string]string, q map[string]string) (int, map[string]any) {
	t.Helper()
	r := req("GET /operations", "", authz(claims), "")
	r.QueryStringParameters = q
	resp := invokeEvent(t, e.h, r)
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	return resp.StatusCode, m
}

func listedIDs(m map[string]any) []string {
	var out []string
	ops, _ := m["operations"].([]any)
	for _, o := range ops {
		op, _ := o.(map[string]any)
		id, _ := op["operation_id"].(string)
		out = append(out, id)
	}
	return out
}

// TestListOperations: every listing pages with signed cursors bound to it, and sees
// what the store's writes put in its index.
func TestListOperations(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for i := range 5 {
		id := fmt.Sprintf("op_a%d", i)
		if _, err := e.st.CreateOperation(ctx, &tenant.Operation{ID: id, TenantID: "tenant_acme", Kind: tenant.KindUpgrade, Status: tenant.OpRunning}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.UpdateOperation(ctx, store.OpUpdate{ID: "op_a1", Status: tenant.OpFailed, Error: "E", Cause: "secret", Incomplete: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateOperation(ctx, &tenant.Operation{ID: "op_e1", TenantID: "tenant_enterprise", Kind: tenant.KindDowngrade, Status: tenant.OpRunning}); err != nil {
		t.Fatal(err)
	}

	// By tenant, newest first, two per page, following the cursor to the end.
	var all []string
	q := map[string]string{"tenant_id": "tenant_acme", "limit": "2"}
	for range 10 {
		st, m := listOps(t, e, adminClaims, q)
		if st != 200 {
			t.Fatalf("%d %v", st, m)
		}
		all = append(all, listedIDs(m)...)
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		// A cursor is only good for the listing that made it.
		if st, _ := listOps(t, e, adminClaims, map[string]string{"tenant_id": "tenant_enterprise", "cursor": next}); st != 422 {
			t.Errorf("cursor on another tenant: %d", st)
		}
		q["cursor"] = next
	}
	if want := []string{"op_a4", "op_a3", "op_a2", "op_a1", "op_a0", knownOpID}; !slices.Equal(all, want) {
		t.Errorf("by tenant %v, want %v", all, want)
	}

	// Across tenants: running (longest open first) and waiting for an operator.
	if st, m := listOps(t, e, adminClaims, map[string]string{"status": "running"}); st != 200 ||
		!slices.Equal(listedIDs(m), []string{"op_a0", "op_a2", "op_a3", "op_a4", "op_e1"}) {
		t.Errorf("running: %d %v", st, listedIDs(m))
	}
	if st, m := listOps(t, e, adminClaims, map[string]string{"status": "needs_attention"}); st != 200 || !slices.Equal(listedIDs(m), []string{"op_a1"}) {
		t.Errorf("needs attention: %d %v", st, m)
	}
	// A tenant's own token: its own tenant, filtered, the public view.
	st, m := listOps(t, e, acmeClaims, map[string]string{"tenant_id": "tenant_acme", "status": "needs_attention"})
	if st != 200 || !slices.Equal(listedIDs(m), []string{"op_a1"}) {
		t.Fatalf("tenant token: %d %v", st, m)
	}
	if op := m["operations"].([]any)[0].(map[string]any); op["cause"] != nil || op["requested_by"] != nil || op["error"] != "E" {
		t.Errorf("public view %v", op)
	}
	for _, c := range []struct {
		claims map[string]string
		q      map[string]string
		status int
	}{
		{acmeClaims, map[string]string{"tenant_id": "tenant_enterprise"}, 403},
		{acmeClaims, map[string]string{"status": "needs_attention"}, 403},
		{adminClaims, map[string]string{"tenant_id": "tenant_nobody"}, 404},
		{adminClaims, map[string]string{"tenant_id": "Not A Tenant!"}, 422},
		{adminClaims, map[string]string{"tenant_id": "tenant_acme", "status": "done"}, 422},
		{adminClaims, map[string]string{"status": "failed"}, 422},
		{adminClaims, map[string]string{"status": "running", "limit": "0"}, 422},
		{adminClaims, map[string]string{"status": "running", "limit": "x"}, 400},
		{adminClaims, map[string]string{"status": "running", "cursor": "garbage"}, 422},
	} {
		if st, m := listOps(t, e, c.claims, c.q); st != c.status {
			t.Errorf("%v %v: %d %v, want %d", c.claims, c.q, st, m, c.status)
		}
	}
}

// TestStatsCountsAndUpcoming: the counts follow the indexes, and upcoming merges the
// period-end changes and the purges, soonest first.
func TestStatsCountsAndUpcoming(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	at := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	acme, _ := e.st.GetTenant(ctx, "tenant_acme")
	if _, err := e.st.CreateOperation(ctx, &tenant.Operation{ID: "op_sched", TenantID: acme.ID, Kind: tenant.KindDowngrade, Status: tenant.OpScheduled}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Update(ctx, acme.ID, acme.Version, func(x *tenant.Tenant) {
		x.PendingChange = &tenant.PendingChange{Plan: tenant.Free, EffectiveAt: at.Add(48 * time.Hour), OperationID: "op_sched"}
	}, store.Actor{Who: "t"}); err != nil {
		t.Fatal(err)
	}
	ts, _ := e.st.GetTenant(ctx, "tenant_techstart")
	purge := at.Add(24 * time.Hour)
	if _, err := e.st.Transition(ctx, ts.ID, tenant.Active, tenant.Deleting, ts.Version, nil, store.Actor{Who: "t"}); err != nil {
		t.Fatal(err)
	}
	ts, _ = e.st.GetTenant(ctx, ts.ID)
	if _, err := e.st.Transition(ctx, ts.ID, tenant.Deleting, tenant.Deleted, ts.Version, func(x *tenant.Tenant) { x.DeletedAt, x.PurgeAfter = &at, &purge }, store.Actor{Who: "t"}); err != nil {
		t.Fatal(err)
	}

	resp := invokeEvent(t, e.h, req("GET /stats", "", authz(adminClaims), ""))
	var got httpapi.StatsResponse
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	if got.TenantsByState[tenant.Active] != 2 || got.TenantsByState[tenant.Deleted] != 1 || got.TenantsByState[tenant.Suspended] != 1 ||
		got.TenantsByState[tenant.Purged] != 0 || len(got.TenantsByState) != len(tenant.States) {
		t.Errorf("by state %v", got.TenantsByState)
	}
	if got.Operations != (httpapi.OperationCounts{Scheduled: 1}) {
		t.Errorf("operations %+v", got.Operations)
	}
	want := []httpapi.Upcoming{
		{Kind: "purge", TenantID: "tenant_techstart", DueAt: purge},
		{Kind: "plan_change", TenantID: "tenant_acme", DueAt: at.Add(48 * time.Hour), OperationID: "op_sched"},
	}
	if len(got.Upcoming) != 2 || got.Upcoming[0] != want[0] || got.Upcoming[1].OperationID != "op_sched" ||
		got.Upcoming[1].ToPlan == nil || *got.Upcoming[1].ToPlan != tenant.Free || !got.Upcoming[1].DueAt.Equal(want[1].DueAt) {
		t.Errorf("upcoming %+v", got.Upcoming)
	}
	// The scheduled listing names the operation.
	if st, m := listOps(t, e, adminClaims, map[string]string{"status": "scheduled"}); st != 200 || !slices.Equal(listedIDs(m), []string{"op_sched"}) {
		t.Errorf("scheduled: %d %v", st, m)
	}
}
