package billing_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

var testPrices = billing.PriceIDs{
	tenant.Free:         "price_free",
	tenant.Starter:      "price_starter",
	tenant.Professional: "price_pro",
	tenant.Enterprise:   "price_ent",
}

func TestParsePriceIDs(t *testing.T) {
	tests := []struct {
		in      string
		want    billing.PriceIDs
		wantErr string
	}{
		{in: "free=price_free,starter=price_starter,professional=price_pro,enterprise=price_ent", want: testPrices},
		{in: " free = price_free , starter=price_starter ", want: billing.PriceIDs{tenant.Free: "price_free", tenant.Starter: "price_starter"}},
		{in: "", want: billing.PriceIDs{}},
		{in: "free", wantErr: `item 1 "free": want plan=price_id`},
		{in: "free=price_free,starter=", wantErr: `item 2 "starter=": want plan=price_id`},
		{in: "=price_x", wantErr: `item 1 "=price_x": want plan=price_id`},
		{in: "free=price_free,,starter=price_starter", wantErr: `item 2 "": want plan=price_id`},
		{in: "gold=price_gold", wantErr: `unknown plan "gold"; one of free, starter, professional, enterprise`},
		{in: "Free=price_free", wantErr: `unknown plan "Free"`},
		{in: "free=a,free=b", wantErr: `item 2 "free=b": plan "free" given twice`},
		{in: "free:price_free", wantErr: `want plan=price_id`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := billing.ParsePriceIDs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPriceIDsLookups(t *testing.T) {
	if p, ok := testPrices.Plan("price_pro"); !ok || p != tenant.Professional {
		t.Errorf("Plan(price_pro) = %q %v", p, ok)
	}
	if _, ok := testPrices.Plan("price_other"); ok {
		t.Error("unknown price maps to a plan")
	}
	if got := (billing.PriceIDs{tenant.Free: "p"}).Missing(); !reflect.DeepEqual(got, []tenant.Plan{tenant.Starter, tenant.Professional, tenant.Enterprise}) {
		t.Errorf("Missing = %v", got)
	}
}

// TestPriceIDsAgainstASuppliedCatalogue: a catalogue that adds a plan needs its price,
// and a price for a plan the catalogue dropped is refused.
func TestPriceIDsAgainstASuppliedCatalogue(t *testing.T) {
	c, err := tenant.ParseCatalog([]byte(`{"version":"v9","plans":[
		{"name":"free","rank":0,"limits":{"users":3,"storage_gb":1,"api_calls_per_month":10},"features":{}},
		{"name":"gold","rank":1,"limits":{"users":null,"storage_gb":null,"api_calls_per_month":null},"features":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := billing.ParsePriceIDsFor("free=price_free,gold=price_gold", c)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ValidateFor(c); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.ParsePriceIDsFor("free=price_free,starter=price_starter", c); err == nil || !strings.Contains(err.Error(), `unknown plan "starter"; one of free, gold`) {
		t.Fatalf("dropped plan accepted: %v", err)
	}
	if err := (billing.PriceIDs{tenant.Free: "price_free"}).ValidateFor(c); err == nil || !strings.Contains(err.Error(), "no Stripe price id for plan(s) gold of catalogue v9") {
		t.Fatalf("missing price of a new plan: %v", err)
	}
	if err := (billing.PriceIDs{tenant.Free: "price_free", "gold": "price_gold", tenant.Starter: "price_starter"}).ValidateFor(c); err == nil || !strings.Contains(err.Error(), "does not have") {
		t.Fatalf("prices of plans the catalogue lacks: %v", err)
	}
}
