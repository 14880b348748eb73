package httpapi_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/export"
)

// TestFailedExportCauseIsForOperators: a failed export's cause (internal error text)
// is shown to operators and hidden from the tenant's own token, which still sees that
// it failed and the error's name.
func TestFailedExportCauseIsForOperators(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	job := &export.Job{ID: "exp_failed_one", TenantID: "tenant_acme", Status: export.Failed, CreatedAt: now, UpdatedAt: now,
		Key: export.ObjectKey("tenant_acme", "exp_failed_one"), Parts: []export.Part{}, Counts: map[string]int64{},
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
