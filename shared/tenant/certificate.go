package tenant

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Data sources a purge deletes and certifies, by the names the certificate uses.
const (
	// SourceControlPlane is the tenant's items in the control-plane table's partition
	// TENANT#<id> other than the tenant item and its audit trail: entitlements, export
	// jobs and the export marker, anything else written under its partition key.
	SourceControlPlane = "control_plane"
	// SourceOperations is the records of the tenant's operations (OP#<id>), found by
	// tenant (the ByTenant index), whether or not the audit trail names them; the
	// purge's own operations are kept.
	SourceOperations = "operations"
	// SourceIdempotency is the API's Idempotency-Key records of requests about the
	// tenant (they keep the answers, which hold its data).
	SourceIdempotency = "idempotency"
	// SourceWebhooks is the Stripe webhook's event dedupe and per-subscription order
	// records of the tenant.
	SourceWebhooks = "webhooks"
	// SourceTenantData is the tenant's partition of the application data table.
	SourceTenantData = "tenant_data"
	// SourceExports is every object version and delete marker under
	// exports/<tenant_id>/ in the exports bucket.
	SourceExports = "exports"
	// SourceExportUploads is the multipart uploads still open under
	// exports/<tenant_id>/: the parts of an export that never completed.
	SourceExportUploads = "export_uploads"
	// SourceStripeCustomer is the tenant's customer at Stripe (name, e-mail,
	// tenant_id metadata), deleted by the purge.
	SourceStripeCustomer = "stripe_customer"
)

// Sources lists every purged source in certificate order.
var Sources = []string{SourceControlPlane, SourceOperations, SourceIdempotency, SourceWebhooks, SourceTenantData, SourceExports,
	SourceExportUploads, SourceStripeCustomer}

// BackupRetention is how long deleted data can still be restored from backups: DynamoDB
// point-in-time recovery keeps 35 days (the exports bucket is unversioned and has none).
// A certificate says when the last backup holding the tenant's data expires.
const BackupRetention = 35 * 24 * time.Hour

// PurgeInventory is what a purge counted in each source before it deleted anything. It
// is written once per tenant and kept on the tenant item across purge attempts, so a
// purge that died midway and is started again still certifies what existed before the
// first deletion, not what was left.
type PurgeInventory struct {
	OperationID string           `json:"operation_id"`
	TakenAt     time.Time        `json:"taken_at"`
	Counts      map[string]int64 `json:"counts"`
}

// SourceCertificate is what a certificate says of one source.
type SourceCertificate struct {
	ItemsDeleted    int64     `json:"items_deleted"`
	VerifiedEmptyAt time.Time `json:"verified_empty_at"`
	// Note says what was done where a count says too little: for the Stripe customer,
	// whether it was deleted or billing was off.
	Note string `json:"note,omitempty"`
}

// Remain is something of the tenant's that outlives the purge: what it is, why it is
// kept, and until when (an RFC 3339 time, or in words when no date is known here).
type Remain struct {
	What  string `json:"what"`
	Why   string `json:"why"`
	Until string `json:"until"`
}

// DeletionCertificate is the proof of a verified hard delete that the PURGED tombstone
// keeps and the TenantPurged event carries: per source how many items existed and when
// the source was read back empty, what remains and why, when the last backup expires,
// and a SHA-256 of its canonical JSON so a copy handed to a customer or an auditor can
// be checked.
type DeletionCertificate struct {
	TenantID        string                       `json:"tenant_id"`
	OperationID     string                       `json:"operation_id"`
	Sources         map[string]SourceCertificate `json:"sources"`
	Remains         []Remain                     `json:"remains"`
	InventoryAt     time.Time                    `json:"inventory_taken_at"`
	BackupsExpireAt time.Time                    `json:"backups_expire_at"`
	GeneratedAt     time.Time                    `json:"generated_at"`
	// SHA256 is the hex SHA-256 of Canonical(): the certificate without this field.
	SHA256 string `json:"sha256,omitempty"`
}

