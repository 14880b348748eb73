// Command plan-rollback-billing is a step of the upgrade and downgrade state machines: it
// reverts the Stripe price when this operation may have changed it.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := planapp.Steps("PlanRollbackBillingFunction", stripeapp.Billing)
	lambda.Start(flow.Handler(d.Log, "rollback-billing", steps.RollbackBilling))
}
