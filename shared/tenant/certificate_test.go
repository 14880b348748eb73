package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// verifiedAll is every source verified at `at` plus i seconds (in Sources order), with
// the counts given and none otherwise.
func verifiedAll(at time.Time, counts map[string]int64) map[string]SourceCertificate {
	out := map[string]SourceCertificate{}
	for i, src := range Sources {
		out[src] = SourceCertificate{ItemsDeleted: counts[src], VerifiedEmptyAt: at.Add(time.Duration(i) * time.Second)}
	}
	return out
}

// TestDeletionCertificateSeal: the sha256 is that of the canonical JSON without the
// sha256 field (keys sorted at every level, arrays in order, no whitespace), survives a
// JSON round trip, and any change of content breaks it.
func TestDeletionCertificateSeal(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	inv := &PurgeInventory{OperationID: "op_1", TakenAt: at, Counts: map[string]int64{SourceControlPlane: 3, SourceTenantData: 50_000, SourceExports: 2}}
	verified := map[string]SourceCertificate{
		SourceControlPlane:   {ItemsDeleted: 3, VerifiedEmptyAt: at.Add(2 * time.Second)},
		SourceOperations:     {ItemsDeleted: 2, VerifiedEmptyAt: at.Add(2 * time.Second)},
		SourceIdempotency:    {ItemsDeleted: 1, VerifiedEmptyAt: at.Add(2 * time.Second)},
		SourceWebhooks:       {ItemsDeleted: 0, VerifiedEmptyAt: at.Add(2 * time.Second)},
		SourceTenantData:     {ItemsDeleted: 50_000, VerifiedEmptyAt: at},
		SourceExports:        {ItemsDeleted: 2, VerifiedEmptyAt: at.Add(time.Second)},
		SourceExportUploads:  {ItemsDeleted: 0, VerifiedEmptyAt: at.Add(time.Second)},
		SourceStripeCustomer: {ItemsDeleted: 1, VerifiedEmptyAt: at.Add(5 * time.Second), Note: "customer deleted at Stripe"},
	}
	c, err := NewDeletionCertificate("tenant_x", "op_2", inv, verified, at.Add(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := c.Canonical()
	want := `{"backups_expire_at":"2026-04-05T11:00:02.123Z","generated_at":"2026-03-01T11:00:03.123Z","inventory_taken_at":"2026-03-01T11:00:00.123Z",` +
		`"operation_id":"op_2",` +
		`"remains":[{"until":"2026-04-05T11:00:02.123Z","what":"DynamoDB point-in-time recovery backups of the control-plane and application data tables","why":"continuous backups cannot be edited; the deleted items leave them when they age out of the 35-day recovery window"},` +
		`{"until":"as long as Stripe keeps them (Stripe's retention, not set by this service)","what":"invoices and payments of the deleted Stripe customer, with the billing details printed on them","why":"kept by Stripe per its retention: deleting a customer keeps its invoices readable, as the seller's accounting records"},` +
		`{"until":"kept with the control-plane table","what":"the tombstone (tenant id, plan, lifecycle dates, this certificate), its audit trail with roles in place of people and reasons, and the purge operations' records","why":"the proof that and when the tenant was deleted; they hold no name, e-mail, usage or billing reference"}],` +
		`"sources":{"control_plane":{"items_deleted":3,"verified_empty_at":"2026-03-01T11:00:02.123Z"},` +
		`"export_uploads":{"items_deleted":0,"verified_empty_at":"2026-03-01T11:00:01.123Z"},` +
		`"exports":{"items_deleted":2,"verified_empty_at":"2026-03-01T11:00:01.123Z"},` +
		`"idempotency":{"items_deleted":1,"verified_empty_at":"2026-03-01T11:00:02.123Z"},` +
		`"operations":{"items_deleted":2,"verified_empty_at":"2026-03-01T11:00:02.123Z"},` +
		`"stripe_customer":{"items_deleted":1,"note":"customer deleted at Stripe","verified_empty_at":"2026-03-01T11:00:05.123Z"},` +
		`"tenant_data":{"items_deleted":50000,"verified_empty_at":"2026-03-01T11:00:00.123Z"},` +
		`"webhooks":{"items_deleted":0,"verified_empty_at":"2026-03-01T11:00:02.123Z"}},` +
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
	var cut DeletionCertificate
	if err := json.Unmarshal(raw, &cut); err != nil {
		t.Fatal(err)
	}
	cut.Remains = cut.Remains[:1]
	if cut.Verify() {
		t.Error("a certificate with a remains entry dropped still verifies")
	}
	if _, err := NewDeletionCertificate("tenant_x", "op_2", inv, map[string]SourceCertificate{SourceTenantData: {VerifiedEmptyAt: at}}, at); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Errorf("certificate without every source verified: %v", err)
	}
}

// TestCertificateRemainsWithoutStripeCustomer: with no Stripe customer deleted (billing
// off, or none held), nothing is said to remain at Stripe.
func TestCertificateRemainsWithoutStripeCustomer(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := verifiedAll(at, nil)
	v[SourceStripeCustomer] = SourceCertificate{VerifiedEmptyAt: at, Note: "billing disabled; nothing held"}
	c, err := NewDeletionCertificate("tenant_y", "op_3", &PurgeInventory{TakenAt: at}, v, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Remains {
		if strings.Contains(r.What, "Stripe") {
			t.Errorf("remains %+v without a Stripe customer", r)
		}
	}
	if len(c.Remains) != 2 || c.Remains[0].Until != c.BackupsExpireAt.Format(time.RFC3339Nano) {
		t.Errorf("remains %+v, want backups until %s and the tombstone", c.Remains, c.BackupsExpireAt)
	}
	// The backups expire 35 days after the last AWS source was verified (Sources
	// order puts export_uploads last of them, 6 s after at).
	if want := at.Add(6 * time.Second).Add(BackupRetention); !c.BackupsExpireAt.Equal(want) {
		t.Errorf("backups_expire_at %s, want %s", c.BackupsExpireAt, want)
	}
}
