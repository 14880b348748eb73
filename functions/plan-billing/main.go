// Command plan-billing is a step of the upgrade and downgrade state machines: it
// moves the Stripe subscription to the target plan's price.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := app.PlanSteps("PlanBillingFunction")
	lambda.Start(flow.Handler(d.Log, "billing", steps.Billing))
}
