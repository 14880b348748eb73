// Command purge-verify is a step of the purge state machine: it
// reads every source back empty and writes the deletion certificate.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/purgeapp"
	"github.com/tenantflow/tenantflow/shared/app/s3app"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := purgeapp.Steps("PurgeVerifyFunction", s3app.PurgeSources, stripeapp.Billing)
	lambda.Start(flow.Handler(d.Log, "verify", steps.Verify))
}
