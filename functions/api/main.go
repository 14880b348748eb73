// Command api is the HTTP API function: API Gateway HTTP API (payload v2, JWT
// authorizer) requests for tenants, usage, plan changes, operations and audit.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/shared/app"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/httpapi"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func main() {
	// Config and clients are built once per cold start; a missing variable exits here
	// with a JSON log line naming it.
	d := app.Load("api", "UPGRADE_STATE_MACHINE_ARN", "DOWNGRADE_STATE_MACHINE_ARN")
	b, err := d.Billing(context.Background())
	app.Must(d.Log, b, err)
	h, err := httpapi.New(httpapi.Config{
		Store: d.Store, Provisioner: d.Provisioner(), Catalog: d.Catalog, Logger: d.Log,
		PlanChanges:   planchange.NewStarter(d.Store, sfn.NewFromConfig(d.AWS), d.Catalog, d.Config.UpgradeStateMachine, d.Config.DowngradeStateMachine),
		Subscriptions: subscriptions{b},
	})
	app.Must(d.Log, h, err)
	lambda.Start(h.Handle)
}

// subscriptions adapts billing.Billing to the narrow port the create route needs.
type subscriptions struct{ b billing.Billing }

func (s subscriptions) CreateSubscription(ctx context.Context, tenantID, name, email string, plan tenant.Plan, key string) (string, string, time.Time, error) {
	sub, err := s.b.CreateSubscription(ctx, billing.CreateRequest{TenantID: tenantID, Name: name, Email: email, Plan: plan, IdempotencyKey: key})
	return sub.CustomerID, sub.ID, sub.CurrentPeriodEnd, err
}
