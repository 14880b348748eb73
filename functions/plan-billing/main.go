// Command plan-billing is a step of the upgrade and downgrade state machines: it
// moves the Stripe subscription to the target plan's price.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := planapp.Steps("PlanBillingFunction", stripeapp.Billing)
	lambda.Start(flow.Handler(d.Log, "billing", steps.Billing))
}
