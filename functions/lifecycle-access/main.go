// Command lifecycle-access is a step of the deletion, reactivation and suspension state
// machines: it revokes, restricts or restores the tenant's entitlements and announces it.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := app.LifecycleSteps("LifecycleAccessFunction")
	lambda.Start(flow.Handler(d.Log, "access", steps.Access))
}
