// Package reconcileapp wires the scheduled reconciler (flow.Reconciler) and names the
// flows it follows, which are also the ones whose operations the API serves (apiapp).
package reconcileapp

import (
	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
	"github.com/tenantflow/tenantflow/shared/flow"
)

// Followed are every flow the API and the reconciler follow: upgrade, downgrade,
// deletion, reactivation and suspension (not the purge, see purge.Definition).
func Followed(d *core.Deps) []*flow.Definition {
	up, down := planapp.Flows(d)
	del, re, sus := lifecycleapp.Flows(d)
	return []*flow.Definition{up, down, del, re, sus}
}

// Reconciler builds the scheduled reconciler for every followed flow.
func Reconciler(logicalID string) *flow.Reconciler {
	d := core.Load(logicalID, sfnapp.Executions)
	return flow.NewReconciler(d.Store(), core.Provided[flow.Executions](d), d.Log, Followed(d)...).WithMetrics(d.Metrics())
}
