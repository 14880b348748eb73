package tenant

import (
	"bytes"
	_ "embed" // the default catalogue document
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
)

// Plan is a subscription tier name.
type Plan string

// The four seed plans of the default catalogue, cheapest first. A deployment may supply
// another catalogue (PLAN_CATALOG); these names are only the default's.
const (
	Free         Plan = "free"
	Starter      Plan = "starter"
	Professional Plan = "professional"
	Enterprise   Plan = "enterprise"
)

// Unlimited marks a limit that is never exceeded.
const Unlimited = -1

// Limits are the entitlements of a plan. A negative value means unlimited.
type Limits struct {
	Users            int64   `json:"users"`
	StorageGB        float64 `json:"storage_gb"`
	APICallsPerMonth int64   `json:"api_calls_per_month"`
}

// The names of the limits, as documents and overrides spell them.
const (
	LimitUsers            = "users"
	LimitStorageGB        = "storage_gb"
	LimitAPICallsPerMonth = "api_calls_per_month"
)

// LimitNames lists the limits in their fixed order.
var LimitNames = []string{LimitUsers, LimitStorageGB, LimitAPICallsPerMonth}

// Catalog holds the plans in their rank order, their limits and their features, and
// the version of the document they were read from. It is immutable once built.
type Catalog struct {
	version  string
	order    []Plan
	limits   map[Plan]Limits
	features map[Plan]map[string]bool
	names    []string // feature names, sorted
}

//go:embed catalog.json
var defaultDocument []byte

var defaultCatalog = sync.OnceValue(func() *Catalog {
	c, err := ParseCatalog(defaultDocument)
	if err != nil {
		panic("tenant: the embedded default catalogue is invalid: " + err.Error())
	}
	return c
})

// DefaultCatalog returns the catalogue embedded in the code (catalog.json): the four
// seed plans. A deployment that supplies none runs on it.
func DefaultCatalog() *Catalog { return defaultCatalog() }

// DefaultDocument returns the JSON of the default catalogue, a starting point for a
// deployment's own.
func DefaultDocument() []byte { return slices.Clone(defaultDocument) }

// CatalogDocument is the catalogue as a deployment writes it (docs/catalog.md). In
// limits, null means unlimited.
type CatalogDocument struct {
	Version string            `json:"version"`
	Plans   []CatalogPlanSpec `json:"plans"`
}

// CatalogPlanSpec is one plan of a CatalogDocument.
type CatalogPlanSpec struct {
	Name     string          `json:"name"`
	Rank     *int            `json:"rank"`
	Limits   *LimitsView     `json:"limits"`
	Features map[string]bool `json:"features"`
}

// LimitsView is limits as documents show them: null means unlimited, which reads
// better than the internal -1.
type LimitsView struct {
	Users            *int64   `json:"users"`
	StorageGB        *float64 `json:"storage_gb"`
	APICallsPerMonth *int64   `json:"api_calls_per_month"`
}

// View returns l with null for unlimited.
func (l Limits) View() LimitsView {
	var out LimitsView
	if l.Users >= 0 {
		out.Users = &l.Users
	}
	if l.StorageGB >= 0 {
		out.StorageGB = &l.StorageGB
	}
	if l.APICallsPerMonth >= 0 {
		out.APICallsPerMonth = &l.APICallsPerMonth
	}
	return out
}

// CatalogError is a supplied catalogue that cannot be used; Problems lists every
// reason, each naming where it is.
type CatalogError struct {
	Problems []string
}

func (e *CatalogError) Error() string {
	return "plan catalogue invalid: " + strings.Join(e.Problems, "; ")
}

// MaxCatalogVersion is the longest catalogue version accepted.
const MaxCatalogVersion = 64

// ParseCatalog reads and validates a catalogue document. It refuses unknown fields and
// reports every problem at once (*CatalogError): a missing or long version, no plans,
// a bad or repeated name, a missing or repeated rank, a missing, negative or
// out-of-bound limit, and feature sets that differ between plans (every plan names
// every feature, so a typo cannot silently read as false).
func ParseCatalog(data []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc CatalogDocument
	if err := dec.Decode(&doc); err != nil {
		return nil, &CatalogError{Problems: []string{"not a catalogue document: " + err.Error()}}
	}
	if dec.More() {
		return nil, &CatalogError{Problems: []string{"not a catalogue document: data after the JSON object"}}
	}
	return doc.Catalog()
}

