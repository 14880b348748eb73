// Command api is the HTTP API function: API Gateway HTTP API (payload v2, JWT
// authorizer) requests for tenants, usage, plan changes, operations and audit.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/apiapp"
	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/console"
	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func main() {
	// Config and clients are built once per cold start; a missing variable exits here
	// with a JSON log line naming it.
	a := apiapp.NewAPI("ApiFunction")
	cfg := httpapi.Config{
		Store: a.Deps.Store(), Provisioner: a.Entitlements, Catalog: a.Deps.Catalog, Logger: a.Deps.Log,
		PlanChanges: a.PlanChanges, Lifecycle: a.Lifecycle, Operations: a.Operations, Subscriptions: subscriptions{a.Billing},
		Exports:     a.Deps.Exports(),
		Idempotency: a.Deps.Store(), CursorKey: []byte(os.Getenv("LIST_CURSOR_KEY")),
	}
	if a.Steps != nil {
		// Only a non-nil reader: a nil *flow.StepReader in the interface would not be nil.
		cfg.Steps = a.Steps
	}
	if c, err := console.New(console.ConfigFromEnv(os.Getenv)); err != nil {
		// The API itself still serves; only /console answers 404.
		a.Deps.Log.Error("operator console disabled", "error", err.Error())
	} else {
		cfg.Console = c
	}
	h, err := httpapi.New(cfg)
	core.Must(a.Deps.Log, h, err)
	if h.RandomCursorKey() {
		a.Deps.Log.Warn("LIST_CURSOR_KEY is not set: list cursors are signed with a random key of this cold start and only work within this container")
	}
	lambda.Start(h.Handle)
}

// subscriptions adapts billing.Billing to the narrow port the create route needs.
type subscriptions struct{ b billing.Billing }

func (s subscriptions) CreateSubscription(ctx context.Context, tenantID, name, email string, plan tenant.Plan, key string) (string, string, time.Time, error) {
	sub, err := s.b.CreateSubscription(ctx, billing.CreateRequest{TenantID: tenantID, Name: name, Email: email, Plan: plan, IdempotencyKey: key})
	return sub.CustomerID, sub.ID, sub.CurrentPeriodEnd, err
}