// NewDeletionCertificate builds and seals the certificate of a purge from its
// inventory and what it found when it read each source back (items_deleted is the
// caller's: the inventory's count, or what a verification learnt instead). Every
// source of Sources must be there. Times are kept in UTC to the millisecond so the
// canonical form is the same after any round trip.
func NewDeletionCertificate(tenantID, operationID string, inv *PurgeInventory, verified map[string]SourceCertificate, generatedAt time.Time) (*DeletionCertificate, error) {
	if inv == nil {
		return nil, fmt.Errorf("certificate of %s: no inventory", tenantID)
	}
	c := &DeletionCertificate{TenantID: tenantID, OperationID: operationID, Sources: map[string]SourceCertificate{},
		InventoryAt: certTime(inv.TakenAt), GeneratedAt: certTime(generatedAt)}
	var last time.Time
	for _, src := range Sources {
		sc, ok := verified[src]
		if !ok || sc.VerifiedEmptyAt.IsZero() {
			return nil, fmt.Errorf("certificate of %s: source %s was not verified", tenantID, src)
		}
		sc.VerifiedEmptyAt = certTime(sc.VerifiedEmptyAt)
		c.Sources[src] = sc
		if src != SourceStripeCustomer && sc.VerifiedEmptyAt.After(last) {
			last = sc.VerifiedEmptyAt
		}
	}
	c.BackupsExpireAt = last.Add(BackupRetention)
	c.Remains = remains(c)
	if err := c.Seal(); err != nil {
		return nil, err
	}
	return c, nil
}

// remains lists what outlives the purge: the backups until they age out, the invoices
// of a deleted Stripe customer, and the tombstone itself. The exports bucket keeps
// nothing: it is not versioned, and the purge deleted every version and open upload
// under the tenant's prefix anyway.
func remains(c *DeletionCertificate) []Remain {
	out := []Remain{{
		What: "DynamoDB point-in-time recovery backups of the control-plane and application data tables",
		Why: "continuous backups cannot be edited; the deleted items leave them when they age out of the " +
			"35-day recovery window",
		Until: c.BackupsExpireAt.Format(time.RFC3339Nano),
	}}
	if c.Sources[SourceStripeCustomer].ItemsDeleted > 0 {
		out = append(out, Remain{
			What: "invoices and payments of the deleted Stripe customer, with the billing details printed on them",
			Why: "kept by Stripe per its retention: deleting a customer keeps its invoices readable, as the " +
				"seller's accounting records",
			Until: "as long as Stripe keeps them (Stripe's retention, not set by this service)",
		})
	}
	return append(out, Remain{
		What: "the tombstone (tenant id, plan, lifecycle dates, this certificate), its audit trail with roles in " +
			"place of people and reasons, and the purge operations' records",
		Why:   "the proof that and when the tenant was deleted; they hold no name, e-mail, usage or billing reference",
		Until: "kept with the control-plane table",
	})
}

func certTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// Canonical returns the certificate without its sha256 as canonical JSON: object keys
// sorted at every level, no insignificant whitespace, no HTML escaping, numbers as
// written, times in RFC 3339 UTC. Anyone can recompute it from the published JSON.
func (c *DeletionCertificate) Canonical() ([]byte, error) {
	cp := *c
	cp.SHA256 = ""
	raw, err := json.Marshal(&cp)
	if err != nil {
		return nil, fmt.Errorf("marshal certificate: %w", err)
	}
	return CanonicalJSON(raw)
}

// Seal sets SHA256 from the canonical form.
func (c *DeletionCertificate) Seal() error {
	b, err := c.Canonical()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	c.SHA256 = hex.EncodeToString(sum[:])
	return nil
}

// Verify reports whether SHA256 matches the certificate's content.
func (c *DeletionCertificate) Verify() bool {
	b, err := c.Canonical()
	if err != nil {
		return false
	}
	sum := sha256.Sum256(b)
	return c.SHA256 == hex.EncodeToString(sum[:])
}

// CanonicalJSON rewrites a JSON document with its object keys sorted, without
// insignificant whitespace or HTML escaping, numbers kept exactly as written.
func CanonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps are written with sorted keys
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
