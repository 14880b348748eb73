// Command export-chunk is a step of the export state machine: it
// writes the next part of the export (one gzip member of NDJSON) from the recorded cursor and checksum state.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/exportapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

func main() {
	d, steps := exportapp.Steps("ExportChunkFunction")
	lambda.Start(flow.Handler(d.Log, "chunk", steps.Chunk))
}
