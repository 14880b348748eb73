// Package app builds the production object graph of each function from its environment:
// the one place where adapters (DynamoDB, EventBridge, Step Functions, Stripe) are wired
// to the domain, so every functions/<name>/main.go stays a few lines long.
//
// Each function declares what it uses in Wirings (its Needs), and Deps builds a client
// only when the function's Needs include it: a step that never calls Stripe never
// reads the Stripe secret at cold start (the failure that a missing IAM grant would
// otherwise cause in AWS). The IAM wiring test compares every function's Needs with its
// policies in template.yaml, both ways.
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
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/metrics"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Deps are the clients and settings of one function, built once per cold start and
// only as far as the function's Needs allow.
type Deps struct {
	Log     *slog.Logger
	Config  config.Config
	AWS     aws.Config
	Catalog *tenant.Catalog

	function string
	needs    Needs
	store    *store.Store
	sfn      *sfn.Client
	metrics  *metrics.Writer
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

// Load reads the configuration of the function with template logical id logicalID
// (requiring the variables its Needs imply) and prepares its clients.
func Load(logicalID string) *Deps {
	needs, ok := Wirings[logicalID]
	log := config.Logger(logicalID)
	if !ok {
		log.Error("cold start failed", "error", "no wiring for function "+logicalID)
		os.Exit(1)
	}
	cfg := config.MustLoad(log, needs.env()...)
	awsCfg, err := config.AWS(context.Background())
	Must(log, awsCfg, err)
	return &Deps{Log: log, Config: cfg, AWS: awsCfg, Catalog: cfg.Catalog, function: logicalID, needs: needs}
}

// refuse stops a cold start that asks for a client its Needs do not declare: the
// template grants only what Needs say, so using it would fail with AccessDenied.
func (d *Deps) refuse(what string) {
	d.Log.Error("cold start failed", "error", fmt.Sprintf("function %s uses %s but its wiring does not declare it", d.function, what))
	os.Exit(1)
}

// Store returns the control-plane table adapter.
func (d *Deps) Store() *store.Store {
	if !d.needs.Tenants {
		d.refuse("the tenants table")
	}
	if d.store == nil {
		d.store = store.New(dynamodb.NewFromConfig(d.AWS), d.Config.Table, nil)
	}
	return d.store
}

// SFN returns the Step Functions client.
func (d *Deps) SFN() *sfn.Client {
	if len(d.needs.Start) == 0 && len(d.needs.Describe) == 0 {
		d.refuse("Step Functions")
	}
	if d.sfn == nil {
		d.sfn = sfn.NewFromConfig(d.AWS)
	}
	return d.sfn
}

// Kit returns the flow kit on the store, reporting its metrics.
func (d *Deps) Kit() *flow.Kit { return &flow.Kit{Store: d.Store(), Log: d.Log, Metrics: d.Metrics()} }

// Metrics returns the function's EMF writer on stdout, in the namespace of its stage.
// It needs no client and no grant: CloudWatch Logs extracts the metrics.
func (d *Deps) Metrics() *metrics.Writer {
	if d.metrics == nil {
		d.metrics = metrics.Stdout(metrics.NamespaceFor(d.Config.Stage))
	}
	return d.metrics
}

// Provisioner returns the entitlements/events provisioner.
func (d *Deps) Provisioner() *provision.Provisioner {
	if !d.needs.Events {
		d.refuse("the lifecycle event bus")
	}
	return provision.New(d.Store(), events.NewPublisher(eventbridge.NewFromConfig(d.AWS), d.Config.EventBus), d.Catalog)
}

// Billing returns the Stripe adapter with the key from Secrets Manager, or the disabled
// implementation when no secret is configured. The key is read on the first Stripe
// call, not at cold start (see lazyBilling): the API serves most requests without
// Stripe, and the secret's round trip was most of its init.
func (d *Deps) Billing(_ context.Context) billing.Billing {
	if !d.needs.Stripe {
		d.refuse("Stripe")
	}
	prices, err := billing.ParsePriceIDs(d.Config.StripePriceIDs)
	Must(d.Log, prices, err)
	cfg := billing.Config{PriceIDs: prices, BaseURL: d.Config.StripeAPIBase, Logger: d.Log}
	if d.Config.StripeSecretName == "" {
		b, err := billing.New(cfg)
		return Must(d.Log, b, err)
	}
	sm, name := secretsmanager.NewFromConfig(d.AWS), d.Config.StripeSecretName
	return &lazyBilling{build: func(ctx context.Context) billing.Billing {
		key, err := stripeKey(ctx, sm, name)
		cfg.APIKey = Must(d.Log, key, err)
		b, err := billing.New(cfg)
		return Must(d.Log, b, err)
	}}
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
