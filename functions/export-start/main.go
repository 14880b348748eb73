// Command export-start is a step of the export state machine: it
// starts a queued export: counts the items for the progress estimate and opens the multipart upload.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/exportapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := exportapp.Steps("ExportStartFunction")
	lambda.Start(flow.Handler(d.Log, "start", steps.Start))
}
