// Package reconcileapp wires the scheduled reconciler (flow.Reconciler) and names the
// flows it follows, which are also the ones whose operations the API serves (apiapp).
package reconcileapp

import (
	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/app/lifecycleapp"
	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/purge"
)

// Followed are every flow the API and the reconciler follow: upgrade, downgrade,
// deletion, reactivation and suspension (not the purge, see purge.Definition).
func Followed(d *core.Deps) []*flow.Definition {
	up, down := planapp.Flows(d)
	del, re, sus := lifecycleapp.Flows(d)
	return []*flow.Definition{up, down, del, re, sus}
}

// Reconciler builds the scheduled reconciler for every followed flow and the purge:
// it ends every open operation whose execution is over, whatever its kind (the purge
// sweep would release a dead purge only when its tenant is due again).
func Reconciler(logicalID string) *flow.Reconciler {
	d := core.Load(logicalID, sfnapp.Executions)
	flows := append(Followed(d), purge.Definition(d.StateMachineARN(core.PurgeStateMachine)))
	return flow.NewReconciler(d.Store(), core.Provided[flow.Executions](d), d.Log, flows...).WithMetrics(d.Metrics())
}
