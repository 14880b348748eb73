// Command plan-provision is a step of the upgrade and downgrade state machines: it
// writes the target plan's entitlements and publishes TenantPlanChanged.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/eventsapp"
	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := planapp.Steps("PlanProvisionFunction", eventsapp.Publisher)
	lambda.Start(flow.Handler(d.Log, "provision", steps.Provision))
}
