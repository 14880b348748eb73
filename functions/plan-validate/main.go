// Command plan-validate is a step of the upgrade and downgrade state machines: it
// checks the change and claims the tenant (ACTIVE -> UPGRADING/DOWNGRADING).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := planapp.Steps("PlanValidateFunction")
	lambda.Start(flow.Handler(d.Log, "validate", steps.Validate))
}
