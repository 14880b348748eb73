// Command plan-rollback-provision is a step of the upgrade and downgrade state machines: it
// restores the previous entitlements and publishes the compensating event.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/eventsapp"
	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := planapp.Steps("PlanRollbackProvisionFunction", eventsapp.Publisher)
	lambda.Start(flow.Handler(d.Log, "rollback-provision", steps.RollbackProvision))
}
