// Command plan-abort is a step of the upgrade and downgrade state machines: it
// puts the tenant back on its previous plan in ACTIVE and marks the operation FAILED.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
)

func main() {
	lambda.Start(app.PlanSteps("plan-abort").Abort)
}
