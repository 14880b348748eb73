package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestDeletionCertificateOfPurgedTenant reads the certificate of a PURGED tombstone
// through the fixture's event (id swapped), and checks that a DELETED tenant holding a
// certificate its purge has not committed yet is still a 404.
func TestDeletionCertificateOfPurgedTenant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	inv := &tenant.PurgeInventory{OperationID: "op_cert", TakenAt: at, Counts: map[string]int64{tenant.SourceControlPlane: 2, tenant.SourceTenantData: 7, tenant.SourceExports: 1}}
	verified := map[string]tenant.SourceCertificate{}
	for _, src := range tenant.Sources {
		verified[src] = tenant.SourceCertificate{ItemsDeleted: inv.Counts[src], VerifiedEmptyAt: at}
	}
	cert, err := tenant.NewDeletionCertificate("tenant_gone", "op_cert", inv, verified, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []tenant.Tenant{
		{ID: "tenant_gone", Plan: tenant.Starter, State: tenant.Purged, Certificate: cert},
		{ID: "tenant_purging", Name: "Purging Co", Plan: tenant.Starter, State: tenant.Deleted, Certificate: cert},
	} {
		if _, err := e.st.CreateTenant(ctx, &tn, store.Actor{Who: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(id string) (int, string) {
		raw := strings.ReplaceAll(string(readFixture(t, "get-deletion-certificate.json")), "tenant_acme", id)
		resp := invoke(t, e.h, []byte(raw))
		return resp.StatusCode, resp.Body
	}
	status, body := get("tenant_gone")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var got tenant.DeletionCertificate
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Verify() || got.SHA256 != cert.SHA256 || got.Sources[tenant.SourceTenantData].ItemsDeleted != 7 ||
		!got.BackupsExpireAt.Equal(at.Add(tenant.BackupRetention)) {
		t.Errorf("certificate %s", body)
	}
	if status, body := get("tenant_purging"); status != 404 || !strings.Contains(body, "until it is purged") {
		t.Errorf("certificate of a DELETED tenant: %d %s", status, body)
	}
	if status, _ := get("tenant_nobody"); status != 404 {
		t.Errorf("certificate of an unknown tenant: %d", status)
	}
}
