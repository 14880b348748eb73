// Command plan-rollback-provision is a step of the upgrade and downgrade state machines: it
// restores the previous entitlements and publishes the compensating event.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
)

func main() {
	lambda.Start(app.PlanSteps("plan-rollback-provision").RollbackProvision)
}
