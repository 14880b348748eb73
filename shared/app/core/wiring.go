package core

import (
	"regexp"
	"slices"
	"strings"

	"github.com/tenantflow/tenantflow/shared/store"
)

// Needs is what one function may use. Only these clients are built (Deps and the
// adapters refuse the others), and template.yaml grants exactly these (the IAM wiring
// test checks both ways).
type Needs struct {
	// Tenants reads and writes items of the control-plane table (GetItem, PutItem,
	// UpdateItem, and TransactWriteItems, which IAM governs by the same actions).
	Tenants bool
	// TenantsRead only reads items of the control-plane table (GetItem): a function
	// that checks who holds a tenant but never writes one.
	TenantsRead bool
	// Queries are what the function queries: QueryTable (the table itself) and index
	// names.
	Queries []string
	// Events publishes on the lifecycle bus.
	Events bool
	// Stripe reads the Stripe secret and calls Stripe.
	Stripe bool
	// Start, Describe and Stop are the state machines (template logical ids) whose
	// executions the function starts, describes and stops; History those whose
	// execution histories it reads (GetExecutionHistory).
	Start, Describe, Stop, History []string
	// Data reads the tenant application data table (Query); DataDelete deletes its
	// items (BatchWriteItem). Only the purge touches it.
	Data, DataDelete bool
	// Exports lists objects under exports/ (s3:ListBucket); ExportVersions lists
	// object versions and delete markers there (s3:ListBucketVersions), ExportUploads
	// the open multipart uploads (s3:ListBucketMultipartUploads). The lists of objects
	// and versions are limited to the prefix exports/ by an s3:prefix condition; IAM
	// has no such key for the list of uploads.
	Exports, ExportVersions, ExportUploads bool
	// ExportsDelete deletes object versions under exports/ (DeleteObjects naming each
	// key with its version id, which IAM authorises per key as s3:DeleteObjectVersion;
	// an unversioned bucket's objects are version "null"); ExportsAbort aborts
	// multipart uploads there (s3:AbortMultipartUpload): the purge, the export's own
	// failure paths, and the API and the reconciler ending a job whose execution died.
	ExportsDelete, ExportsAbort bool
	// TenantsDelete deletes control-plane items in batches (BatchWriteItem): the purge
	// removing a tenant's entitlements and operation records.
	TenantsDelete bool
	// ExportsWrite writes export files under exports/ by multipart upload (IAM
	// authorises Create/UploadPart/Complete as s3:PutObject); ExportsRead reads them
	// (s3:GetObject: the API signs download URLs with it, the finalize step checks a
	// completed one).
	ExportsWrite, ExportsRead bool
	// ExportsListParts lists an upload's parts (ListParts, which IAM authorises as
	// s3:ListMultipartUploadParts): the finalize step, since jobs keep no ETags.
	ExportsListParts bool
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
	// The API also reads the histories of the flows whose operations it shows
	// (GET /operations/{id}/steps), and lists operations and counts by the ByTenant,
	// Open and Due indexes (GET /operations, GET /stats).
	"ApiFunction": {Tenants: true, Queries: []string{QueryTable, store.StateIndex, store.ByTenantIndex, store.OpenIndex, store.DueIndex}, Stripe: true,
		Start:    append(append([]string{}, flowMachines...), ExportStateMachine),
		Describe: append(append([]string{}, flowMachines...), ExportStateMachine), ExportsRead: true, ExportsAbort: true,
		History: append([]string{}, flowMachines...)},
	"PlanValidateFunction":          {Tenants: true},
	"PlanProvisionFunction":         {Tenants: true, Events: true},
	"PlanBillingFunction":           {Tenants: true, Stripe: true},
	"PlanCommitFunction":            {Tenants: true},
	"PlanRollbackBillingFunction":   {Tenants: true, Stripe: true},
	"PlanRollbackProvisionFunction": {Tenants: true, Events: true},
	"PlanReleaseFunction":           {Tenants: true},
	"DowngradeSweepFunction": {Tenants: true, Queries: []string{store.DueIndex}, Stripe: true,
		Start: []string{DowngradeStateMachine}},
	// The reconciler reads the Open index and describes the executions of every flow
	// whose operations it ends, the purge's included, and of the export, whose dead
	// jobs it ends too (aborting their uploads).
	"ReconcileFunction": {Tenants: true, Queries: []string{store.OpenIndex},
		Describe: append(append([]string{}, flowMachines...), PurgeStateMachine, ExportStateMachine), ExportsAbort: true},
	// Deletion, reactivation and suspension (shared/lifecycle) share their steps.
	"LifecycleClaimFunction":       {Tenants: true},
	"LifecycleAccessFunction":      {Tenants: true, Events: true},
	"LifecycleBillingFunction":     {Tenants: true, Stripe: true},
	"LifecycleFinishFunction":      {Tenants: true},
	"LifecycleUndoAccessFunction":  {Tenants: true, Events: true},
	"LifecycleUndoBillingFunction": {Tenants: true, Stripe: true},
	"LifecycleReleaseFunction":     {Tenants: true},
	// The purge (shared/purge): the sweep reads the Due index, starts and describes
	// purges and publishes the TenantPurged a committed purge left pending; each step
	// touches only the sources it reads or deletes. Start stops the tenant's running
	// exports; Delete and Verify delete and read back its Stripe customer.
	"PurgeSweepFunction": {Tenants: true, Queries: []string{store.DueIndex}, Events: true,
		Start: []string{PurgeStateMachine}, Describe: []string{PurgeStateMachine}},
	"PurgeStartFunction": {Tenants: true, Queries: []string{QueryTable, store.ByTenantIndex}, Data: true,
		ExportVersions: true, ExportUploads: true, Stop: []string{ExportStateMachine}},
	"PurgeDeleteFunction": {TenantsRead: true, Queries: []string{QueryTable, store.ByTenantIndex}, Data: true, DataDelete: true,
		ExportVersions: true, ExportUploads: true, ExportsDelete: true, ExportsAbort: true, TenantsDelete: true, Stripe: true},
	"PurgeVerifyFunction": {Tenants: true, Queries: []string{QueryTable, store.ByTenantIndex}, Data: true,
		ExportVersions: true, ExportUploads: true, Stripe: true},
	"PurgeFinishFunction":  {Tenants: true, Queries: []string{QueryTable}, Events: true},
	"PurgeReleaseFunction": {Tenants: true},
	// The data export (shared/export): the job record lives in the tenants table; each
	// step touches only the sources it reads and the upload it writes.
	"ExportStartFunction":    {Tenants: true, Queries: []string{QueryTable}, Data: true, ExportsWrite: true, ExportsAbort: true},
	"ExportChunkFunction":    {Tenants: true, Queries: []string{QueryTable, store.ByTenantIndex}, Data: true, Exports: true, ExportsWrite: true},
	"ExportFinalizeFunction": {Tenants: true, ExportsWrite: true, ExportsRead: true, ExportsListParts: true},
	"ExportReleaseFunction":  {Tenants: true, ExportsAbort: true},
	// The Stripe webhook (shared/webhook) suspends and reactivates; it never calls
	// Stripe: the events carry what it needs.
	"StripeWebhookFunction": {Tenants: true, WebhookSecret: true,
		Start: []string{ReactivationStateMachine, SuspensionStateMachine}, Describe: []string{ReactivationStateMachine, SuspensionStateMachine}},
}

