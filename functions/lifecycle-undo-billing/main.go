// Command lifecycle-undo-billing is a step of the deletion, reactivation and suspension state
// machines: it reverts the billing change the operation may have made (compensation).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := lifecycleapp.Steps("LifecycleUndoBillingFunction", stripeapp.Billing)
	lambda.Start(flow.Handler(d.Log, "undo-billing", steps.UndoBilling))
}
