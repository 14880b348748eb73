// Package apiapp wires the HTTP API function: it starts, follows, retries and resolves
// the flows (Step Functions), calls Stripe when a tenant is created or a downgrade
// re-reads its period, and signs export download URLs (S3), so it links each of them.
package apiapp

import (
	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/app/exportapp"
	"github.com/tenantflow/tenantflow/shared/app/planapp"
	"github.com/tenantflow/tenantflow/shared/app/reconcileapp"
	"github.com/tenantflow/tenantflow/shared/app/sfnapp"
	"github.com/tenantflow/tenantflow/shared/app/stripeapp"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/provision"
)

// API holds what the HTTP API function is built from.
type API struct {
	Deps         *Deps
	Operations   *flow.Operations
	PlanChanges  *planchange.Starter
	Lifecycle    *lifecycle.Starter
	Entitlements *provision.Provisioner
	Billing      billing.Billing
	// Steps reads the execution histories of the followed flows (nil when the Step
	// Functions adapter cannot read histories).
	Steps *flow.StepReader
}

// Deps are the API's core.Deps, with its export service.
type Deps struct{ *core.Deps }

// Exports builds the API's export service (exportapp.Service).
func (d *Deps) Exports() *export.Service { return exportapp.Service(d.Deps) }

// NewAPI builds the HTTP API's dependencies.
func NewAPI(logicalID string) *API {
	d := core.Load(logicalID, sfnapp.Executions, stripeapp.Billing)
	b := core.Provided[billing.Billing](d)
	x := core.Provided[flow.Executions](d)
	followed := reconcileapp.Followed(d)
	ops := flow.NewOperations(d.Store(), x, followed...)
	var steps *flow.StepReader
	if h, ok := x.(flow.Histories); ok {
		steps = flow.NewStepReader(h, followed...)
	}
	return &API{
		Deps: &Deps{d}, Operations: ops, Billing: b, Steps: steps,
		PlanChanges: planchange.NewStarter(d.Store(), ops, planapp.Periods(b), d.Catalog),
		Lifecycle:   lifecycle.NewStarter(d.Store(), ops, d.Catalog, d.Config.DefaultRetentionDays),
		// Creating a tenant writes its first entitlements and publishes nothing.
		Entitlements: provision.New(d.Store(), nil, d.Catalog),
	}
}
