// Command purge-delete is a step of the purge state machine: it
// deletes one bounded chunk of the tenant's data and says whether more remains.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/purgeapp"
	"github.com/tenantflow/tenantflow/shared/app/s3app"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := purgeapp.Steps("PurgeDeleteFunction", s3app.PurgeSources, stripeapp.Billing)
	lambda.Start(flow.Handler(d.Log, "delete", steps.Delete))
}
