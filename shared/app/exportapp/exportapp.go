// Package exportapp wires the data export (shared/export): its step functions, and the
// API's export service. Every function it wires writes or reads the exports bucket, so
// it links S3 itself (s3app).
package exportapp

import (
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/app/s3app"
	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/flow"
)

// Steps builds the export step handlers of one step function with only the sources
// its Needs declare. EXPORT_PART_BYTES sets the compressed size of one part (one chunk
// invocation); tests lower it to see several chunks on small data.
func Steps(logicalID string) (*core.Deps, *export.Steps) {
	d := core.Load(logicalID)
	n := d.Needs()
	db := dynamodb.NewFromConfig(d.AWS)
	r := &export.Reader{Table: d.Config.Table, DataTable: d.Config.DataTable, Bucket: d.Config.ExportsBucket}
	if slices.Contains(n.Queries, core.QueryTable) {
		r.ControlPlane = db
	}
	if n.Data {
		r.Data = db
	}
	if n.S3() {
		r.Objects = s3app.Client(d)
	}
	steps := &export.Steps{Jobs: &export.Jobs{DB: db, Table: d.Config.Table}, Reader: r, Log: d.Log, Now: time.Now,
		PartBytes: export.DefaultPartBytes, Metrics: d.Metrics()}
	if v := os.Getenv("EXPORT_PART_BYTES"); v != "" {
		size, err := strconv.Atoi(v)
		if err != nil || size < export.MinPartBytes {
			d.Log.Error("cold start failed", "error", "EXPORT_PART_BYTES must be a whole number of at least 5242880")
			os.Exit(1)
		}
		steps.PartBytes = size
	}
	return d, steps
}

// Service builds the API's export service: job records, the export state machine
// (the flow.Executions of sfnapp.Executions), the signer of download URLs
// (EXPORT_URL_TTL_SECONDS, default 15 minutes) and, with Needs.ExportsAbort, the
// aborter of a dead job's upload. A reconciler wired with Describe of the export
// state machine, ExportsAbort and the Open index can use the same Service for
// EndDeadJobs.
func Service(d *core.Deps) *export.Service {
	svc := &export.Service{Jobs: &export.Jobs{DB: dynamodb.NewFromConfig(d.AWS), Table: d.Config.Table}, Tenants: d.Store(),
		SFN: core.Provided[flow.Executions](d), StateMachineARN: d.StateMachineARN(core.ExportStateMachine), Bucket: d.Config.ExportsBucket,
		URLTTL: export.DefaultURLTTL, Log: d.Log}
	if d.Needs().ExportsRead {
		svc.Presign = s3.NewPresignClient(s3app.Client(d))
	}
	if d.Needs().ExportsAbort {
		svc.Uploads = s3app.Client(d)
	}
	if v, err := strconv.Atoi(os.Getenv("EXPORT_URL_TTL_SECONDS")); err == nil && v > 0 {
		svc.URLTTL = time.Duration(v) * time.Second
	}
	return svc
}
