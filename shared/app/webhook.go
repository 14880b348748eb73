package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/webhook"
)

// NewWebhook builds the Stripe webhook handler. The signing secret is read once, at
// cold start; with StripeWebhookSecretName empty the handler refuses every delivery
// (503, logged) rather than accepting unsigned events.
func NewWebhook(logicalID string) (*Deps, *webhook.Handler) {
	d := Load(logicalID)
	if !d.needs.WebhookSecret {
		d.refuse("the Stripe webhook secret")
	}
	_, re, sus := d.LifecycleFlows()
	ops := flow.NewOperations(d.Store(), d.SFN(), re, sus)
	h := &webhook.Handler{
		Ledger: d.Store(), Tenants: d.Store(), Log: d.Log,
		Lifecycle: lifecycle.NewStarter(d.Store(), ops, d.Catalog, d.Config.DefaultRetentionDays),
	}
	if name := d.Config.StripeWebhookSecretName; name != "" {
		secret, err := webhookSecret(context.Background(), secretsmanager.NewFromConfig(d.AWS), name)
		h.Verifier = webhook.StripeVerifier{Secret: Must(d.Log, secret, err)}
	}
	return d, h
}

// webhookSecret reads the signing secret: the bare whsec_... value or JSON
// {"webhook_secret": "..."}.
func webhookSecret(ctx context.Context, sm SecretReader, name string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("read Stripe webhook secret %s: %w", name, err)
	}
	v := strings.TrimSpace(aws.ToString(out.SecretString))
	if strings.HasPrefix(v, "{") {
		var doc struct {
			Secret string `json:"webhook_secret"`
		}
		if err := json.Unmarshal([]byte(v), &doc); err != nil || doc.Secret == "" {
			return "", fmt.Errorf("stripe webhook secret %s: JSON without webhook_secret", name)
		}
		v = doc.Secret
	}
	if v == "" {
		return "", fmt.Errorf("stripe webhook secret %s is empty", name)
	}
	return v, nil
}
