package app

import (
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/purge"
)

// PurgeFlow returns the flow-kit definition of the purge (for flow.NewOperations; not
// for the reconciler, see purge.Definition).
func (d *Deps) PurgeFlow() *flow.Definition {
	return purge.Definition(d.StateMachineARN(PurgeStateMachine))
}

// PurgeSteps builds the purge step handlers of one step function with only the
// sources and clients its Needs declare; the others stay nil and that step never
// calls them.
func PurgeSteps(logicalID string) (*Deps, *purge.Steps) {
	d := Load(logicalID)
	var src *purge.Sources
	if d.needs.Data || d.needs.Exports || d.needs.TenantsDelete {
		src = d.purgeSources()
	}
	var pub purge.Publisher
	if d.needs.Events {
		pub = events.NewPublisher(eventbridge.NewFromConfig(d.AWS), d.Config.EventBus)
	}
	steps := purge.NewSteps(d.Kit(), d.Store(), src, pub)
	if d.Config.PurgeChunkItems > 0 {
		steps.ChunkItems = int64(d.Config.PurgeChunkItems)
	}
	return d, steps
}

// purgeSources reaches the data sources of tenants: the data table (Data), the exports
// bucket (Exports) and the control-plane table's partitions (Queries of the table).
func (d *Deps) purgeSources() *purge.Sources {
	src := &purge.Sources{DataTable: d.Config.DataTable, Bucket: d.Config.ExportsBucket, Table: d.Config.Table}
	db := dynamodb.NewFromConfig(d.AWS)
	if d.needs.Data {
		src.Data = db
	}
	if d.needs.Exports {
		src.Objects = s3.NewFromConfig(d.AWS)
	}
	if slices.Contains(d.needs.Queries, QueryTable) {
		src.ControlPlane = db
	}
	return src
}

// PurgeSweeper builds the scheduled purge sweep.
func PurgeSweeper(logicalID string) *purge.Sweeper {
	d := Load(logicalID)
	return purge.NewSweeper(d.Store(), d.SFN(), d.StateMachineARN(PurgeStateMachine), d.Log).WithMetrics(d.Metrics())
}
