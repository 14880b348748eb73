// Command plan-rollback-billing is a step of the upgrade and downgrade state machines: it
// reverts the Stripe price when billing may have changed.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
)

func main() {
	lambda.Start(app.PlanSteps("plan-rollback-billing").RollbackBilling)
}
