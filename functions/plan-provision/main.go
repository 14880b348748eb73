// Command plan-provision is a step of the upgrade and downgrade state machines: it
// writes the target plan's entitlements and publishes TenantPlanChanged.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
)

func main() {
	lambda.Start(app.PlanSteps("plan-provision").Provision)
}
