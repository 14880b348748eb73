package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

const goldOnly = `{"version":"v2","plans":[
	{"name":"free","rank":0,"limits":{"users":3,"storage_gb":1,"api_calls_per_month":10000},"features":{}},
	{"name":"gold","rank":1,"limits":{"users":null,"storage_gb":null,"api_calls_per_month":null},"features":{}}]}`

// TestCheckRefusesACatalogueThatDropsAPlanInUse: on a real table (moto), a starter
// tenant keeps starter in the catalogue; a purged one does not.
func TestCheckRefusesACatalogueThatDropsAPlanInUse(t *testing.T) {
	ctx := context.Background()
	db, names := testenv.Tables(t)
	st := store.New(db, names["TenantsTable"], nil)
	for _, tn := range []*tenant.Tenant{
		{ID: "t_free", Name: "F", Plan: tenant.Free, State: tenant.Active},
		{ID: "t_gone", Name: "G", Plan: tenant.Professional, State: tenant.Purged},
	} {
		if _, err := st.CreateTenant(ctx, tn, store.Actor{Who: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Check(ctx, []byte(goldOnly), "free=price_free,gold=price_gold", st); err != nil {
		t.Fatalf("a purged tenant's plan held the catalogue: %v", err)
	}
	if _, err := st.CreateTenant(ctx, &tenant.Tenant{ID: "t_starter", Name: "S", Plan: tenant.Starter, State: tenant.Suspended}, store.Actor{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	_, err := Check(ctx, []byte(goldOnly), "", st)
	if err == nil || !strings.Contains(err.Error(), `plan "starter" is not in the catalogue but 1 tenant(s) are on it`) {
		t.Fatalf("got %v", err)
	}
	if _, err := Check(ctx, nil, "", st); err != nil {
		t.Fatalf("the default catalogue: %v", err)
	}
}

func TestCheckPricesAndDocument(t *testing.T) {
	ctx := context.Background()
	if _, err := Check(ctx, []byte(goldOnly), "free=price_free", nil); err == nil || !strings.Contains(err.Error(), "gold") {
		t.Fatalf("a plan without a price: %v", err)
	}
	if _, err := Check(ctx, []byte(`{"version":"v","plans":[]}`), "", nil); err == nil || !strings.Contains(err.Error(), "at least one plan") {
		t.Fatalf("an empty catalogue: %v", err)
	}
	if c, err := Check(ctx, nil, "free=a,starter=b,professional=c,enterprise=d", nil); err != nil || c.Version() != tenant.DefaultCatalog().Version() {
		t.Fatalf("default: %v", err)
	}
}
