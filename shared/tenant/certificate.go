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
	// SourceControlPlane is the tenant's items in the control-plane table other than the
	// tenant item and its audit trail: entitlements, the records of its operations
	// (except the purge's own), anything else under its partition key.
	SourceControlPlane = "control_plane"
	// SourceTenantData is the tenant's partition of the application data table.
	SourceTenantData = "tenant_data"
	// SourceExports is the tenant's objects under exports/<tenant_id>/ in the exports bucket.
	SourceExports = "exports"
)

// Sources lists every purged source in certificate order.
var Sources = []string{SourceControlPlane, SourceTenantData, SourceExports}

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
}

// DeletionCertificate is the proof of a verified hard delete that the PURGED tombstone
// keeps and the TenantPurged event carries: per source how many items existed and when
// the source was read back empty, when the last backup expires, and a SHA-256 of its
// canonical JSON so a copy handed to a customer or an auditor can be checked.
type DeletionCertificate struct {
	TenantID        string                       `json:"tenant_id"`
	OperationID     string                       `json:"operation_id"`
	Sources         map[string]SourceCertificate `json:"sources"`
	InventoryAt     time.Time                    `json:"inventory_taken_at"`
	BackupsExpireAt time.Time                    `json:"backups_expire_at"`
	GeneratedAt     time.Time                    `json:"generated_at"`
	// SHA256 is the hex SHA-256 of Canonical(): the certificate without this field.
	SHA256 string `json:"sha256,omitempty"`
}

// NewDeletionCertificate builds and seals the certificate of a purge from its inventory
// and the time each source was verified empty. Times are kept in UTC to the
// millisecond so the canonical form is the same after any round trip.
func NewDeletionCertificate(tenantID, operationID string, inv *PurgeInventory, verified map[string]time.Time, generatedAt time.Time) (*DeletionCertificate, error) {
	if inv == nil {
		return nil, fmt.Errorf("certificate of %s: no inventory", tenantID)
	}
	c := &DeletionCertificate{TenantID: tenantID, OperationID: operationID, Sources: map[string]SourceCertificate{},
		InventoryAt: certTime(inv.TakenAt), GeneratedAt: certTime(generatedAt)}
	var last time.Time
	for _, src := range Sources {
		at, ok := verified[src]
		if !ok {
			return nil, fmt.Errorf("certificate of %s: source %s was not verified", tenantID, src)
		}
		at = certTime(at)
		c.Sources[src] = SourceCertificate{ItemsDeleted: inv.Counts[src], VerifiedEmptyAt: at}
		if at.After(last) {
			last = at
		}
	}
	c.BackupsExpireAt = last.Add(BackupRetention)
	if err := c.Seal(); err != nil {
		return nil, err
	}
	return c, nil
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
