package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
)

// EntitlementsDocument is what the app plane reads to decide, on every request of a
// tenant's users, whether the tenant may do something and how much: GET
// /tenants/{id}/entitlements answers it and TenantEntitlementsChanged carries it.
// It is built from the tenant's entitlements item alone (BuildDocument), so one
// revision of that item is always one document.
type EntitlementsDocument struct {
	TenantID string `json:"tenant_id"`
	// Version orders the documents of a tenant: a later change has a higher version.
	// A consumer keeps the highest it has seen and ignores events with a lower or
	// equal one (events may repeat and arrive out of order).
	Version int64 `json:"version"`
	// State is what the application enforces: ACTIVE (the limits and features apply),
	// SUSPENDED (read and export only), DELETED (no access) or PURGED (gone). A flow
	// in progress shows the state its provisioning step has written.
	State State `json:"state"`
	Plan  Plan  `json:"plan"`
	// CatalogVersion is the version of the catalogue the limits and features come from.
	CatalogVersion string `json:"catalog_version"`
	// Limits are the effective limits (null: unlimited); all zero unless ACTIVE.
	Limits LimitsView `json:"limits"`
	// Features are the effective features, every feature of the catalogue named; all
	// false unless ACTIVE.
	Features map[string]bool `json:"features"`
	// Overrides are the operator's overrides applied to the plan's limits and
	// features (empty objects when there are none).
	Overrides AppliedOverrides `json:"overrides"`
}

// AppliedOverrides are the overrides in a document, as the API takes them: an
// unlimited limit is "unlimited".
type AppliedOverrides struct {
	Limits   LimitOverrides  `json:"limits"`
	Features map[string]bool `json:"features"`
}

// PurgedVersion is the version of a purged tenant's document. A purge deletes the
// entitlements item, and with it the revision count; nothing can follow a purge, so
// its document takes the highest version a JSON number holds exactly (2^53-1).
const PurgedVersion = 1<<53 - 1

// BuildDocument is the entitlements document of item e on catalogue c. The limits and
// features are the catalogue's for the item's plan, so a catalogue deployed later
// applies to every tenant at once (CatalogVersion says which one); a plan the
// catalogue no longer has keeps the limits written when the tenant entered it and no
// features. Overrides apply only while access is active.
func BuildDocument(e *Entitlements, c *Catalog) EntitlementsDocument {
	d := EntitlementsDocument{TenantID: e.TenantID, Version: e.Revision, Plan: e.Plan, CatalogVersion: c.Version(),
		Overrides: AppliedOverrides{Limits: LimitOverrides{}, Features: map[string]bool{}}}
	if o := e.Overrides; !o.Empty() {
		maps.Copy(d.Overrides.Limits, o.Limits)
		maps.Copy(d.Overrides.Features, o.Features)
	}
	features := map[string]bool{}
	for _, n := range c.FeatureNames() {
		features[n] = false
	}
	switch e.Access {
	case AccessSuspended:
		d.State = Suspended
	case AccessRevoked:
		d.State = Deleted
	default:
		d.State = Active
	}
	if d.State != Active {
		d.Limits = Limits{}.View()
		d.Features = features
		return d
	}
	limits, ok := c.LimitsFor(e.Plan, e.Overrides)
	if !ok {
		limits = e.Overrides.ApplyLimits(e.Limits)
	}
	if f, ok := c.Features(e.Plan); ok {
		maps.Copy(features, f)
	}
	d.Limits, d.Features = limits.View(), e.Overrides.ApplyFeatures(features)
	return d
}

// PurgedDocument is the document of a purged tenant (see PurgedVersion): nothing
// comes from the catalogue any more, so it names no features and no catalogue
// version, and the purge (which knows no catalogue) and the API build the same one.
func PurgedDocument(t *Tenant) EntitlementsDocument {
	return EntitlementsDocument{TenantID: t.ID, Version: PurgedVersion, State: Purged, Plan: t.Plan,
		Limits: Limits{}.View(), Features: map[string]bool{}, Overrides: AppliedOverrides{Limits: LimitOverrides{}, Features: map[string]bool{}}}
}

// ETag is the strong entity tag of d's JSON (quoted, as HTTP sends it): equal
// documents have equal tags, because encoding/json writes map keys sorted.
func (d EntitlementsDocument) ETag() string {
	b, _ := json.Marshal(d) // strings, numbers, booleans and maps of them
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// Allows reports whether d grants feature name.
func (d EntitlementsDocument) Allows(name string) bool { return d.Features[name] }

// FeatureList returns the features d grants, sorted.
func (d EntitlementsDocument) FeatureList() []string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(d.Features)) {
		if d.Features[n] {
			out = append(out, n)
		}
	}
	return out
}
