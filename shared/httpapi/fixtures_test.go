package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"gopkg.in/yaml.v3"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// fixtureDir holds the events of the API function (also used by `sam local invoke -e`).
func fixtureDir() string { return filepath.Join(testenv.RepoRoot(), "events", "api") }

// expectation is what one fixture must produce on the seeded tables.
type expectation struct {
	status int
	// check inspects the response (and the tables through e) beyond the status.
	check func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse)
}

// detail expects a problem whose detail contains every fragment.
func detail(fragments ...string) func(*testing.T, *env, events.APIGatewayV2HTTPResponse) {
	return func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		p := problem(t, resp)
		for _, f := range fragments {
			if !strings.Contains(p.Detail, f) {
				t.Errorf("detail %q does not contain %q", p.Detail, f)
			}
		}
	}
}

// tenantBody checks the tenant fields of a 200/201 body.
func tenantBody(id string, state tenant.State, plan tenant.Plan, u tenant.Usage, limits map[string]any) func(*testing.T, *env, events.APIGatewayV2HTTPResponse) {
	return func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		var got httpapi.TenantResponse
		if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != id || got.State != state || got.Plan != plan || got.Usage != u {
			t.Errorf("tenant %+v, want %s %s %s usage %+v", got, id, state, plan, u)
		}
		m := bodyMap(t, resp)
		for _, k := range []string{"id", "name", "email", "plan", "state", "usage", "version", "created_at", "updated_at",
			"pending_change", "deleted_at", "purge_after", "suspend_cause", "suspend_reason", "limits"} {
			if _, ok := m[k]; !ok {
				t.Errorf("tenant body lacks %q: %s", k, resp.Body)
			}
		}
		if limits != nil && !reflect.DeepEqual(m["limits"], limits) {
			t.Errorf("limits %v, want %v", m["limits"], limits)
		}
	}
}

func all(checks ...func(*testing.T, *env, events.APIGatewayV2HTTPResponse)) func(*testing.T, *env, events.APIGatewayV2HTTPResponse) {
	return func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		for _, c := range checks {
			c(t, e, resp)
		}
	}
}

var (
	starterLimits      = map[string]any{"users": 10.0, "storage_gb": 10.0, "api_calls_per_month": 100000.0}
	freeLimits         = map[string]any{"users": 3.0, "storage_gb": 1.0, "api_calls_per_month": 10000.0}
	professionalLimits = map[string]any{"users": 50.0, "storage_gb": 100.0, "api_calls_per_month": 1000000.0}
	allPlans           = "free, starter, professional, enterprise"
)

// operationsPage checks a GET /operations page: every operation matches keep, and
// the public view for tenant tokens (no requested_by, no raw cause).
func operationsPage(public bool, keep func(op map[string]any) bool) func(*testing.T, *env, events.APIGatewayV2HTTPResponse) {
	return func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		m := bodyMap(t, resp)
		ops, ok := m["operations"].([]any)
		if _, has := m["next_cursor"]; !ok || !has {
			t.Fatalf("page %s", resp.Body)
		}
		for _, o := range ops {
			op, _ := o.(map[string]any)
			if !keep(op) {
				t.Errorf("operation %v does not belong in this listing", op)
			}
			if _, has := op["requested_by"]; public && has {
				t.Errorf("a tenant token sees requested_by: %v", op)
			}
		}
	}
}

// stepsOf reads a GET /operations/{id}/steps body.
func stepsOf(t *testing.T, resp events.APIGatewayV2HTTPResponse) (string, []map[string]any) {
	t.Helper()
	m := bodyMap(t, resp)
	raw, _ := m["steps"].([]any)
	steps := make([]map[string]any, len(raw))
	for i, s := range raw {
		steps[i], _ = s.(map[string]any)
	}
	status, _ := m["execution_status"].(string)
	return status, steps
}

