// Command plan-billing is a step of the upgrade and downgrade state machines: it
// moves the Stripe subscription to the target plan's price.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
)

func main() {
	lambda.Start(app.PlanSteps("plan-billing").Billing)
}
