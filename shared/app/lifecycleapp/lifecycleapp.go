// Package lifecycleapp wires the deletion, reactivation and suspension step functions
// (shared/lifecycle). It links no client beyond the tenants table: the steps that
// publish or call Stripe get theirs from the adapters their main.go passes
// (eventsapp.Publisher, stripeapp.Billing).
package lifecycleapp

import (
	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/provision"
)

// Flows returns the flow-kit definitions of deletion, reactivation and suspension.
func Flows(d *core.Deps) (deletion, reactivation, suspension *flow.Definition) {
	return lifecycle.Definitions(d.Store(), d.StateMachineARN(core.DeletionStateMachine), d.StateMachineARN(core.ReactivationStateMachine),
		d.StateMachineARN(core.SuspensionStateMachine))
}

// Steps builds the lifecycle step handlers of one step function, with only the
// clients its Needs declare, from the adapters its main.go passes.
func Steps(logicalID string, adapters ...core.Adapter) (*core.Deps, *lifecycle.Steps) {
	d := core.Load(logicalID, adapters...)
	var access lifecycle.Access
	if d.Needs().Events {
		access = provision.New(d.Store(), core.Provided[events.Publisher](d), d.Catalog)
	}
	var b lifecycle.Billing
	if d.Needs().Stripe {
		b = core.Provided[billing.Billing](d)
	}
	return d, lifecycle.NewSteps(d.Kit(), d.Store(), access, b, d.Catalog)
}
