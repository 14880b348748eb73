package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDeletionCertificateSeal: the sha256 is that of the canonical JSON without the
// sha256 field (keys sorted, no whitespace), survives a JSON round trip, and any change
// of content breaks it.
func TestDeletionCertificateSeal(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	inv := &PurgeInventory{OperationID: "op_1", TakenAt: at, Counts: map[string]int64{SourceControlPlane: 3, SourceTenantData: 50_000, SourceExports: 2}}
	verified := map[string]time.Time{SourceControlPlane: at.Add(2 * time.Second), SourceTenantData: at, SourceExports: at.Add(time.Second)}
	c, err := NewDeletionCertificate("tenant_x", "op_2", inv, verified, at.Add(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := c.Canonical()
	want := `{"backups_expire_at":"2026-04-05T11:00:02.123Z","generated_at":"2026-03-01T11:00:03.123Z","inventory_taken_at":"2026-03-01T11:00:00.123Z",` +
		`"operation_id":"op_2","sources":{"control_plane":{"items_deleted":3,"verified_empty_at":"2026-03-01T11:00:02.123Z"},` +
		`"exports":{"items_deleted":2,"verified_empty_at":"2026-03-01T11:00:01.123Z"},"tenant_data":{"items_deleted":50000,"verified_empty_at":"2026-03-01T11:00:00.123Z"}},` +
		`"tenant_id":"tenant_x"}`
	if string(canon) != want {
		t.Fatalf("canonical\n got %s\nwant %s", canon, want)
	}
	sum := sha256.Sum256([]byte(want))
	if c.SHA256 != hex.EncodeToString(sum[:]) || !c.Verify() {
		t.Fatalf("sha256 %s, want %x", c.SHA256, sum)
	}
	raw, _ := json.Marshal(c)
	var back DeletionCertificate
	if err := json.Unmarshal(raw, &back); err != nil || !back.Verify() || back.SHA256 != c.SHA256 {
		t.Fatalf("round trip %s: verify %v (%v)", raw, back.Verify(), err)
	}
	back.Sources[SourceTenantData] = SourceCertificate{ItemsDeleted: 49_999, VerifiedEmptyAt: back.Sources[SourceTenantData].VerifiedEmptyAt}
	if back.Verify() {
		t.Error("a changed count still verifies")
	}
	if _, err := NewDeletionCertificate("tenant_x", "op_2", inv, map[string]time.Time{SourceTenantData: at}, at); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Errorf("certificate without every source verified: %v", err)
	}
}