// env lists the variables the Needs require.
func (n Needs) env() []string {
	var out []string
	if n.Tenants || n.TenantsRead {
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
	if n.S3() {
		out = append(out, "EXPORTS_BUCKET_NAME")
	}
	seen := map[string]bool{}
	for _, sm := range n.Machines() {
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

// Machines lists the state machines whose executions the function starts, describes,
// stops or reads the history of, each once: it reads their ARNs from the environment.
func (n Needs) Machines() []string {
	var out []string
	for _, sm := range slices.Concat(n.Start, n.Describe, n.Stop, n.History) {
		if !slices.Contains(out, sm) {
			out = append(out, sm)
		}
	}
	return out
}

// StepFunctions reports whether the function starts, describes or stops executions
// (the Step Functions client, sfnapp).
func (n Needs) StepFunctions() bool { return len(n.Machines()) > 0 }

// S3 reports whether the function touches the exports bucket (the S3 client).
func (n Needs) S3() bool {
	return n.Exports || n.ExportVersions || n.ExportUploads || n.ExportsDelete || n.ExportsAbort || n.ExportsWrite || n.ExportsRead ||
		n.ExportsListParts
}

// SecretsManager reports whether the function reads a secret: the Stripe key (read on
// the first Stripe call) or the webhook signing secret.
func (n Needs) SecretsManager() bool { return n.Stripe || n.WebhookSecret }

// PurgeSources reports whether a purge function reaches the tenant's data sources
// (shared/purge/sources: s3app.PurgeSources builds them).
func (n Needs) PurgeSources() bool { return n.Data || n.ExportVersions || n.TenantsDelete }
