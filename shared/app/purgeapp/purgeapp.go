// Package purgeapp wires the purge's functions (shared/purge). It links no client
// beyond the tenants table: the steps that read or delete the tenant's data, the one
// that publishes and the sweep get theirs from the adapters their main.go passes
// (s3app.PurgeSources, eventsapp.Publisher, sfnapp.Executions).
package purgeapp

import (
	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/purge"
)

// Steps builds the purge step handlers of one step function with only the sources
// and clients its Needs declare; the others stay nil and that step never calls them.
func Steps(logicalID string, adapters ...core.Adapter) (*core.Deps, *purge.Steps) {
	d := core.Load(logicalID, adapters...)
	n := d.Needs()
	var src purge.Sources
	if n.Data || n.Exports || n.TenantsDelete {
		src = core.Provided[purge.Sources](d)
	}
	var pub purge.Publisher
	if n.Events {
		pub = core.Provided[events.Publisher](d)
	}
	steps := purge.NewSteps(d.Kit(), d.Store(), src, pub)
	if d.Config.PurgeChunkItems > 0 {
		steps.ChunkItems = int64(d.Config.PurgeChunkItems)
	}
	return d, steps
}

// Sweeper builds the scheduled purge sweep (adapter: Step Functions).
func Sweeper(logicalID string, adapters ...core.Adapter) *purge.Sweeper {
	d := core.Load(logicalID, adapters...)
	return purge.NewSweeper(d.Store(), core.Provided[flow.Executions](d), d.StateMachineARN(core.PurgeStateMachine), d.Log).WithMetrics(d.Metrics())
}
