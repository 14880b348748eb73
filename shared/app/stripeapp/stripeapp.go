// Package stripeapp is the wiring that links Stripe (the stripe-go resources the
// billing adapter calls) and Secrets Manager (the Stripe key): only the functions whose
// Needs call Stripe import it.
package stripeapp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/billing/stripebilling"
)

// Billing is the core.Adapter that provides the billing.Billing of the function: the
// Stripe adapter with the key from Secrets Manager, or the disabled implementation
// when no secret is configured. The key is read on the first Stripe call, not at cold
// start (see lazyBilling): the API serves most requests without Stripe, and the
// secret's round trip was most of its init.
func Billing(d *core.Deps) {
	if !d.Needs().Stripe {
		d.Refuse("Stripe")
	}
	// The prices must cover the deployment's catalogue, not only the seed plans: a
	// plan without a price would fail its first Stripe call, not the cold start.
	prices, err := billing.ParsePriceIDsFor(d.Config.StripePriceIDs, d.Catalog)
	if err == nil {
		err = prices.ValidateFor(d.Catalog)
	}
	core.Must(d.Log, prices, err)
	cfg := billing.Config{PriceIDs: prices, BaseURL: d.Config.StripeAPIBase, Logger: d.Log}
	if d.Config.StripeSecretName == "" {
		b, err := stripebilling.New(cfg)
		core.Provide[billing.Billing](d, core.Must(d.Log, b, err))
		return
	}
	sm, name := secretsmanager.NewFromConfig(d.AWS), d.Config.StripeSecretName
	core.Provide[billing.Billing](d, &lazyBilling{build: func(ctx context.Context) billing.Billing {
		key, err := stripeKey(ctx, sm, name)
		cfg.APIKey = core.Must(d.Log, key, err)
		b, err := stripebilling.New(cfg)
		return core.Must(d.Log, b, err)
	}})
}

// SecretReader reads a secret value.
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// stripeKey reads the Stripe key: the secret is either the bare key or JSON
// {"api_key": "..."}.
func stripeKey(ctx context.Context, sm SecretReader, name string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("read Stripe secret %s: %w", name, err)
	}
	v := strings.TrimSpace(aws.ToString(out.SecretString))
	if strings.HasPrefix(v, "{") {
		var doc struct {
			APIKey string `json:"api_key"`
		}
		if err := json.Unmarshal([]byte(v), &doc); err != nil || doc.APIKey == "" {
			return "", fmt.Errorf("stripe secret %s: JSON without api_key", name)
		}
		v = doc.APIKey
	}
	if v == "" {
		return "", fmt.Errorf("stripe secret %s is empty", name)
	}
	return v, nil
}
