// Package reconcileapp wires the scheduled reconciler: one run ends every open
// operation (flow.Reconciler) and every open export job (export.Service.EndDeadJobs)
// whose execution is over. It also names the flows the reconciler follows, which are
// the ones whose operations the API serves (apiapp).
package reconcileapp

import (
	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/app/exportapp"
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

// Reconciler builds the scheduled reconcile run: the operations pass for every
// followed flow and the purge (the purge sweep would release a dead purge only when
// its tenant is due again), then the export jobs pass (the export service, with the
// aborter of a dead job's upload its Needs.ExportsAbort gives it).
func Reconciler(logicalID string) *Run {
	d := core.Load(logicalID, sfnapp.Executions)
	flows := append(Followed(d), purge.Definition(d.StateMachineARN(core.PurgeStateMachine)))
	ops := flow.NewReconciler(d.Store(), core.Provided[flow.Executions](d), d.Log, flows...).WithMetrics(d.Metrics())
	return &Run{Operations: ops, Exports: exportapp.Service(d), Log: d.Log}
}
