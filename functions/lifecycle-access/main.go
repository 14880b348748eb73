// Command lifecycle-access is a step of the deletion, reactivation and suspension state
// machines: it revokes, restricts or restores the tenant's entitlements and announces it.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/eventsapp"
	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := lifecycleapp.Steps("LifecycleAccessFunction", eventsapp.Publisher)
	lambda.Start(flow.Handler(d.Log, "access", steps.Access))
}
