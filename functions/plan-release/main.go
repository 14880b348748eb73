// Command plan-release is a step of the upgrade and downgrade state machines: it
// ends a failed change: tenant back to ACTIVE on its previous plan, operation FAILED with what could not be undone.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := planapp.Steps("PlanReleaseFunction")
	lambda.Start(flow.Handler(d.Log, "release", steps.Release))
}
