// Command purge-release is a step of the purge state machine: it
// ends a failed purge: the tenant stays DELETED and due, the operation FAILED.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/purgeapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := purgeapp.Steps("PurgeReleaseFunction")
	lambda.Start(flow.Handler(d.Log, "release", steps.Release))
}
