// Command lifecycle-finish is a step of the deletion, reactivation and suspension state
// machines: it ends the flow and marks the operation SUCCEEDED in one transaction.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := lifecycleapp.Steps("LifecycleFinishFunction")
	lambda.Start(flow.Handler(d.Log, "finish", steps.Finish))
}
