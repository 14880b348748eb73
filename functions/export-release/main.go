// Command export-release is a step of the export state machine: it
// marks a failed export failed and aborts its upload.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/exportapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := exportapp.Steps("ExportReleaseFunction")
	lambda.Start(flow.Handler(d.Log, "release", steps.Release))
}