// fixtures is the expectation of every events/api/*.json; TestEveryFixtureHasExpectation
// fails when a file is added without one.
var fixtures = map[string]expectation{
	"list-operations-by-tenant.json": {200, operationsPage(false, func(op map[string]any) bool { return op["tenant_id"] == "tenant_acme" })},
	"list-operations-tenant-token.json": {200, operationsPage(true, func(op map[string]any) bool {
		return op["tenant_id"] == "tenant_acme" && op["status"] == "FAILED"
	})},
	"list-operations-running.json":            {200, operationsPage(false, func(op map[string]any) bool { return op["status"] == "RUNNING" })},
	"list-operations-needs-attention.json":    {200, operationsPage(false, func(op map[string]any) bool { return op["needs_attention"] == true && op["status"] == "FAILED" })},
	"list-operations-bad-no-filter.json":      {422, detail("field status", "required without tenant_id", "running, needs_attention, scheduled")},
	"list-operations-bad-status.json":         {422, detail("field status", "without tenant_id, one of running, needs_attention, scheduled")},
	"list-operations-bad-other-tenant.json":   {403, detail("tenant_enterprise")},
	"list-operations-bad-across-tenants.json": {403, detail("across tenants", httpapi.AdminScope)},
	"list-operations-bad-cursor.json":         {422, detail("field cursor", "not a cursor returned by this API")},
	"get-operation-steps.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		status, steps := stepsOf(t, resp)
		var names []string
		for _, s := range steps {
			names = append(names, s["name"].(string))
		}
		if status != "SUCCEEDED" || !slices.Equal(names, []string{"Start", "Validate", "Provision", "Billing", "Commit", "Done"}) {
			t.Fatalf("steps %s", resp.Body)
		}
		p := steps[2]
		if p["status"] != "SUCCEEDED" || p["attempts"] != 2.0 || p["error"] != "Lambda.ServiceException" || p["cause"] == nil ||
			p["duration_ms"] != 1250.0 || p["compensation"] != false || p["execution"] != knownOpID {
			t.Errorf("Provision step %v", p)
		}
	}},
	"get-operation-steps-tenant-token.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		_, steps := stepsOf(t, resp)
		if len(steps) != 6 || steps[2]["error"] != "Lambda.ServiceException" {
			t.Fatalf("steps %s", resp.Body)
		}
		for _, s := range steps {
			if c, ok := s["cause"]; !ok || c != nil {
				t.Errorf("a tenant token sees the cause of %v", s)
			}
		}
	}},
	"get-operation-steps-other-tenant.json": {404, detail("operation " + knownOpID + " not found")},
	"get-stats.json": {200, func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		var got httpapi.StatsResponse
		if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.TenantsByState) != len(tenant.States) || got.Upcoming == nil || got.AsOf.IsZero() {
			t.Errorf("stats %s", resp.Body)
		}
		// Each count equals the listing of its state.
		for _, s := range tenant.States {
			n, cursor := 0, ""
			for {
				p, err := e.st.ListByState(context.Background(), s, cursor, 100)
				if err != nil {
					t.Fatal(err)
				}
				n += len(p.Tenants)
				if cursor = p.Next; cursor == "" {
					break
				}
			}
			if got.TenantsByState[s] != int64(n) {
				t.Errorf("%s: %d counted, %d listed", s, got.TenantsByState[s], n)
			}
		}
	}},
	"get-stats-bad-tenant-token.json": {403, detail("statistics", httpapi.AdminScope)},
	"create-tenant.json": {201, all(
		tenantBody("tenant_newco", tenant.Active, tenant.Starter, tenant.Usage{}, starterLimits),
		func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
			if loc := resp.Headers["Location"]; loc != "/dev/tenants/tenant_newco" {
				t.Errorf("Location %q", loc)
			}
			got, err := e.st.GetTenant(context.Background(), "tenant_newco")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tenant.Active || got.Email != "billing@newco.example" || got.Billing.SubscriptionID != "sub_tenant_newco" ||
				got.Billing.CustomerID != "cus_tenant_newco" || got.Billing.CurrentPeriodEnd == nil {
				t.Errorf("stored %+v", got)
			}
			ent, err := e.st.GetEntitlements(context.Background(), "tenant_newco")
			if err != nil || ent.Plan != tenant.Starter || ent.Limits.Users != 10 {
				t.Errorf("entitlements %+v, %v", ent, err)
			}
			if keys := e.subs.Keys(); !slices.Equal(keys, []string{"create:tenant_newco"}) {
				t.Errorf("subscription keys %v", keys)
			}
		})},
	"create-tenant-generated-id.json": {201, func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		m := bodyMap(t, resp)
		id, _ := m["id"].(string)
		if !regexp.MustCompile(`^tenant_[a-z2-7]{16}$`).MatchString(id) || m["state"] != "ACTIVE" || m["email"] != nil {
			t.Errorf("generated tenant %v", m)
		}
		if resp.Headers["Location"] != "/dev/tenants/"+id {
			t.Errorf("Location %q for %s", resp.Headers["Location"], id)
		}
	}},
	"create-tenant-existing.json":         {409, detail("tenant_acme", "already exists", "ACTIVE")},
	"create-tenant-by-tenant-token.json":  {403, detail("tenants/admin")},
	"create-tenant-bad-json.json":         {400, detail("malformed JSON")},
	"create-tenant-bad-plan.json":         {422, detail(`field plan: unknown plan "gold"`, allPlans)},
	"create-tenant-bad-missing-name.json": {422, detail("field name: required")},
	"create-tenant-bad-id.json":           {422, detail("field id:")},
	"get-tenant.json": {200, all(
		tenantBody("tenant_acme", tenant.Active, tenant.Starter, tenant.Usage{Users: 2, StorageGB: 0.5, APICallsPerMonth: 5000}, starterLimits),
		func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
			m := bodyMap(t, resp)
			if m["name"] != "Acme Corp" || m["version"] != 1.0 || m["pending_change"] != nil || m["billing"] != nil {
				t.Errorf("body %s", resp.Body)
			}
		})},
	"get-tenant-admin.json": {200, tenantBody("tenant_enterprise", tenant.Active, tenant.Professional,
		tenant.Usage{Users: 45, StorageGB: 80, APICallsPerMonth: 600_000}, professionalLimits)},
	"get-tenant-unknown.json":           {404, detail("tenant tenant_nobody not found")},
	"get-tenant-wrong-tenant.json":      {403, detail("tenant_enterprise")},
	"get-tenant-no-claims.json":         {401, detail("bearer token")},
	"list-tenants-by-tenant-token.json": {403, detail("listing tenants")},
	"list-tenants-bad-state.json":       {422, detail("field state", "ACTIVE")},
	"list-tenants-bad-limit.json":       {422, detail("field limit", "1 and 100")},
	"list-tenants.json": {200, func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		var l httpapi.ListResponse
		if err := json.Unmarshal([]byte(resp.Body), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Tenants) != 2 || l.Tenants[0].ID != "tenant_acme" || l.Tenants[1].ID != "tenant_enterprise" || l.NextCursor == nil {
			t.Fatalf("first page %s", resp.Body)
		}
		// Follow the cursor: the last ACTIVE tenant, and no tenant twice.
		next := req("GET /tenants", "", authz(adminClaims), "")
		next.QueryStringParameters = map[string]string{"state": "ACTIVE", "limit": "2", "cursor": *l.NextCursor}
		r2 := invokeEvent(t, e.h, next)
		var l2 httpapi.ListResponse
		if err := json.Unmarshal([]byte(r2.Body), &l2); err != nil || r2.StatusCode != 200 {
			t.Fatalf("second page %d %s", r2.StatusCode, r2.Body)
		}
		if len(l2.Tenants) != 1 || l2.Tenants[0].ID != "tenant_techstart" {
			t.Errorf("second page %s", r2.Body)
		}
	}},
	"list-tenants-suspended.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		var l httpapi.ListResponse
		if err := json.Unmarshal([]byte(resp.Body), &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Tenants) != 1 || l.Tenants[0].ID != "tenant_suspended" || l.NextCursor != nil ||
			l.Tenants[0].SuspendReason == nil || *l.Tenants[0].SuspendReason != "nonpayment" {
			t.Errorf("list %s", resp.Body)
		}
	}},
	"put-usage.json": {200, all(
		tenantBody("tenant_acme", tenant.Active, tenant.Starter, tenant.Usage{Users: 3, StorageGB: 0.75, APICallsPerMonth: 6200}, starterLimits),
		func(t *testing.T, e *env, _ events.APIGatewayV2HTTPResponse) {
			got, _ := e.st.GetTenant(context.Background(), "tenant_acme")
			if got.Usage != (tenant.Usage{Users: 3, StorageGB: 0.75, APICallsPerMonth: 6200}) || got.Version != 2 {
				t.Errorf("stored %+v", got)
			}
		})},
	"put-usage-base64.json": {200, tenantBody("tenant_techstart", tenant.Active, tenant.Free,
		tenant.Usage{Users: 2, StorageGB: 0.4, APICallsPerMonth: 1500}, freeLimits)},
	"put-usage-bad-types.json":         {400, detail("field users: expected a number, got string")},
	"put-usage-bad-fraction.json":      {400, detail("field users: expected an integer, got 2.5")},
	"put-usage-bad-negative.json":      {422, detail("field users: must be an integer between 0 and 1000000000000000")},
	"put-usage-bad-missing-field.json": {422, detail("field api_calls_per_month: required")},
	"put-usage-bad-unknown-field.json": {400, detail(`unknown field "seats"`)},
	"put-usage-bad-empty-body.json":    {400, detail("request body is required")},
	"put-usage-bad-trailing-data.json": {400, detail("unexpected data after the JSON object")},
	"put-usage-bad-wrong-tenant.json":  {403, detail("tenant_enterprise", httpapi.UsageScope)},
	// Usage comes from the metering service: a tenant's own token may not report it,
	// not even for its own tenant (it could report zero to pass a downgrade check).
	"put-usage-bad-tenant-token.json": {403, detail("may not report usage for tenant tenant_acme", httpapi.UsageScope, httpapi.AdminScope)},
	// Figures DynamoDB cannot store (1e200, 1e-200, beyond float64) or no tenant has.
	"put-usage-bad-huge.json":         {422, detail("field storage_gb: must be 0 or a number between 0.000001 and 1000000000")},
	"put-usage-bad-tiny.json":         {422, detail("field storage_gb: must be 0 or a number between 0.000001 and 1000000000")},
	"put-usage-bad-beyond-float.json": {422, detail("field storage_gb: must be 0 or a number between")},
	"put-usage-bad-huge-count.json":   {422, detail("field api_calls_per_month: must be an integer between 0 and 1000000000000000")},
	"put-usage-bad-id.json":           {404, detail("tenant not found", "3-64 characters")},
	"get-tenant-bad-long-id.json":     {404, all(detail("tenant not found", "3-64 characters"), shortDetail)},
	"get-operation-bad-id.json":       {404, all(detail("operation not found", `"op_"`), shortDetail)},
	"get-audit.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		var a httpapi.AuditResponse
		if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
			t.Fatal(err)
		}
		if a.TenantID != "tenant_acme" || len(a.Entries) != 1 || a.Entries[0].To != tenant.Active || a.Entries[0].Who != "seed" {
			t.Errorf("audit %s", resp.Body)
		}
	}},
	// The tenant's own token sees the transitions, not who did them nor the reasons.
	"get-audit-tenant-token.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		var a httpapi.AuditResponse
		if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Entries) != 1 || a.Entries[0].To != tenant.Active || strings.Contains(resp.Body, `"who"`) || strings.Contains(resp.Body, `"reason"`) {
			t.Errorf("audit %s", resp.Body)
		}
	}},
	"upgrade-techstart.json": {202, func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		var a httpapi.AcceptedResponse
		if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
			t.Fatal(err)
		}
		if a.OperationID == "" || a.Status != tenant.OpRunning || a.EffectiveAt != nil || strings.Contains(resp.Body, "effective_at") {
			t.Errorf("accepted %s", resp.Body)
		}
		if resp.Headers["Location"] != "/dev/operations/"+a.OperationID {
			t.Errorf("Location %q", resp.Headers["Location"])
		}
		if c := e.plans.Calls(); !slices.Equal(c, []string{"upgrade tenant_techstart starter by user_techstart_bob"}) {
			t.Errorf("calls %v", c)
		}
	}},
	"upgrade-suspended.json": {409, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		p := problem(t, resp)
		if p.Allowed == nil || !slices.Equal(*p.Allowed, []tenant.State{tenant.Reactivating, tenant.Deleting}) ||
			!strings.Contains(p.Detail, "SUSPENDED -> UPGRADING") {
			t.Errorf("problem %+v", p)
		}
	}},
	"upgrade-bad-plan.json": {422, all(detail(`unknown plan "platinum"`, allPlans),
		func(t *testing.T, e *env, _ events.APIGatewayV2HTTPResponse) {
			if c := e.plans.Calls(); len(c) != 0 {
				t.Errorf("flow started for an unknown plan: %v", c)
			}
		})},
	"downgrade-acme.json": {202, func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		var a httpapi.AcceptedResponse
		if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
			t.Fatal(err)
		}
		if a.Status != tenant.OpRunning || a.EffectiveAt != nil {
			t.Errorf("accepted %s", resp.Body)
		}
		if c := e.plans.Calls(); !slices.Equal(c, []string{"downgrade tenant_acme free by user_acme_alice"}) {
			t.Errorf("calls %v", c)
		}
	}},
	"downgrade-acme-period-end.json": {202, func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		var a httpapi.AcceptedResponse
		if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
			t.Fatal(err)
		}
		if a.Status != tenant.OpScheduled || a.EffectiveAt == nil || !a.EffectiveAt.Equal(periodEnd) {
			t.Errorf("accepted %s", resp.Body)
		}
		if c := e.plans.Calls(); !slices.Equal(c, []string{"downgrade tenant_acme free by user_acme_alice at period end"}) {
			t.Errorf("calls %v", c)
		}
	}},
	"downgrade-enterprise-blocked.json": {422, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		p := problem(t, resp)
		want := []tenant.Violation{
			{Limit: "users", Usage: 45, Max: 10},
			{Limit: "storage_gb", Usage: 80, Max: 10},
			{Limit: "api_calls_per_month", Usage: 600_000, Max: 100_000},
		}
		if !slices.Equal(p.Violations, want) || p.Type != "urn:tenantflow:problem:usage-exceeds-limit" {
			t.Errorf("problem %+v", p)
		}
	}},
	"downgrade-bad-type.json": {400, detail("field at_period_end: expected a boolean, got string")},
	// An admin reads the whole record, requested_by included.
	"get-operation.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		m := bodyMap(t, resp)
		if m["operation_id"] != knownOpID || m["tenant_id"] != "tenant_acme" || m["status"] != "SUCCEEDED" || m["requested_by"] != "alice" {
			t.Errorf("operation %s", resp.Body)
		}
		if _, ok := m["message"]; ok {
			t.Errorf("admin got the public view: %s", resp.Body)
		}
	}},
	// The tenant's own token reads the public view: no requested_by, no cause.
	"get-operation-tenant-token.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		m := bodyMap(t, resp)
		if got := sortedKeys(m); !slices.Equal(got, publicOperationKeys) {
			t.Errorf("public operation keys %v, want %v", got, publicOperationKeys)
		}
		if m["operation_id"] != knownOpID || m["tenant_id"] != "tenant_acme" || m["status"] != "SUCCEEDED" ||
			m["from_plan"] != "free" || m["to_plan"] != "starter" || m["error"] != nil || m["message"] != "the change is complete" {
			t.Errorf("operation %s", resp.Body)
		}
	}},
	// Another tenant's operation looks exactly like a missing one.
	"get-operation-other-tenant.json": {404, detail("operation " + knownOpID + " not found")},
	// Deletion, suspension, reactivation: started through the real lifecycle.Starter
	// (with a launcher that records instead of running), so refusals are the real ones.
	"delete-tenant.json": {202, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		var d httpapi.DeletionResponse
		if err := json.Unmarshal([]byte(resp.Body), &d); err != nil {
			t.Fatal(err)
		}
		if d.OperationID == "" || d.RetentionDays != 45 || time.Until(d.PurgeAfter) < 44*24*time.Hour || time.Until(d.PurgeAfter) > 46*24*time.Hour {
			t.Errorf("deletion answer %s", resp.Body)
		}
	}},
	"delete-tenant-default-retention.json": {202, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		var d httpapi.DeletionResponse
		if err := json.Unmarshal([]byte(resp.Body), &d); err != nil || d.RetentionDays != tenant.DefaultRetentionDays {
			t.Errorf("deletion answer %s (%v)", resp.Body, err)
		}
	}},
	"delete-tenant-bad-retention.json":       {422, detail("retention_days", "between 30 and 90")},
	"delete-tenant-bad-wrong-tenant.json":    {403, detail("tenant_enterprise")},
	"suspend-tenant.json":                    {202, started},
	"suspend-tenant-bad-missing-reason.json": {422, detail("reason", "required")},
	"suspend-tenant-bad-tenant-token.json":   {403, detail("suspending a tenant", httpapi.AdminScope)},
	"suspend-tenant-already-suspended.json":  {409, detail("SUSPENDED -> SUSPENDED")},
	"reactivate-suspended.json":              {202, started},
	"reactivate-active-tenant.json":          {409, detail("ACTIVE -> REACTIVATING", "UPGRADING")},
	"reactivate-bad-plan.json":               {422, detail(`unknown plan "gold"`)},
	// The lifecycle policy: a tenant's own token never lifts its suspension, and a
	// plan is entered only when usage fits it (tenant_suspended: 5 users, 3 GB,
	// 20,000 calls; free allows 3, 1 GB, 10,000).
	"reactivate-suspended-tenant-token.json": {403, detail("the tenant's own token may not lift a suspension", httpapi.AdminScope)},
	"reactivate-bad-usage.json": {422, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		p := problem(t, resp)
		want := []tenant.Violation{
			{Limit: "users", Usage: 5, Max: 3},
			{Limit: "storage_gb", Usage: 3, Max: 1},
			{Limit: "api_calls_per_month", Usage: 20_000, Max: 10_000},
		}
		if !slices.Equal(p.Violations, want) || p.Type != "urn:tenantflow:problem:usage-exceeds-limit" {
			t.Errorf("problem %+v", p)
		}
	}},
	"retry-operation-not-needed.json": {409, detail("does not need attention")},
	"unknown-route.json":              {404, detail("no route for DELETE /dev/tenants/tenant_acme/usage")},
	// A tenant has a deletion certificate only once purged (certificates_test.go reads
	// one), and only operators may read it.
	"get-deletion-certificate.json":              {404, detail("deletion certificate of tenant tenant_acme", "until it is purged")},
	"get-deletion-certificate-tenant-token.json": {403, detail("deletion certificate", httpapi.AdminScope)},
	"create-export.json": {202, func(t *testing.T, e *env, resp events.APIGatewayV2HTTPResponse) {
		var v struct {
			ExportID string `json:"export_id"`
			TenantID string `json:"tenant_id"`
			Status   string `json:"status"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &v); err != nil || v.Status != "queued" || v.TenantID != "tenant_acme" || !strings.HasPrefix(v.ExportID, "exp_") {
			t.Fatalf("body %s (%v)", resp.Body, err)
		}
		if loc := resp.Headers["Location"]; !strings.HasSuffix(loc, "/tenants/tenant_acme/exports/"+v.ExportID) {
			t.Errorf("Location %q", loc)
		}
		// The job is recorded and its flow started once, named after the export.
		if names := e.exports.names(); len(names) != 1 || names[0] != v.ExportID {
			t.Errorf("executions started %v, want [%s]", names, v.ExportID)
		}
		job, err := e.jobs.Get(context.Background(), "tenant_acme", v.ExportID)
		if err != nil || job.Status != export.Queued || job.RequestedBy != "user_acme_alice" {
			t.Errorf("job %+v (%v)", job, err)
		}
	}},
	"create-export-bad-wrong-tenant.json": {403, detail("tenant_enterprise")},
	"get-export-unknown.json":             {404, all(detail("export not found"), without("exp_19b7a2c0000_0123456789abcdef"))},
	"get-export-bad-long-id.json":         {404, all(detail("export not found", `"exp_"`), shortDetail)},
	"list-exports.json": {200, func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		if strings.TrimSpace(resp.Body) != `{"exports":[]}` {
			t.Errorf("body %s, want no exports", resp.Body)
		}
	}},
}

// publicOperationKeys is the whole wire shape of httpapi.OperationResponse.
var publicOperationKeys = []string{"at_period_end", "created_at", "effective_at", "error", "from_plan", "kind", "message",
	"operation_id", "status", "tenant_id", "to_plan", "updated_at"}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shortDetail: the 404 of a malformed id states the rule and does not echo the id.
// started checks a 202 that started an operation.
func started(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
	var a httpapi.AcceptedResponse
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil || a.OperationID == "" || a.Status != tenant.OpRunning {
		t.Errorf("answer %s (%v)", resp.Body, err)
	}
}

// without expects a problem whose detail contains none of the fragments.
func without(fragments ...string) func(*testing.T, *env, events.APIGatewayV2HTTPResponse) {
	return func(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
		p := problem(t, resp)
		for _, f := range fragments {
			if strings.Contains(p.Detail, f) {
				t.Errorf("detail %q repeats %q", p.Detail, f)
			}
		}
	}
}

func shortDetail(t *testing.T, _ *env, resp events.APIGatewayV2HTTPResponse) {
	if p := problem(t, resp); len(p.Detail) > 200 {
		t.Errorf("detail of %d bytes echoes the id: %.80q...", len(p.Detail), p.Detail)
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtureDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func fixtureNames(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(fixtureDir(), "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtureDir(), err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	sort.Strings(names)
	return names
}

// TestEveryFixtureHasExpectation keeps the table and events/api in step.
func TestEveryFixtureHasExpectation(t *testing.T) {
	files := fixtureNames(t)
	for _, f := range files {
		if _, ok := fixtures[f]; !ok {
			t.Errorf("events/api/%s has no expectation in the fixtures table", f)
		}
	}
	for name := range fixtures {
		if !slices.Contains(files, name) {
			t.Errorf("fixtures table names %s, which is not in events/api", name)
		}
	}
}

// TestFixtures feeds every fixture through the real Lambda handler path on freshly
// seeded tables and checks status and body.
func TestFixtures(t *testing.T) {
	for _, name := range fixtureNames(t) {
		want, ok := fixtures[name]
		if !ok {
			continue // reported by TestEveryFixtureHasExpectation
		}
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			resp := invoke(t, e.h, readFixture(t, name))
			validateAgainstSpec(t, readFixture(t, name), resp) // openapi_test.go
			if resp.StatusCode != want.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, want.status, resp.Body)
			}
			if resp.StatusCode >= 400 {
				problem(t, resp)
			} else if ct := resp.Headers["Content-Type"]; ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if want.check != nil {
				want.check(t, e, resp)
			}
		})
	}
}

// TestBadFixturesChangeNothing: every *bad*.json is refused with a 4xx problem and
// leaves every tenant, listing and audit trail exactly as it was, and starts nothing.
func TestBadFixturesChangeNothing(t *testing.T) {
	n := 0
	for _, name := range fixtureNames(t) {
		if !strings.Contains(name, "bad") {
			continue
		}
		n++
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			before := snapshot(t, e.st)
			resp := invoke(t, e.h, readFixture(t, name))
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Fatalf("status %d, want 4xx; body %s", resp.StatusCode, resp.Body)
			}
			problem(t, resp)
			if after := snapshot(t, e.st); !bytes.Equal(before, after) {
				t.Errorf("tables changed:\nbefore %s\nafter  %s", before, after)
			}
			if c := e.plans.Calls(); len(c) != 0 {
				t.Errorf("flows called: %v", c)
			}
			if k := e.subs.Keys(); len(k) != 0 {
				t.Errorf("billing called: %v", k)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d bad fixtures", n)
	}
}

// snapshot renders every seed, every state listing and every audit trail as JSON.
func snapshot(t *testing.T, st *store.Store) []byte {
	t.Helper()
	ctx := context.Background()
	snap := map[string]any{}
	for _, s := range seeds {
		tn, err := st.GetTenant(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		trail, err := st.Audit(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		snap["tenant/"+s.ID] = tn
		snap["audit/"+s.ID] = trail
	}
	for _, state := range tenant.States {
		var all []*tenant.Tenant
		cursor := ""
		for {
			p, err := st.ListByState(ctx, state, cursor, 100)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Tenants...)
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		snap["state/"+string(state)] = all
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFixturesAreValidEvents: each fixture decodes strictly into the v2 event type (no
// misspelt field is silently dropped) and is self-consistent, and its route is one the
// template declares.
func TestFixturesAreValidEvents(t *testing.T) {
	declared := templateRoutes(t)
	for _, name := range fixtureNames(t) {
		dec := json.NewDecoder(bytes.NewReader(readFixture(t, name)))
		dec.DisallowUnknownFields()
		var ev events.APIGatewayV2HTTPRequest
		if err := dec.Decode(&ev); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		rc := ev.RequestContext
		switch {
		case ev.Version != "2.0":
			t.Errorf("%s: version %q", name, ev.Version)
		case ev.RouteKey != rc.RouteKey:
			t.Errorf("%s: routeKey %q vs requestContext.routeKey %q", name, ev.RouteKey, rc.RouteKey)
		case ev.RawPath != rc.HTTP.Path:
			t.Errorf("%s: rawPath %q vs http.path %q", name, ev.RawPath, rc.HTTP.Path)
		}
		if ev.RouteKey == "$default" {
			continue
		}
		if !slices.Contains(declared, ev.RouteKey) {
			t.Errorf("%s: route %q is not in template.yaml", name, ev.RouteKey)
			continue
		}
		method, path, _ := strings.Cut(ev.RouteKey, " ")
		for name, value := range ev.PathParameters {
			path = strings.Replace(path, "{"+name+"}", value, 1)
		}
		if rc.HTTP.Method != method || ev.RawPath != "/"+rc.Stage+path {
			t.Errorf("%s: %s %s does not match route %s with id %q on stage %s", name, rc.HTTP.Method, ev.RawPath, ev.RouteKey, ev.PathParameters["id"], rc.Stage)
		}
	}
}

// TestRoutesMatchTemplate: the handler serves exactly the HttpApi events of ApiFunction.
func TestRoutesMatchTemplate(t *testing.T) {
	declared := templateRoutes(t)
	if got := httpapi.RouteKeys(); !slices.Equal(got, declared) {
		t.Fatalf("handler routes %v\ntemplate routes %v", got, declared)
	}
}

// templateRoutes reads the route keys of ApiFunction's HttpApi events from template.yaml
// (yaml nodes, so the CloudFormation tags need no resolving).
func templateRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	evs := lookup(doc.Content[0], "Resources", "ApiFunction", "Properties", "Events")
	if evs == nil {
		t.Fatal("template.yaml: no ApiFunction Events")
	}
	var keys []string
	for i := 1; i < len(evs.Content); i += 2 {
		e := evs.Content[i]
		if typ := lookup(e, "Type"); typ == nil || typ.Value != "HttpApi" {
			continue
		}
		m, p := lookup(e, "Properties", "Method"), lookup(e, "Properties", "Path")
		if m == nil || p == nil {
			t.Fatalf("HttpApi event %s without Method or Path", evs.Content[i-1].Value)
		}
		keys = append(keys, strings.ToUpper(m.Value)+" "+p.Value)
	}
	sort.Strings(keys)
	return keys
}

func lookup(n *yaml.Node, path ...string) *yaml.Node {
	for _, k := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}
