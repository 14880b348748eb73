// Command lifecycle-finish is a step of the deletion, reactivation and suspension state
// machines: it ends the flow and marks the operation SUCCEEDED in one transaction.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := app.LifecycleSteps("LifecycleFinishFunction")
	lambda.Start(flow.Handler(d.Log, "finish", steps.Finish))
}
