// Command plan-validate is a step of the upgrade and downgrade state machines: it
// checks the target plan (and usage on downgrade) and claims the tenant (ACTIVE → UPGRADING/DOWNGRADING).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
)

func main() {
	lambda.Start(app.PlanSteps("plan-validate").Validate)
}
