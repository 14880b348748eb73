package httpapi_test

import (
	"context"
	"encoding/json"
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
