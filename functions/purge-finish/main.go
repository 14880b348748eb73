// Command purge-finish is a step of the purge state machine: it
// publishes TenantPurged and writes the PURGED tombstone.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := app.PurgeSteps("PurgeFinishFunction")
	lambda.Start(flow.Handler(d.Log, "finish", steps.Finish))
}
