// Package app builds the production object graph of each function from its environment:
// the one place where adapters (DynamoDB, EventBridge, Step Functions, Stripe) are wired
// to the domain, so every functions/<name>/main.go stays a few lines long.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/config"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Deps are the clients and settings of one function, built once per cold start.
type Deps struct {
	Log     *slog.Logger
	Config  config.Config
	AWS     aws.Config
	Store   *store.Store
	Catalog *tenant.Catalog
}

// Must exits with a JSON log line when err is set: a failed cold start is reported by
// Lambda as an init error, which is clearer than a nil dereference later.
func Must[T any](log *slog.Logger, v T, err error) T {
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	return v
}

// Load reads the configuration (requiring the named variables) and builds the clients.
func Load(function string, required ...string) *Deps {
	log := config.Logger(function)
	cfg := config.MustLoad(log, append([]string{"TABLE_NAME"}, required...)...)
	awsCfg, err := config.AWS(context.Background())
	Must(log, awsCfg, err)
	return &Deps{
		Log: log, Config: cfg, AWS: awsCfg, Catalog: cfg.Catalog,
		Store: store.New(dynamodb.NewFromConfig(awsCfg), cfg.Table, nil),
	}
}

// Provisioner returns the entitlements/events provisioner.
func (d *Deps) Provisioner() *provision.Provisioner {
	return provision.New(d.Store, events.NewPublisher(eventbridge.NewFromConfig(d.AWS), d.Config.EventBus), d.Catalog)
}

// Billing returns the Stripe adapter with the key from Secrets Manager, or the disabled
// implementation when no secret is configured.
func (d *Deps) Billing(ctx context.Context) (billing.Billing, error) {
	prices, err := billing.ParsePriceIDs(d.Config.StripePriceIDs)
	if err != nil {
		return nil, fmt.Errorf("STRIPE_PRICE_IDS: %w", err)
	}
	cfg := billing.Config{PriceIDs: prices, BaseURL: d.Config.StripeAPIBase, Logger: d.Log}
	if d.Config.StripeSecretName != "" {
		if cfg.APIKey, err = stripeKey(ctx, secretsmanager.NewFromConfig(d.AWS), d.Config.StripeSecretName); err != nil {
			return nil, err
		}
	}
	return billing.New(cfg)
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

// priceChanger adapts billing.Billing to what the plan-change steps need.
type priceChanger struct{ b billing.Billing }

func (p priceChanger) ChangePrice(ctx context.Context, subscriptionID string, plan tenant.Plan, key string) error {
	_, err := p.b.ChangePlan(ctx, billing.ChangeRequest{SubscriptionID: subscriptionID, Plan: plan, IdempotencyKey: key})
	return err
}

// PlanSteps builds the plan-change step handlers.
func PlanSteps(function string) *planchange.Steps {
	d := Load(function, "EVENT_BUS_NAME")
	b, err := d.Billing(context.Background())
	Must(d.Log, b, err)
	return planchange.NewSteps(d.Store, d.Provisioner(), priceChanger{b}, d.Catalog, d.Log)
}

// Sweeper builds the scheduled period-end downgrade sweep.
func Sweeper(function string) *planchange.Sweeper {
	d := Load(function, "DOWNGRADE_STATE_MACHINE_ARN")
	return planchange.NewSweeper(d.Store, sfn.NewFromConfig(d.AWS), d.Config.DowngradeStateMachine, d.Log)
}
