// Command lifecycle-billing is a step of the deletion, reactivation and suspension state
// machines: it cancels the subscription at period end, or resumes / recreates it on reactivation.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := lifecycleapp.Steps("LifecycleBillingFunction", stripeapp.Billing)
	lambda.Start(flow.Handler(d.Log, "billing", steps.Billing))
}
