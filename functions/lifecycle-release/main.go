// Command lifecycle-release is a step of the deletion, reactivation and suspension state
// machines: it releases a failed operation's tenant where it came from, operation FAILED with what could not be undone.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := lifecycleapp.Steps("LifecycleReleaseFunction")
	lambda.Start(flow.Handler(d.Log, "release", steps.Release))
}
