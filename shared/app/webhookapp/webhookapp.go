// Package webhookapp wires the Stripe webhook (shared/webhook): it reads the signing
// secret from Secrets Manager and starts suspensions and reactivations (Step
// Functions). It never calls Stripe: the events carry what it needs.
package webhookapp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stripe/stripe-go/v76"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
	"github.com/tenantflow/tenantflow/shared/webhook"
)

// New builds the Stripe webhook handler. The signing secret is read once, on the
// first delivery (lazyVerifier); with StripeWebhookSecretName empty the handler refuses every delivery (503,
// logged) rather than accepting unsigned events.
func New(logicalID string) (*core.Deps, *webhook.Handler) {
	d := core.Load(logicalID, sfnapp.Executions)
	if !d.Needs().WebhookSecret {
		d.Refuse("the Stripe webhook secret")
	}
	_, re, sus := lifecycleapp.Flows(d)
	ops := flow.NewOperations(d.Store(), core.Provided[flow.Executions](d), re, sus)
	h := &webhook.Handler{
		Ledger: d.Store(), Tenants: truthful{store: d.Store(), ops: ops}, Changes: d.Store(), Log: d.Log,
		Lifecycle: lifecycle.NewStarter(d.Store(), ops, d.Catalog, d.Config.DefaultRetentionDays),
	}
	if name := d.Config.StripeWebhookSecretName; name != "" {
		sm := secretsmanager.NewFromConfig(d.AWS)
		h.Verifier = &lazyVerifier{read: func(ctx context.Context) (string, error) { return webhookSecret(ctx, sm, name) }}
	}
	return d, h
}

// truthful reads tenants from the store and operations as GET /operations/{id} shows
// them (flow.Operations.Get): while a record says RUNNING, Step Functions is asked, so
// the webhook never waits on an operation whose execution ended or never started.
type truthful struct {
	store *store.Store
	ops   *flow.Operations
}

func (t truthful) GetTenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	return t.store.GetTenant(ctx, id)
}

func (t truthful) GetOperation(ctx context.Context, id string) (*tenant.Operation, error) {
	return t.ops.Get(ctx, id)
}

// secretReadTimeout bounds the first delivery's read of the signing secret; API
// Gateway gives the whole request 30 s.
const secretReadTimeout = 5 * time.Second

// lazyVerifier reads the signing secret on the first delivery and keeps it, as the
// billing adapter reads the Stripe key on its first call: the cold start does no
// network round trip, and a secret that cannot be read makes a delivery answer 503
// (Stripe delivers it again) instead of failing the function's init in a crash loop.
// A failed read is not kept: the next delivery tries again.
type lazyVerifier struct {
	read func(ctx context.Context) (string, error)

	mu     sync.Mutex
	secret string
}

func (v *lazyVerifier) Verify(payload []byte, signature string) (stripe.Event, error) {
	secret, err := v.get()
	if err != nil {
		return stripe.Event{}, &webhook.UnavailableError{Err: err}
	}
	return webhook.StripeVerifier{Secret: secret}.Verify(payload, signature)
}

func (v *lazyVerifier) get() (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.secret != "" {
		return v.secret, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), secretReadTimeout)
	defer cancel()
	secret, err := v.read(ctx)
	if err != nil {
		return "", err
	}
	v.secret = secret
	return secret, nil
}

// SecretReader reads a secret value.
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
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
