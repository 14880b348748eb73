package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestFailedExportCauseIsForOperators: a failed export's cause (internal error text)
// is shown to operators and hidden from the tenant's own token, which still sees that
// it failed and the error's name.
func TestFailedExportCauseIsForOperators(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	job := &export.Job{ID: "exp_failed_one", TenantID: "tenant_acme", Status: export.Failed, CreatedAt: now, UpdatedAt: now,
		Key: export.ObjectKey("tenant_acme", "exp_failed_one"), Counts: map[string]int64{},
		Error: "States.TaskFailed", Cause: "AccessDenied on arn:aws:s3:::internal-bucket"}
	if err := e.jobs.Put(context.Background(), job, -1, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		claims    map[string]string
		wantCause string
	}{
		{"operator", adminClaims, job.Cause},
		{"own tenant", acmeClaims, ""},
	} {
		one := req("GET /tenants/{id}/exports/{export_id}", "tenant_acme", authz(tc.claims), "")
		one.PathParameters["export_id"] = "exp_failed_one"
		one.RawPath = "/tenants/tenant_acme/exports/exp_failed_one"
		list := req("GET /tenants/{id}/exports", "tenant_acme", authz(tc.claims), "")
		for _, ev := range []events.APIGatewayV2HTTPRequest{one, list} {
			resp, err := e.h.Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			var v export.View
			var l struct{ Exports []export.View }
			if ev.RouteKey == list.RouteKey {
				if err := json.Unmarshal([]byte(resp.Body), &l); err == nil && len(l.Exports) == 1 {
					v = l.Exports[0]
				}
			} else {
				_ = json.Unmarshal([]byte(resp.Body), &v)
			}
			if resp.StatusCode != 200 || v.Status != export.Failed || v.Error != "States.TaskFailed" || v.Cause != tc.wantCause {
				t.Errorf("%s, %s: %d %s", tc.name, ev.RouteKey, resp.StatusCode, resp.Body)
			}
		}
	}
}

// TestConcurrentExportRequestsCreateOne: requests that race (a double click, a client
// retry while the first is in flight) get one export between them, and one flow.
func TestConcurrentExportRequestsCreateOne(t *testing.T) {
	e := newEnv(t)
	const n = 12
	ids := make([]string, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.h.Handle(context.Background(), req("POST /tenants/{id}/exports", "tenant_acme", authz(acmeClaims), ""))
			if err != nil {
				t.Error(err)
				return
			}
			codes[i] = resp.StatusCode
			var v export.View
			_ = json.Unmarshal([]byte(resp.Body), &v)
			ids[i] = v.ExportID
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 202 || ids[i] == "" || ids[i] != ids[0] {
			t.Errorf("request %d: %d %q, want 202 with export %q", i, codes[i], ids[i], ids[0])
		}
	}
	if started := e.exports.names(); len(started) != 1 || started[0] != ids[0] {
		t.Errorf("flows started %v, want exactly [%s]", started, ids[0])
	}
	jobs, err := e.jobs.List(context.Background(), "tenant_acme")
	if err != nil || len(jobs) != 1 {
		t.Errorf("%d jobs recorded (%v), want 1", len(jobs), err)
	}
	// Once that export has ended, the next request creates a new one.
	job, _ := e.jobs.Get(context.Background(), "tenant_acme", ids[0])
	job.Status = export.Failed
	if err := e.jobs.Put(context.Background(), job, 0, export.Queued); err != nil {
		t.Fatal(err)
	}
	resp, _ := e.h.Handle(context.Background(), req("POST /tenants/{id}/exports", "tenant_acme", authz(acmeClaims), ""))
	var v export.View
	_ = json.Unmarshal([]byte(resp.Body), &v)
	if resp.StatusCode != 202 || v.ExportID == "" || v.ExportID == ids[0] || v.Status != export.Queued {
		t.Errorf("after the first ended: %d %s, want a new queued export", resp.StatusCode, resp.Body)
	}
}

// TestExportRefusedOnceThePurgeMayRun: a tenant whose data is about to be erased or is
// gone gets no new export, so no export runs alongside (or after) the purge: 409
// export-refused for a PURGED tenant, a DELETED one past purge_after (even before the
// purge ran), and one a purge holds. A DELETED tenant inside its retention still
// exports, also while another flow (a win-back) holds it.
func TestExportRefusedOnceThePurgeMayRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	past, future := now.Add(-time.Hour), now.Add(24*time.Hour)
	op := func(id, kind string) string {
		if _, err := e.st.CreateOperation(ctx, &tenant.Operation{ID: id, TenantID: "tenant_" + kind + "held", Kind: kind, Status: tenant.OpRunning}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, tc := range []struct {
		id         string
		state      tenant.State
		purgeAfter *time.Time
		operation  string
		want       int
	}{
		{"tenant_purged", tenant.Purged, &past, "", 409},
		{"tenant_due", tenant.Deleted, &past, "", 409},
		{"tenant_purgeheld", tenant.Deleted, &future, op("op_purge_holds", tenant.KindPurge), 409},
		{"tenant_kept", tenant.Deleted, &future, "", 202},
		{"tenant_reactivationheld", tenant.Deleted, &future, op("op_winback_holds", tenant.KindReactivation), 202},
	} {
		deleted := now.Add(-48 * time.Hour)
		tn := &tenant.Tenant{ID: tc.id, Name: "Co " + tc.id, Plan: tenant.Starter, State: tc.state, DeletedAt: &deleted, PurgeAfter: tc.purgeAfter,
			RetentionDays: 30, Operation: tc.operation}
		if _, err := e.st.CreateTenant(ctx, tn, store.Actor{Who: "seed"}); err != nil {
			t.Fatal(err)
		}
		for _, claims := range []map[string]string{adminClaims, {"sub": "u", "tenant_id": tc.id}} {
			resp, err := e.h.Handle(ctx, req("POST /tenants/{id}/exports", tc.id, authz(claims), ""))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("%s (%s, purge_after %v, held by %q): %d %s, want %d", tc.id, tc.state, tc.purgeAfter.Format(time.RFC3339), tc.operation, resp.StatusCode, resp.Body, tc.want)
				continue
			}
			if tc.want == 409 {
				if p := problem(t, resp); p.Type != "urn:tenantflow:problem:export-refused" {
					t.Errorf("%s: problem %+v, want type export-refused", tc.id, p)
				}
			}
		}
	}
}

// TestExportIDIsShapeChecked: an export id that cannot be one (too long for a
// DynamoDB key, characters no export id has) is a 404 stating the rule before anything
// is read, and no 404 repeats the id the client sent.
func TestExportIDIsShapeChecked(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{strings.Repeat("x", 2000), "exp_" + strings.Repeat("a", 1100), "exp_<script>", "EXP_1", "exp_19b7a2c0000_0123456789abcdef"} {
		ev := req("GET /tenants/{id}/exports/{export_id}", "tenant_acme", authz(adminClaims), "")
		ev.PathParameters["export_id"] = id
		ev.RawPath = "/tenants/tenant_acme/exports/" + id
		resp, err := e.h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 404 {
			t.Errorf("export id of %d characters: %d %.200s, want 404", len(id), resp.StatusCode, resp.Body)
			continue
		}
		if p := problem(t, resp); p.Type != "urn:tenantflow:problem:not-found" || strings.Contains(p.Detail, id) {
			t.Errorf("export id of %d characters: problem %.300s, want not-found without the id", len(id), resp.Body)
		}
	}
}
