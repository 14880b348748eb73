// Command purge-start is a step of the purge state machine: it
// claims the DELETED tenant for the purge and takes the inventory of its data once.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/purgeapp"
	"github.com/tenantflow/tenantflow/shared/app/s3app"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := purgeapp.Steps("PurgeStartFunction", s3app.PurgeSources, sfnapp.Executions)
	lambda.Start(flow.Handler(d.Log, "start", steps.Start))
}
