// Command plan-commit is a step of the upgrade and downgrade state machines: it
// sets the new plan, returns the tenant to ACTIVE and marks the operation SUCCEEDED.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := planapp.Steps("PlanCommitFunction")
	lambda.Start(flow.Handler(d.Log, "commit", steps.Commit))
}
