// Package app is the API's wiring under the name internal/bench (handler-overhead)
// builds it by: app.NewAPI is apiapp.NewAPI. No function imports this package.
//
// The wiring itself lives below it: shared/app/core (Needs, Wirings, Grants, Deps:
// config, the tenants table, the flow kit, metrics), the adapters that link an SDK
// service (sfnapp, eventsapp, stripeapp, s3app), and the wiring of each family of
// functions (planapp, lifecycleapp, purgeapp, exportapp, reconcileapp, webhookapp,
// apiapp).
package app

import "github.com/tenantflow/tenantflow/shared/app/apiapp"

// API holds what the HTTP API function is built from (apiapp.API).
type API = apiapp.API

// NewAPI builds the HTTP API's dependencies (apiapp.NewAPI).
func NewAPI(logicalID string) *API { return apiapp.NewAPI(logicalID) }