// Catalog validates the document and builds the catalogue (see ParseCatalog).
func (doc CatalogDocument) Catalog() (*Catalog, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if doc.Version == "" || len(doc.Version) > MaxCatalogVersion {
		bad("version must be 1-%d characters", MaxCatalogVersion)
	}
	if len(doc.Plans) == 0 {
		bad("plans: at least one plan is required")
	}
	c := &Catalog{version: doc.Version, limits: map[Plan]Limits{}, features: map[Plan]map[string]bool{}}
	ranks := map[int]string{}
	var first []string // the first plan's feature names
	type ranked struct {
		plan Plan
		rank int
	}
	var order []ranked
	for i, p := range doc.Plans {
		where := fmt.Sprintf("plans[%d]", i)
		if !validName(p.Name) {
			bad("%s: name %q must be 1-32 characters of a-z, 0-9 or '_', starting with a letter", where, p.Name)
		} else {
			where = fmt.Sprintf("plan %q", p.Name)
			if _, dup := c.limits[Plan(p.Name)]; dup {
				bad("%s: named twice", where)
			}
		}
		switch {
		case p.Rank == nil:
			bad("%s: rank is required", where)
		case *p.Rank < 0:
			bad("%s: rank %d must not be negative", where, *p.Rank)
		default:
			if other, dup := ranks[*p.Rank]; dup {
				bad("%s: rank %d is also the rank of plan %q (ranks order the plans, so each is unique)", where, *p.Rank, other)
			}
			ranks[*p.Rank] = p.Name
			order = append(order, ranked{Plan(p.Name), *p.Rank})
		}
		l, lp := limitsOf(p.Limits)
		for _, msg := range lp {
			bad("%s: %s", where, msg)
		}
		names := slices.Sorted(maps.Keys(p.Features))
		for _, f := range names {
			if !validName(f) {
				bad("%s: feature %q must be 1-32 characters of a-z, 0-9 or '_', starting with a letter", where, f)
			}
		}
		if i == 0 {
			first = names
		} else if !slices.Equal(first, names) {
			bad("%s: features %s differ from those of plan %q (%s); every plan names every feature",
				where, listOrNone(names), doc.Plans[0].Name, listOrNone(first))
		}
		c.limits[Plan(p.Name)] = l
		c.features[Plan(p.Name)] = p.Features
	}
	if len(problems) > 0 {
		return nil, &CatalogError{Problems: problems}
	}
	slices.SortFunc(order, func(a, b ranked) int { return a.rank - b.rank })
	for _, r := range order {
		c.order = append(c.order, r.plan)
	}
	c.names = first
	return c, nil
}

// limitsOf reads a plan's limits: each is required, null is unlimited, and a number
// must be in the bounds of a usage figure (it is compared with one).
func limitsOf(v *LimitsView) (Limits, []string) {
	if v == nil {
		return Limits{}, []string{"limits are required (null for an unlimited one)"}
	}
	var problems []string
	l := Limits{Users: Unlimited, StorageGB: Unlimited, APICallsPerMonth: Unlimited}
	if v.Users != nil {
		if err := checkLimit(LimitUsers, float64(*v.Users)); err != nil {
			problems = append(problems, err.Error())
		}
		l.Users = *v.Users
	}
	if v.StorageGB != nil {
		if err := checkLimit(LimitStorageGB, *v.StorageGB); err != nil {
			problems = append(problems, err.Error())
		}
		l.StorageGB = *v.StorageGB
	}
	if v.APICallsPerMonth != nil {
		if err := checkLimit(LimitAPICallsPerMonth, float64(*v.APICallsPerMonth)); err != nil {
			problems = append(problems, err.Error())
		}
		l.APICallsPerMonth = *v.APICallsPerMonth
	}
	return l, problems
}

// checkLimit refuses a negative limit (unlimited is written null, or "unlimited" in an
// override) or one beyond what a usage figure may be.
func checkLimit(name string, v float64) error {
	upper := float64(MaxUsers)
	if name == LimitStorageGB {
		upper = MaxStorageGB
	}
	if math.IsNaN(v) || v < 0 || v > upper {
		return fmt.Errorf("limit %s %s must be between 0 and %g (null: unlimited)", name, trimFloat(v), upper)
	}
	return nil
}

