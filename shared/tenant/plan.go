package tenant

import (
	"fmt"
	"strings"
)

// Plan is a subscription tier name.
type Plan string

// The four plans, cheapest first.
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

// Catalog holds the plans in their order and their limits. Deployments may override
// limits through configuration; the order is part of the product.
type Catalog struct {
	order  []Plan
	limits map[Plan]Limits
}

// DefaultCatalog returns the default plans and limits (docs/architecture.md lists them).
func DefaultCatalog() *Catalog {
	return &Catalog{
		order: []Plan{Free, Starter, Professional, Enterprise},
		limits: map[Plan]Limits{
			Free:         {Users: 3, StorageGB: 1, APICallsPerMonth: 10_000},
			Starter:      {Users: 10, StorageGB: 10, APICallsPerMonth: 100_000},
			Professional: {Users: 50, StorageGB: 100, APICallsPerMonth: 1_000_000},
			Enterprise:   {Users: Unlimited, StorageGB: Unlimited, APICallsPerMonth: Unlimited},
		},
	}
}

// NewCatalog builds a catalog from plans in ascending order and their limits. Every
// plan must have limits.
func NewCatalog(order []Plan, limits map[Plan]Limits) (*Catalog, error) {
	if len(order) == 0 {
		return nil, fmt.Errorf("catalog: no plans")
	}
	c := &Catalog{order: append([]Plan(nil), order...), limits: map[Plan]Limits{}}
	for _, p := range order {
		l, ok := limits[p]
		if !ok {
			return nil, fmt.Errorf("catalog: plan %q has no limits", p)
		}
		c.limits[p] = l
	}
	return c, nil
}

// WithLimits returns a copy of c where the given plans have new limits (config overrides).
func (c *Catalog) WithLimits(overrides map[Plan]Limits) (*Catalog, error) {
	out := &Catalog{order: c.order, limits: map[Plan]Limits{}}
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

// Plans returns the plans cheapest first.
func (c *Catalog) Plans() []Plan { return append([]Plan(nil), c.order...) }

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
