// Command export-finalize is a step of the export state machine: it
// completes the upload and records the size and SHA-256 of the export.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/exportapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := exportapp.Steps("ExportFinalizeFunction")
	lambda.Start(flow.Handler(d.Log, "finalize", steps.Finalize))
}
