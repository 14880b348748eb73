// Package config reads a function's settings from its environment once, at cold start,
// and fails fast with a message naming what is missing. Endpoints are never configured
// here: the AWS SDK reads the standard AWS_ENDPOINT_URL* variables itself.
package config

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Config is everything a function may need; each main checks what it uses with Require.
type Config struct {
	Stage                 string
	Table                 string
	DataTable             string
	ExportsBucket         string
	EventBus              string
	UpgradeStateMachine   string
	DowngradeStateMachine string
	StripeSecretName      string
	StripeAPIBase         string // empty = Stripe's API; set to stripe-mock locally
	StripePriceIDs        string
	DefaultRetentionDays  int
	PurgeChunkItems       int // most items per purge delete invocation; 0 = the purge's default
	Catalog               *tenant.Catalog

	// StripeWebhookSecretName names the secret holding the webhook signing secret
	// (whsec_...); empty: the webhook refuses every delivery.
	StripeWebhookSecretName string
}

// Load reads the environment. PLAN_CATALOG is the deployment's plan catalogue (the
// JSON document of docs/catalog.md; empty: the embedded default, the four seed
// plans), validated here so that a bad one fails every cold start with its problems
// listed. PLAN_LIMITS, older, may still override plan limits with JSON such as
// {"free":{"users":5,"storage_gb":2,"api_calls_per_month":20000}}.
func Load() (Config, error) {
	c := Config{
		Stage:                 os.Getenv("STAGE"),
		Table:                 os.Getenv("TABLE_NAME"),
		DataTable:             os.Getenv("DATA_TABLE_NAME"),
		ExportsBucket:         os.Getenv("EXPORTS_BUCKET_NAME"),
		EventBus:              os.Getenv("EVENT_BUS_NAME"),
		UpgradeStateMachine:   os.Getenv("UPGRADE_STATE_MACHINE_ARN"),
		DowngradeStateMachine: os.Getenv("DOWNGRADE_STATE_MACHINE_ARN"),
		StripeSecretName:      os.Getenv("STRIPE_SECRET_NAME"),
		StripeAPIBase:         os.Getenv("STRIPE_API_BASE"),
		StripePriceIDs:        os.Getenv("STRIPE_PRICE_IDS"),
		DefaultRetentionDays:  tenant.DefaultRetentionDays,
		Catalog:               tenant.DefaultCatalog(),
	}
	if v := os.Getenv("DEFAULT_RETENTION_DAYS"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil || tenant.ValidateRetention(d) != nil {
			return c, fmt.Errorf("DEFAULT_RETENTION_DAYS=%q: must be a whole number of days between 30 and 90", v)
		}
		c.DefaultRetentionDays = d
	}
	if v := os.Getenv("PURGE_CHUNK_ITEMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 25 || n > 100_000 {
			return c, fmt.Errorf("PURGE_CHUNK_ITEMS=%q: must be a whole number between 25 and 100000", v)
		}
		c.PurgeChunkItems = n
	}
	if v := os.Getenv("PLAN_CATALOG"); v != "" {
		cat, err := tenant.ParseCatalog([]byte(v))
		if err != nil {
			return c, fmt.Errorf("PLAN_CATALOG: %w", err)
		}
		c.Catalog = cat
	}
	if v := os.Getenv("PLAN_LIMITS"); v != "" {
		var overrides map[tenant.Plan]tenant.Limits
		if err := json.Unmarshal([]byte(v), &overrides); err != nil {
			return c, fmt.Errorf("PLAN_LIMITS: %w", err)
		}
		cat, err := c.Catalog.WithLimits(overrides)
		if err != nil {
			return c, fmt.Errorf("PLAN_LIMITS: %w", err)
		}
		c.Catalog = cat
	}
	c.StripeWebhookSecretName = os.Getenv("STRIPE_WEBHOOK_SECRET_NAME")
	return c, nil
}

// Require returns an error naming every variable in names that is empty.
func Require(names ...string) error {
	var missing []string
	for _, n := range names {
		if os.Getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required environment: %v", missing)
	}
	return nil
}

// MustLoad loads the config, requires names, and exits the process with a JSON log line
// when something is wrong — a Lambda init error is clearer than a nil deref later.
func MustLoad(log *slog.Logger, names ...string) Config {
	c, err := Load()
	if err == nil {
		err = Require(names...)
	}
	if err != nil {
		log.Error("bad configuration", "error", err.Error())
		os.Exit(1)
	}
	return c
}

// AWS loads the SDK config (region, credentials, AWS_ENDPOINT_URL* from the environment).
func AWS(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// Logger returns the JSON logger of a function; every line carries the function name.
func Logger(function string) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("LOG_LEVEL") == "DEBUG" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})).With("function", function)
}
