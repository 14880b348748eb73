// Command plan-provision is a step of the upgrade and downgrade state machines: it
// writes the target plan's entitlements and publishes TenantPlanChanged.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := app.PlanSteps("PlanProvisionFunction")
	lambda.Start(flow.Handler(d.Log, "provision", steps.Provision))
}
