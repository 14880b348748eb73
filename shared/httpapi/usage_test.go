package httpapi_test

import (
	"context"
	"math"
	"testing"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestUsageBoundsAreStored: the largest figures the API accepts are written to and read
// back from DynamoDB exactly, and -0 is stored as 0, so every accepted report is one
// DynamoDB takes.
func TestUsageBoundsAreStored(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		body string
		want tenant.Usage
	}{
		{`{"users": 1000000000000000, "storage_gb": 1e9, "api_calls_per_month": 1000000000000000}`,
			tenant.Usage{Users: tenant.MaxUsers, StorageGB: tenant.MaxStorageGB, APICallsPerMonth: tenant.MaxAPICallsPerMonth}},
		{`{"users": 0, "storage_gb": 0.000001, "api_calls_per_month": 0}`, tenant.Usage{StorageGB: tenant.MinStorageGB}},
		{`{"users": 7, "storage_gb": 123456.78901234567, "api_calls_per_month": 1}`, tenant.Usage{Users: 7, StorageGB: 123456.78901234567, APICallsPerMonth: 1}},
		{`{"users": 0, "storage_gb": -0, "api_calls_per_month": 0}`, tenant.Usage{}},
		{`{"users": 0, "storage_gb": -0.0e5, "api_calls_per_month": -0}`, tenant.Usage{}},
	}
	for _, c := range cases {
		resp := invokeEvent(t, e.h, req("PUT /tenants/{id}/usage", "tenant_techstart", authz(meteringClaims), c.body))
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d: %s", c.body, resp.StatusCode, resp.Body)
			continue
		}
		got, err := e.st.GetTenant(context.Background(), "tenant_techstart")
		if err != nil {
			t.Fatal(err)
		}
		if got.Usage != c.want || math.Signbit(got.Usage.StorageGB) {
			t.Errorf("%s: stored %+v, want %+v", c.body, got.Usage, c.want)
		}
	}
}
