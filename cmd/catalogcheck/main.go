// Command catalogcheck checks a plan catalogue before it is deployed: the document's
// own rules, the Stripe price mapping against it, and, given the tenants table, that
// every plan a tenant is on is still in it (docs/catalog.md). A deployment pipeline
// runs it before `sam deploy --parameter-overrides PlanCatalog=...`:
//
//	go run ./cmd/catalogcheck -catalog my-catalog.json \
//	  -prices free=price_1,business=price_2 -table tenantflow-prod-tenants
//
// Without -catalog it checks PLAN_CATALOG (or the built-in default); without -prices,
// STRIPE_PRICE_IDS (if set); without -table, no tenants. The table is read through
// its ByState index, one state at a time (every state but PURGED), never scanned.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/config"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func main() {
	catalogPath := flag.String("catalog", "", "the catalogue document (default: PLAN_CATALOG, else the built-in one)")
	prices := flag.String("prices", os.Getenv("STRIPE_PRICE_IDS"), "Stripe price ids, plan=price,... (default: STRIPE_PRICE_IDS)")
	table := flag.String("table", "", "the tenants table, to check the plans tenants are on")
	flag.Parse()
	doc := []byte(os.Getenv("PLAN_CATALOG"))
	if *catalogPath != "" {
		b, err := os.ReadFile(*catalogPath)
		if err != nil {
			fail(err)
		}
		doc = b
	}
	ctx := context.Background()
	var lister Lister
	if *table != "" {
		cfg, err := config.AWS(ctx)
		if err != nil {
			fail(err)
		}
		lister = store.New(dynamodb.NewFromConfig(cfg), *table, nil)
	}
	c, err := Check(ctx, doc, *prices, lister)
	if err != nil {
		fail(err)
	}
	fmt.Printf("catalogue %s: %d plans %v, features %v: ok\n", c.Version(), len(c.Plans()), c.Plans(), c.FeatureNames())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "catalogcheck:", err)
	os.Exit(1)
}

// Lister lists tenants by state (store.Store).
type Lister interface {
	ListByState(ctx context.Context, state tenant.State, cursor string, limit int32) (store.Page, error)
}

// Check validates doc (empty: the built-in catalogue), the price mapping prices
// against it when prices is set, and, when tenants is set, that no tenant that is
// not PURGED is on a plan the catalogue lacks.
func Check(ctx context.Context, doc []byte, prices string, tenants Lister) (*tenant.Catalog, error) {
	c := tenant.DefaultCatalog()
	if len(doc) > 0 {
		var err error
		if c, err = tenant.ParseCatalog(doc); err != nil {
			return nil, err
		}
	}
	if prices != "" {
		p, err := billing.ParsePriceIDsFor(prices, c)
		if err == nil {
			err = p.ValidateFor(c)
		}
		if err != nil {
			return nil, err
		}
	}
	if tenants == nil {
		return c, nil
	}
	inUse := map[tenant.Plan]int{}
	for _, state := range tenant.States {
		if state == tenant.Purged {
			continue // a tombstone is on no plan any more
		}
		cursor := ""
		for {
			page, err := tenants.ListByState(ctx, state, cursor, 100)
			if err != nil {
				return nil, fmt.Errorf("list %s tenants: %w", state, err)
			}
			for _, t := range page.Tenants {
				inUse[t.Plan]++
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
	}
	return c, c.CheckInUse(inUse)
}