func validName(s string) bool {
	if len(s) < 1 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// NewCatalog builds a catalog from plans in ascending order and their limits, without
// features. Every plan must have limits.
func NewCatalog(order []Plan, limits map[Plan]Limits) (*Catalog, error) {
	if len(order) == 0 {
		return nil, fmt.Errorf("catalog: no plans")
	}
	c := &Catalog{version: "custom", order: append([]Plan(nil), order...), limits: map[Plan]Limits{}, features: map[Plan]map[string]bool{}}
	for _, p := range order {
		l, ok := limits[p]
		if !ok {
			return nil, fmt.Errorf("catalog: plan %q has no limits", p)
		}
		c.limits[p] = l
	}
	return c, nil
}

// WithLimits returns a copy of c where the given plans have new limits (the older
// PLAN_LIMITS setting). The copy's version says so, so that documents built from it
// are not mistaken for the catalogue's own.
func (c *Catalog) WithLimits(overrides map[Plan]Limits) (*Catalog, error) {
	out := &Catalog{version: c.version + "+limits", order: c.order, limits: map[Plan]Limits{}, features: c.features, names: c.names}
	for p, l := range c.limits {
		out.limits[p] = l
	}
	for p, l := range overrides {
		if _, ok := c.limits[p]; !ok {
			return nil, fmt.Errorf("catalog: override for unknown plan %q", p)
		}
		out.limits[p] = l
	}
	return out, nil
}

// Version is the catalogue document's version.
func (c *Catalog) Version() string { return c.version }

// Plans returns the plans cheapest first.
func (c *Catalog) Plans() []Plan { return append([]Plan(nil), c.order...) }

// FeatureNames returns the catalogue's feature names, sorted.
func (c *Catalog) FeatureNames() []string { return slices.Clone(c.names) }

// HasFeature reports whether name is a feature of the catalogue.
func (c *Catalog) HasFeature(name string) bool { return slices.Contains(c.names, name) }

// Features returns a copy of p's features (nil, false for an unknown plan).
func (c *Catalog) Features(p Plan) (map[string]bool, bool) {
	if _, ok := c.limits[p]; !ok {
		return nil, false
	}
	out := make(map[string]bool, len(c.names))
	for _, n := range c.names {
		out[n] = c.features[p][n]
	}
	return out, true
}

// Parse returns the plan named s or a ValidationError listing the known plans.
func (c *Catalog) Parse(s string) (Plan, error) {
	p := Plan(s)
	if _, ok := c.limits[p]; !ok {
		names := make([]string, len(c.order))
		for i, p := range c.order {
			names[i] = string(p)
		}
		return "", &ValidationError{Field: "plan", Reason: fmt.Sprintf("unknown plan %q; one of %s", s, strings.Join(names, ", "))}
	}
	return p, nil
}

// Limits returns the limits of p (zero Limits and false for an unknown plan).
func (c *Catalog) Limits(p Plan) (Limits, bool) {
	l, ok := c.limits[p]
	return l, ok
}

// Rank returns p's position in the order (0 = cheapest), or -1 if unknown.
func (c *Catalog) Rank(p Plan) int {
	for i, q := range c.order {
		if q == p {
			return i
		}
	}
	return -1
}

// Compare returns -1, 0 or 1 as a is lower than, equal to or higher than b.
func (c *Catalog) Compare(a, b Plan) int {
	ra, rb := c.Rank(a), c.Rank(b)
	switch {
	case ra < rb:
		return -1
	case ra > rb:
		return 1
	}
	return 0
}

// CheckInUse refuses a catalogue that lacks a plan tenants are on: inUse counts the
// (not purged) tenants per plan. A plan may leave the catalogue only once no tenant is
// on it, because the policy ranks a tenant's plan against the one it asks for.
func (c *Catalog) CheckInUse(inUse map[Plan]int) error {
	var problems []string
	for _, p := range slices.Sorted(maps.Keys(inUse)) {
		if _, ok := c.limits[p]; !ok && inUse[p] > 0 {
			problems = append(problems, fmt.Sprintf("plan %q is not in the catalogue but %d tenant(s) are on it", p, inUse[p]))
		}
	}
	if len(problems) > 0 {
		return &CatalogError{Problems: problems}
	}
	return nil
}
