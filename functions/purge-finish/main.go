// Command purge-finish is a step of the purge state machine: it
// publishes TenantPurged and writes the PURGED tombstone.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/eventsapp"
	"github.com/tenantflow/tenantflow/shared/app/purgeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := purgeapp.Steps("PurgeFinishFunction", eventsapp.Publisher)
	lambda.Start(flow.Handler(d.Log, "finish", steps.Finish))
}
