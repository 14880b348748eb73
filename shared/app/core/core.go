// Package core is what every function's wiring shares: its Needs (Wirings, the one
// table that template.yaml's policies are checked against), its configuration, the
// tenants table (store), the flow kit and the metrics writer. It imports no AWS service
// but DynamoDB and no Stripe package, so every function links it.
//
// Everything else a function talks to (Step Functions, EventBridge, Stripe with its
// secret, S3) is built by an Adapter from its own package under shared/app (sfnapp,
// eventsapp, stripeapp, s3app), and the wiring of each family of functions (planapp,
// lifecycleapp, purgeapp, exportapp, reconcileapp, webhookapp, apiapp) takes it back
// with Provided. A family package imports only the adapters that every function it
// wires uses; the others are passed by the functions' main.go, so a function links an
// SDK service only when its Needs use it (TestFunctionsLinkWhatTheirNeedsUse).
//
// An adapter refuses to build what the function's Needs do not declare, and Provided
// refuses a cold start whose main.go passes no adapter for what its Needs declare: a
// step that never calls Stripe never reads the Stripe secret at cold start (the
// failure that a missing IAM grant would otherwise cause in AWS). The IAM wiring test
// compares every function's Needs with its policies in template.yaml, both ways.
package core

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tenantflow/tenantflow/shared/config"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/metrics"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Deps are the clients and settings of one function, built once per cold start and
// only as far as the function's Needs allow.
type Deps struct {
	Log     *slog.Logger
	Config  config.Config
	AWS     aws.Config
	Catalog *tenant.Catalog

	function string
	needs    Needs
	store    *store.Store
	metrics  *metrics.Writer
	provided map[reflect.Type]any
}

// An Adapter builds one client the function's Needs declare beyond the tenants table
// and hands it to the wiring with Provide. It refuses (Deps.Refuse) when the Needs do
// not declare what it builds.
type Adapter func(*Deps)

// Must exits with a JSON log line when err is set: a failed cold start is reported by
// Lambda as an init error, which is clearer than a nil dereference later.
func Must[T any](log *slog.Logger, v T, err error) T {
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	return v
}

// Load reads the configuration of the function with template logical id logicalID
// (requiring the variables its Needs imply), prepares its clients and runs the
// adapters its main.go passes.
func Load(logicalID string, adapters ...Adapter) *Deps {
	needs, ok := Wirings[logicalID]
	log := config.Logger(logicalID)
	if !ok {
		log.Error("cold start failed", "error", "no wiring for function "+logicalID)
		os.Exit(1)
	}
	cfg := config.MustLoad(log, needs.env()...)
	awsCfg, err := config.AWS(context.Background())
	Must(log, awsCfg, err)
	d := &Deps{Log: log, Config: cfg, AWS: awsCfg, Catalog: cfg.Catalog, function: logicalID, needs: needs, provided: map[reflect.Type]any{}}
	for _, a := range adapters {
		a(d)
	}
	return d
}

// Function is the template logical id of the function.
func (d *Deps) Function() string { return d.function }

// Needs are what the function may use (Wirings).
func (d *Deps) Needs() Needs { return d.needs }

// Refuse stops a cold start that asks for a client its Needs do not declare: the
// template grants only what Needs say, so using it would fail with AccessDenied.
func (d *Deps) Refuse(what string) {
	d.Log.Error("cold start failed", "error", fmt.Sprintf("function %s uses %s but its wiring does not declare it", d.function, what))
	os.Exit(1)
}

// Provide hands the wiring the client v as a T; an Adapter calls it.
func Provide[T any](d *Deps, v T) { d.provided[reflect.TypeFor[T]()] = v }

// Provided returns the T an adapter provided. When none did, it stops the cold start:
// the function's Needs declare the client (the wiring asks only then) but its main.go
// passes no adapter that builds it.
func Provided[T any](d *Deps) T {
	v, ok := d.provided[reflect.TypeFor[T]()].(T)
	if !ok {
		d.Log.Error("cold start failed", "error", fmt.Sprintf("function %s needs a %s (its Needs declare it) but its main.go passes no adapter that provides one",
			d.function, reflect.TypeFor[T]()))
		os.Exit(1)
	}
	return v
}

// Store returns the control-plane table adapter.
func (d *Deps) Store() *store.Store {
	if !d.needs.Tenants && !d.needs.TenantsRead {
		d.Refuse("the tenants table")
	}
	if d.store == nil {
		d.store = store.New(dynamodb.NewFromConfig(d.AWS), d.Config.Table, nil)
	}
	return d.store
}

// Kit returns the flow kit on the store, reporting its metrics.
func (d *Deps) Kit() *flow.Kit { return &flow.Kit{Store: d.Store(), Log: d.Log, Metrics: d.Metrics()} }

// Metrics returns the function's EMF writer on stdout, in the namespace of its stage.
// It needs no client and no grant: CloudWatch Logs extracts the metrics.
func (d *Deps) Metrics() *metrics.Writer {
	if d.metrics == nil {
		d.metrics = metrics.Stdout(metrics.NamespaceFor(d.Config.Stage))
	}
	return d.metrics
}

// StateMachineARN returns the ARN of a state machine the function declared.
func (d *Deps) StateMachineARN(logicalID string) string { return os.Getenv(StateMachineEnv(logicalID)) }
