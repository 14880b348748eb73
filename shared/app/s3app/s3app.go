// Package s3app is the wiring that links the S3 client: the exports bucket's client
// and the purge's data sources. Only the functions whose Needs touch the exports
// bucket import it.
package s3app

import (
	"os"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/purge/sources"
)

// Client is the S3 client of the export: path-style when a local endpoint is set
// (moto serves every bucket under its one host, and a presigned URL must reach it).
func Client(d *core.Deps) *s3.Client {
	if !d.Needs().S3() {
		d.Refuse("the exports bucket")
	}
	return s3.NewFromConfig(d.AWS, func(o *s3.Options) {
		if os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != "" {
			o.UsePathStyle = true
		}
	})
}

// PurgeSources is the core.Adapter that provides the purge.Sources of a purge step:
// the data table (Data), the exports bucket's versions and uploads (ExportVersions,
// ExportUploads) and the control-plane table's partitions and ByTenant items (Queries
// of the table), each only when the Needs declare it.
func PurgeSources(d *core.Deps) {
	n := d.Needs()
	if !n.PurgeSources() {
		d.Refuse("the purge's data sources")
	}
	src := &sources.Sources{DataTable: d.Config.DataTable, Bucket: d.Config.ExportsBucket, Table: d.Config.Table}
	db := dynamodb.NewFromConfig(d.AWS)
	if n.Data {
		src.Data = db
	}
	if n.ExportVersions || n.ExportUploads {
		src.Objects = Client(d)
	}
	if slices.Contains(n.Queries, core.QueryTable) {
		src.ControlPlane = db
	}
	core.Provide[purge.Sources](d, src)
}
