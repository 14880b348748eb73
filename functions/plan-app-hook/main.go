// Command plan-app-hook is the provisioning hook's step of the upgrade, downgrade and
// reactivation state machines (a lambda:invoke.waitForTaskToken Task): it records a
// provisioning request for the app plane, publishes ProvisioningRequested, and hands an
// answer recorded already to a retried Task.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/eventsapp"
	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, hook := planapp.Hook("PlanAppHookFunction", eventsapp.Publisher, sfnapp.Tasks)
	lambda.Start(flow.Handler(d.Log, "app-hook", hook))
}
