package stripebilling_test

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/billing/stripebilling"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		cfg      billing.Config
		wantType string
		wantErr  string
	}{
		{name: "no key: disabled, prices not needed", cfg: billing.Config{}, wantType: "*billing.Disabled"},
		{name: "key and every price", cfg: billing.Config{APIKey: "sk_test_1", PriceIDs: testPrices}, wantType: "*stripebilling.Stripe"},
		{name: "key without some prices", cfg: billing.Config{APIKey: "sk_test_1", PriceIDs: billing.PriceIDs{tenant.Free: "price_free", tenant.Starter: "price_starter"}},
			wantErr: "no Stripe price id for plan(s) professional, enterprise"},
		{name: "two plans, one price", cfg: billing.Config{APIKey: "sk_test_1", PriceIDs: billing.PriceIDs{
			tenant.Free: "price_x", tenant.Starter: "price_x", tenant.Professional: "price_pro", tenant.Enterprise: "price_ent"}},
			wantErr: "plans free and starter share price id price_x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := stripebilling.New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := reflect.TypeOf(b).String(); got != tt.wantType {
				t.Errorf("New gave %s, want %s", got, tt.wantType)
			}
		})
	}
}

func TestDisabledMakesNoRequest(t *testing.T) {
	proxy := testenv.StartStripe(t)
	var logs bytes.Buffer
	// A BaseURL and prices are configured, only the key is missing: still nothing may
	// leave the process.
	b, err := stripebilling.New(billing.Config{BaseURL: proxy.URL, PriceIDs: testPrices, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]func() (billing.Subscription, error){
		"create": func() (billing.Subscription, error) {
			return b.CreateSubscription(ctx, billing.CreateRequest{TenantID: "tenant_acme", Plan: tenant.Starter, IdempotencyKey: "op_1:billing"})
		},
		"change": func() (billing.Subscription, error) {
			return b.ChangePlan(ctx, billing.ChangeRequest{SubscriptionID: "sub_1", Plan: tenant.Professional, IdempotencyKey: "op_1:billing"})
		},
		"schedule": func() (billing.Subscription, error) {
			return b.SchedulePlanChange(ctx, billing.ChangeRequest{SubscriptionID: "sub_1", Plan: tenant.Free, IdempotencyKey: "op_1:billing"})
		},
		"cancel": func() (billing.Subscription, error) {
			return b.Cancel(ctx, billing.CancelRequest{SubscriptionID: "sub_1", IdempotencyKey: "op_1:billing"})
		},
		"resume": func() (billing.Subscription, error) { return b.Resume(ctx, "sub_1", "op_1:billing") },
		"get":    func() (billing.Subscription, error) { return b.Get(ctx, "sub_1") },
	}
	for name, call := range calls {
		sub, err := call()
		if err != nil || sub != (billing.Subscription{Status: billing.StatusDisabled}) {
			t.Errorf("%s: %+v, %v; want a zero Subscription with Status disabled", name, sub, err)
		}
	}
	if n := len(proxy.Requests()); n != 0 {
		t.Errorf("disabled billing sent %d requests", n)
	}
	// One line from New, one per call.
	if n := strings.Count(logs.String(), `"billing disabled`); n != len(calls)+1 {
		t.Errorf("%d \"billing disabled\" log lines, want %d:\n%s", n, len(calls)+1, logs.String())
	}
	if !strings.Contains(logs.String(), `"idempotency_key":"op_1:billing"`) {
		t.Errorf("logs should say what was skipped:\n%s", logs.String())
	}
}
