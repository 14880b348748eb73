package billing

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Config configures the billing adapter (shared/billing/stripebilling). An empty
// APIKey disables billing.
type Config struct {
	// APIKey is the Stripe secret key; empty selects Disabled.
	APIKey string
	// BaseURL is the Stripe API origin, e.g. "http://127.0.0.1:12111" for
	// stripe-mock; empty means Stripe's real API.
	BaseURL string
	// PriceIDs maps every plan to its Stripe price id.
	PriceIDs PriceIDs
	// HTTPClient is used for every Stripe call; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
}

// PriceIDs maps plans to Stripe price ids.
type PriceIDs map[tenant.Plan]string

// ParsePriceIDs is ParsePriceIDsFor on the default catalogue.
func ParsePriceIDs(s string) (PriceIDs, error) { return ParsePriceIDsFor(s, tenant.DefaultCatalog()) }

// ParsePriceIDsFor reads "free=price_a,starter=price_b,..." (spaces around items are
// ignored; an empty string gives an empty map) for the plans of catalog. It rejects
// malformed pairs, plans the catalogue does not have, repeated plans and empty price
// ids, naming the offending item.
func ParsePriceIDsFor(s string, catalog *tenant.Catalog) (PriceIDs, error) {
	out := PriceIDs{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, price, ok := strings.Cut(item, "=")
		name, price = strings.TrimSpace(name), strings.TrimSpace(price)
		if !ok || name == "" || price == "" {
			return nil, fmt.Errorf("billing: price ids item %d %q: want plan=price_id", i+1, item)
		}
		plan := tenant.Plan(name)
		if catalog.Rank(plan) < 0 {
			return nil, fmt.Errorf("billing: price ids item %d %q: unknown plan %q; one of %s", i+1, item, name, planList(catalog.Plans()))
		}
		if _, dup := out[plan]; dup {
			return nil, fmt.Errorf("billing: price ids item %d %q: plan %q given twice", i+1, item, name)
		}
		out[plan] = price
	}
	return out, nil
}

// Price returns the price id of plan.
func (p PriceIDs) Price(plan tenant.Plan) (string, bool) {
	id, ok := p[plan]
	return id, ok && id != ""
}

// Plan returns the plan whose price id is priceID (webhooks use it to read a
// subscription's plan).
func (p PriceIDs) Plan(priceID string) (tenant.Plan, bool) {
	if priceID == "" {
		return "", false
	}
	for plan, id := range p {
		if id == priceID {
			return plan, true
		}
	}
	return "", false
}

// Missing returns the plans of the default catalog that have no price id.
func (p PriceIDs) Missing() []tenant.Plan { return p.MissingFrom(tenant.DefaultCatalog()) }

// MissingFrom returns the plans of catalog that have no price id.
func (p PriceIDs) MissingFrom(catalog *tenant.Catalog) []tenant.Plan {
	var out []tenant.Plan
	for _, plan := range catalog.Plans() {
		if _, ok := p.Price(plan); !ok {
			out = append(out, plan)
		}
	}
	return out
}

// Validate is ValidateFor on the default catalogue.
func (p PriceIDs) Validate() error { return p.ValidateFor(tenant.DefaultCatalog()) }

// ValidateFor checks the price mapping against catalog: every plan of the catalogue
// has a price id (a supplied catalogue that adds a plan needs its price too), no
// mapped plan is missing from the catalogue, and no two plans share a price.
func (p PriceIDs) ValidateFor(catalog *tenant.Catalog) error {
	if missing := p.MissingFrom(catalog); len(missing) > 0 {
		return fmt.Errorf("billing: no Stripe price id for plan(s) %s of catalogue %s (every plan can be chosen, so every plan needs a price)", planList(missing), catalog.Version())
	}
	for plan := range p {
		if catalog.Rank(plan) < 0 {
			return fmt.Errorf("billing: price id for plan %s, which catalogue %s does not have", plan, catalog.Version())
		}
	}
	seen := map[string]tenant.Plan{}
	plans := make([]string, 0, len(p))
	for plan := range p {
		plans = append(plans, string(plan))
	}
	sort.Strings(plans)
	for _, name := range plans {
		plan := tenant.Plan(name)
		if other, dup := seen[p[plan]]; dup {
			// One price for two plans would make Plan(priceID) ambiguous for webhooks.
			return fmt.Errorf("billing: plans %s and %s share price id %s", other, plan, p[plan])
		}
		seen[p[plan]] = plan
	}
	return nil
}

func planList(plans []tenant.Plan) string {
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}
