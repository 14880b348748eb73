package app

import (
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/shared/export"
)

// exportS3 is the S3 client of the export: path-style when a local endpoint is set
// (moto serves every bucket under its one host, and a presigned URL must reach it).
func (d *Deps) exportS3() *s3.Client {
	return s3.NewFromConfig(d.AWS, func(o *s3.Options) {
		if os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != "" {
			o.UsePathStyle = true
		}
	})
}

// ExportSteps builds the export step handlers of one step function with only the
// sources its Needs declare. EXPORT_PART_BYTES sets the compressed size of one part
// (one chunk invocation); tests lower it to see several chunks on small data.
func ExportSteps(logicalID string) (*Deps, *export.Steps) {
	d := Load(logicalID)
	db := dynamodb.NewFromConfig(d.AWS)
	r := &export.Reader{Table: d.Config.Table, DataTable: d.Config.DataTable, Bucket: d.Config.ExportsBucket}
	if slices.Contains(d.needs.Queries, QueryTable) {
		r.ControlPlane = db
	}
	if d.needs.Data {
		r.Data = db
	}
	if d.needs.Exports || d.needs.ExportsWrite || d.needs.ExportsRead {
		r.Objects = d.exportS3()
	}
	steps := &export.Steps{Jobs: &export.Jobs{DB: db, Table: d.Config.Table}, Reader: r, Log: d.Log, Now: time.Now,
		PartBytes: export.DefaultPartBytes, Metrics: d.Metrics()}
	if v := os.Getenv("EXPORT_PART_BYTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < export.MinPartBytes {
			d.Log.Error("cold start failed", "error", "EXPORT_PART_BYTES must be a whole number of at least 5242880")
			os.Exit(1)
		}
		steps.PartBytes = n
	}
	return d, steps
}

// Exports builds the API's export service: job records, the export state machine and
// the signer of download URLs (EXPORT_URL_TTL_SECONDS, default 15 minutes).
func (d *Deps) Exports() *export.Service {
	svc := &export.Service{Jobs: &export.Jobs{DB: dynamodb.NewFromConfig(d.AWS), Table: d.Config.Table}, Tenants: d.Store(), SFN: d.SFN(),
		StateMachineARN: d.StateMachineARN(ExportStateMachine), Bucket: d.Config.ExportsBucket, URLTTL: export.DefaultURLTTL}
	if d.needs.ExportsRead {
		svc.Presign = s3.NewPresignClient(d.exportS3())
	}
	if v, err := strconv.Atoi(os.Getenv("EXPORT_URL_TTL_SECONDS")); err == nil && v > 0 {
		svc.URLTTL = time.Duration(v) * time.Second
	}
	return svc
}
