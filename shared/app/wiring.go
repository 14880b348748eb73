package app

import (
	"context"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Needs is what one function may use. Deps builds only these clients, and template.yaml
// grants exactly these (the IAM wiring test checks both ways).
type Needs struct {
	// Tenants reads and writes items of the control-plane table (GetItem, PutItem,
	// UpdateItem, and TransactWriteItems, which IAM governs by the same actions).
	Tenants bool
	// Queries are what the function queries: QueryTable (the table itself) and index
	// names.
	Queries []string
	// Events publishes on the lifecycle bus.
	Events bool
	// Stripe reads the Stripe secret and calls Stripe.
	Stripe bool
	// Start and Describe are the state machines (template logical ids) whose
	// executions the function starts and describes.
	Start, Describe []string
	// Data reads the tenant application data table (Query); DataDelete deletes its
	// items (BatchWriteItem). Only the purge touches it.
	Data, DataDelete bool
	// Exports lists the exports bucket (s3:ListBucket); ExportsDelete deletes objects
	// under exports/ (DeleteObjects, which IAM authorises as s3:DeleteObject per key).
	Exports, ExportsDelete bool
	// TenantsDelete deletes control-plane items in batches (BatchWriteItem): the purge
	// removing a tenant's entitlements and operation records.
	TenantsDelete bool
	// ExportsWrite writes export files under exports/ by multipart upload (IAM
	// authorises Create/UploadPart/Complete as s3:PutObject) and aborts uploads of
	// failed exports (s3:AbortMultipartUpload); ExportsRead reads them (s3:GetObject:
	// the API signs download URLs with it, the finalize step checks a completed one).
	ExportsWrite, ExportsRead bool
	// WebhookSecret reads the Stripe webhook signing secret (the webhook only).
	WebhookSecret bool
}

// QueryTable in Needs.Queries is a Query of the table itself (not an index).
const QueryTable = "table"

// Template logical ids of the state machines.
const (
	UpgradeStateMachine      = "UpgradeStateMachine"
	DowngradeStateMachine    = "DowngradeStateMachine"
	PurgeStateMachine        = "PurgeStateMachine"
	DeletionStateMachine     = "DeletionStateMachine"
	ReactivationStateMachine = "ReactivationStateMachine"
	SuspensionStateMachine   = "SuspensionStateMachine"
	ExportStateMachine       = "ExportStateMachine"
)

var (
	planMachines      = []string{UpgradeStateMachine, DowngradeStateMachine}
	lifecycleMachines = []string{DeletionStateMachine, ReactivationStateMachine, SuspensionStateMachine}
	// flowMachines are the flows whose operations the API and the reconciler follow.
	flowMachines = append(append([]string{}, planMachines...), lifecycleMachines...)
)

// Wirings are the Needs of every function of template.yaml, by logical id.
var Wirings = map[string]Needs{
	"ApiFunction": {Tenants: true, Queries: []string{QueryTable, store.StateIndex}, Stripe: true,
		Start: append(append([]string{}, flowMachines...), ExportStateMachine), Describe: flowMachines, ExportsRead: true},
	"PlanValidateFunction":          {Tenants: true},
	"PlanProvisionFunction":         {Tenants: true, Events: true},
	"PlanBillingFunction":           {Tenants: true, Stripe: true},
	"PlanCommitFunction":            {Tenants: true},
	"PlanRollbackBillingFunction":   {Tenants: true, Stripe: true},
	"PlanRollbackProvisionFunction": {Tenants: true, Events: true},
	"PlanReleaseFunction":           {Tenants: true},
	"DowngradeSweepFunction": {Tenants: true, Queries: []string{store.DueIndex}, Stripe: true,
		Start: []string{DowngradeStateMachine}},
	"ReconcileFunction": {Tenants: true, Queries: []string{store.StateIndex}, Describe: flowMachines},
	// Deletion, reactivation and suspension (shared/lifecycle) share their steps.
	"LifecycleClaimFunction":       {Tenants: true},
	"LifecycleAccessFunction":      {Tenants: true, Events: true},
	"LifecycleBillingFunction":     {Tenants: true, Stripe: true},
	"LifecycleFinishFunction":      {Tenants: true},
	"LifecycleUndoAccessFunction":  {Tenants: true, Events: true},
	"LifecycleUndoBillingFunction": {Tenants: true, Stripe: true},
	"LifecycleReleaseFunction":     {Tenants: true},
	// The purge (shared/purge): the sweep reads the Due index and starts and describes
	// purges; each step touches only the sources it reads or deletes.
	"PurgeSweepFunction": {Tenants: true, Queries: []string{store.DueIndex},
		Start: []string{PurgeStateMachine}, Describe: []string{PurgeStateMachine}},
	"PurgeStartFunction": {Tenants: true, Queries: []string{QueryTable}, Data: true, Exports: true},
	"PurgeDeleteFunction": {Tenants: true, Queries: []string{QueryTable}, Data: true, DataDelete: true,
		Exports: true, ExportsDelete: true, TenantsDelete: true},
	"PurgeVerifyFunction":  {Tenants: true, Queries: []string{QueryTable}, Data: true, Exports: true},
	"PurgeFinishFunction":  {Tenants: true, Queries: []string{QueryTable}, Events: true},
	"PurgeReleaseFunction": {Tenants: true},
	// The data export (shared/export): the job record lives in the tenants table; each
	// step touches only the sources it reads and the upload it writes.
	"ExportStartFunction":    {Tenants: true, Queries: []string{QueryTable}, Data: true, ExportsWrite: true},
	"ExportChunkFunction":    {Tenants: true, Queries: []string{QueryTable}, Data: true, Exports: true, ExportsWrite: true},
	"ExportFinalizeFunction": {Tenants: true, ExportsWrite: true, ExportsRead: true},
	"ExportReleaseFunction":  {Tenants: true, ExportsWrite: true},
	// The Stripe webhook (shared/webhook) suspends and reactivates; it never calls
	// Stripe: the events carry what it needs.
	"StripeWebhookFunction": {Tenants: true, WebhookSecret: true,
		Start: []string{ReactivationStateMachine, SuspensionStateMachine}},
}

// env lists the variables the Needs require.
func (n Needs) env() []string {
	var out []string
	if n.Tenants {
		out = append(out, "TABLE_NAME")
	}
	if n.Events {
		out = append(out, "EVENT_BUS_NAME")
	}
	if n.Stripe {
		out = append(out, "STRIPE_PRICE_IDS")
	}
	if n.Data || n.DataDelete {
		out = append(out, "DATA_TABLE_NAME")
	}
	if n.Exports || n.ExportsDelete || n.ExportsWrite || n.ExportsRead {
		out = append(out, "EXPORTS_BUCKET_NAME")
	}
	seen := map[string]bool{}
	for _, sm := range append(append([]string{}, n.Start...), n.Describe...) {
		if !seen[sm] {
			seen[sm] = true
			out = append(out, StateMachineEnv(sm))
		}
	}
	return out
}

var camel = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// StateMachineEnv is the environment variable holding a state machine's ARN:
// UpgradeStateMachine → UPGRADE_STATE_MACHINE_ARN.
func StateMachineEnv(logicalID string) string {
	return strings.ToUpper(camel.ReplaceAllString(logicalID, "${1}_${2}")) + "_ARN"
}

// StateMachineARN returns the ARN of a state machine the function declared.
func (d *Deps) StateMachineARN(logicalID string) string { return os.Getenv(StateMachineEnv(logicalID)) }

// priceChanger adapts billing.Billing to what the plan-change steps need.
type priceChanger struct{ b billing.Billing }

func (p priceChanger) ChangePrice(ctx context.Context, subscriptionID string, plan tenant.Plan, key string, prorate bool) error {
	_, err := p.b.ChangePlan(ctx, billing.ChangeRequest{SubscriptionID: subscriptionID, Plan: plan, IdempotencyKey: key, NoProration: !prorate})
	return err
}

// periods adapts billing.Billing to the billing period reads of plan changes.
type periods struct{ b billing.Billing }

func (p periods) CurrentPeriod(ctx context.Context, subscriptionID string) (time.Time, time.Time, bool, error) {
	sub, err := p.b.Get(ctx, subscriptionID)
	if err != nil || sub.Status == billing.StatusDisabled || sub.CurrentPeriodEnd.IsZero() {
		return time.Time{}, time.Time{}, false, err
	}
	return sub.CurrentPeriodStart, sub.CurrentPeriodEnd, true, nil
}

// PlanFlows returns the flow-kit definitions of upgrade and downgrade.
func (d *Deps) PlanFlows() (upgrade, downgrade *flow.Definition) {
	return planchange.Definitions(d.Store(), d.StateMachineARN(UpgradeStateMachine), d.StateMachineARN(DowngradeStateMachine))
}

// PlanSteps builds the plan-change step handlers of one step function: only the
// clients its Needs declare (the others stay nil and are never called by that step).
func PlanSteps(logicalID string) (*Deps, *planchange.Steps) {
	d := Load(logicalID)
	var prov planchange.Provisioner
	if d.needs.Events {
		prov = d.Provisioner()
	}
	var price planchange.PriceChanger
	if d.needs.Stripe {
		price = priceChanger{d.Billing(context.Background())}
	}
	return d, planchange.NewSteps(d.Kit(), d.Store(), prov, price, d.Catalog)
}

// Sweeper builds the scheduled period-end downgrade sweep.
func Sweeper(logicalID string) *planchange.Sweeper {
	d := Load(logicalID)
	return planchange.NewSweeper(d.Store(), d.SFN(), periods{d.Billing(context.Background())}, d.StateMachineARN(DowngradeStateMachine), d.Log)
}

// LifecycleFlows returns the flow-kit definitions of deletion, reactivation and
// suspension.
func (d *Deps) LifecycleFlows() (deletion, reactivation, suspension *flow.Definition) {
	return lifecycle.Definitions(d.Store(), d.StateMachineARN(DeletionStateMachine), d.StateMachineARN(ReactivationStateMachine),
		d.StateMachineARN(SuspensionStateMachine))
}

// flows are every flow the API and the reconciler follow.
func (d *Deps) flows() []*flow.Definition {
	up, down := d.PlanFlows()
	del, re, sus := d.LifecycleFlows()
	return []*flow.Definition{up, down, del, re, sus}
}

// LifecycleSteps builds the lifecycle step handlers of one step function, with only
// the clients its Needs declare.
func LifecycleSteps(logicalID string) (*Deps, *lifecycle.Steps) {
	d := Load(logicalID)
	var access lifecycle.Access
	if d.needs.Events {
		access = d.Provisioner()
	}
	var b lifecycle.Billing
	if d.needs.Stripe {
		b = d.Billing(context.Background())
	}
	return d, lifecycle.NewSteps(d.Kit(), d.Store(), access, b, d.Catalog)
}

// Reconciler builds the scheduled reconciler for every flow.
func Reconciler(logicalID string) *flow.Reconciler {
	d := Load(logicalID)
	return flow.NewReconciler(d.Store(), d.SFN(), d.Log, d.flows()...).WithMetrics(d.Metrics())
}

// API holds what the HTTP API function is built from.
type API struct {
	Deps         *Deps
	Operations   *flow.Operations
	PlanChanges  *planchange.Starter
	Lifecycle    *lifecycle.Starter
	Entitlements *provision.Provisioner
	Billing      billing.Billing
}

// NewAPI builds the HTTP API's dependencies.
func NewAPI(logicalID string) *API {
	d := Load(logicalID)
	b := d.Billing(context.Background())
	ops := flow.NewOperations(d.Store(), d.SFN(), d.flows()...)
	return &API{
		Deps: d, Operations: ops, Billing: b,
		PlanChanges: planchange.NewStarter(d.Store(), ops, periods{b}, d.Catalog),
		Lifecycle:   lifecycle.NewStarter(d.Store(), ops, d.Catalog, d.Config.DefaultRetentionDays),
		// Creating a tenant writes its first entitlements and publishes nothing.
		Entitlements: provision.New(d.Store(), nil, d.Catalog),
	}
}
