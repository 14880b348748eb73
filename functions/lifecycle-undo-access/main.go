// Command lifecycle-undo-access is a step of the deletion, reactivation and suspension state
// machines: it restores the entitlements the operation replaced (compensation).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/eventsapp"
	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := lifecycleapp.Steps("LifecycleUndoAccessFunction", eventsapp.Publisher)
	lambda.Start(flow.Handler(d.Log, "undo-access", steps.UndoAccess))
}
