// Command lifecycle-claim is a step of the deletion, reactivation and suspension state
// machines: it records the operation and claims the tenant (DELETING, SUSPENDED or REACTIVATING).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := lifecycleapp.Steps("LifecycleClaimFunction")
	lambda.Start(flow.Handler(d.Log, "claim", steps.Claim))
}
