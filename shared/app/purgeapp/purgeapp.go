// Package purgeapp wires the purge's functions (shared/purge). It links no client
// beyond the tenants table: the steps that read or delete the tenant's data, stop its
// exports, erase its Stripe customer or publish, and the sweep, get theirs from the
// adapters their main.go passes (s3app.PurgeSources, sfnapp.Executions,
// stripeapp.Billing, eventsapp.Publisher).
package purgeapp

import (
	"slices"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/billing"
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
	if n.PurgeSources() {
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
	if slices.Contains(n.Stop, core.ExportStateMachine) {
		x, ok := core.Provided[flow.Executions](d).(purge.Executions)
		if !ok {
			d.Refuse("stopping executions with a Step Functions adapter that cannot stop them")
		}
		steps.WithExports(x, d.StateMachineARN(core.ExportStateMachine))
	}
	if n.Stripe {
		c, ok := core.Provided[billing.Billing](d).(purge.Customers)
		if !ok {
			d.Refuse("Stripe customers with a billing adapter that cannot delete them")
		}
		steps.WithCustomers(c)
	}
	return d, steps
}

// Sweeper builds the scheduled purge sweep (adapters: Step Functions, and the event
// bus for the TenantPurged events it relays).
func Sweeper(logicalID string, adapters ...core.Adapter) *purge.Sweeper {
	d := core.Load(logicalID, adapters...)
	sw := purge.NewSweeper(d.Store(), core.Provided[flow.Executions](d), d.StateMachineARN(core.PurgeStateMachine), d.Log).WithMetrics(d.Metrics())
	if d.Needs().Events {
		sw.WithPublisher(core.Provided[events.Publisher](d))
	}
	return sw
}
