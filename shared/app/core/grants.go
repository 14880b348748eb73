package core

import (
	"slices"
	"sort"
)

// Grant is one IAM permission a function's Needs imply: Action on Resource.
//
// Resource is written the way template.yaml writes it, in CloudFormation Fn::Sub
// syntax ("${TenantsTable.Arn}/index/Due", "${UpgradeStateMachine}"), not as an ARN:
// this package stays free of ARN formats, partitions and account ids, and the IAM
// wiring test (internal/localstack/iamcheck) resolves it with the template's own resolver,
// so it compares equal to what a policy of the template resolves to exactly when both
// name the same resource.
type Grant struct {
	Action   string
	Resource string
	// Condition is the template condition the grant exists under ("" = always): the
	// Stripe secret exists, and is granted, only when HasStripeSecret holds.
	Condition string
	// Prefix, on an S3 bucket-level list action, is the s3:prefix the grant is
	// limited to (an IAM Condition StringLike on s3:prefix), so a function may list
	// only what lies under it.
	Prefix string
}

// HasStripeSecret is the template condition under which billing is on.
const HasStripeSecret = "HasStripeSecret"

// HasStripeWebhookSecret is the template condition under which the webhook secret
// exists, and is granted.
const HasStripeWebhookSecret = "HasStripeWebhookSecret"

// Resources of the grants, in Fn::Sub syntax.
const (
	tenantsTable = "${TenantsTable.Arn}"
	lifecycleBus = "${LifecycleEventBus.Arn}"
	// The application data table and the exports bucket, which only the purge
	// touches; it deletes objects only under exports/.
	dataTable     = "${TenantDataTable.Arn}"
	exportsBucket = "${ExportsBucket.Arn}"
	exportObjects = "${ExportsBucket.Arn}/exports/*"
	// exportsPrefix limits the lists of objects and versions to exports/ (s3:prefix).
	exportsPrefix = "exports/*"
	// Secrets Manager appends a random suffix ("-AbCdEf") to a secret's ARN, so a
	// grant by name needs the trailing "-*".
	stripeSecret = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${StripeSecretName}-*"
	// The webhook signing secret, a secret of its own: the webhook never gets the API key.
	webhookSecretARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${StripeWebhookSecretName}-*"
)

// storePort maps each method of store.DynamoDB, the only DynamoDB client the
// functions have (Deps.Store), to the Needs field that grants it and the IAM actions
// that authorise it. TestStorePortIsMapped fails when the port gains a method missing
// here, so a new call (Scan, DeleteItem, BatchWriteItem, ...) cannot reach AWS without
// a grant: add it here, then to the template.
var storePort = map[string]struct {
	needs   string // the Needs field that grants the actions
	actions []string
}{
	"GetItem":    {"Tenants", []string{"dynamodb:GetItem"}},
	"PutItem":    {"Tenants", []string{"dynamodb:PutItem"}},
	"UpdateItem": {"Tenants", []string{"dynamodb:UpdateItem"}},
	// IAM has no TransactWriteItems action: each element of a transaction is authorised
	// as its own item action. The store's transactions hold only Put and Update
	// elements (TestStoreTransactionsHoldOnlyPutAndUpdate); a ConditionCheck would need
	// dynamodb:ConditionCheckItem and a Delete dynamodb:DeleteItem.
	"TransactWriteItems": {"Tenants", []string{"dynamodb:PutItem", "dynamodb:UpdateItem"}},
	// Query is granted per table or index, by Needs.Queries.
	"Query": {"Queries", []string{"dynamodb:Query"}},
}

// portActions returns the sorted IAM actions of the port methods granted by field.
func portActions(field string) []string {
	var out []string
	for _, m := range storePort {
		if m.needs == field {
			out = append(out, m.actions...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Grants returns the IAM permissions the Needs imply. It is the one mapping from
// Needs to IAM: a client is built only for what Needs declare, and template.yaml
// must grant each function exactly Grants of its wiring, no more and no less (the
// IAM wiring test compares both ways).
//
// A new Needs field gets its case here; TestGrantsMapEveryNeedsField fails while a
// field, when set, yields no grant.
func (n Needs) Grants() []Grant {
	var out []Grant
	add := func(cond, resource string, actions ...string) {
		for _, a := range actions {
			out = append(out, Grant{Action: a, Resource: resource, Condition: cond})
		}
	}
	if n.Tenants {
		add("", tenantsTable, portActions("Tenants")...)
	} else if n.TenantsRead {
		add("", tenantsTable, "dynamodb:GetItem")
	}
	for _, q := range n.Queries {
		res := tenantsTable
		if q != QueryTable {
			res += "/index/" + q
		}
		add("", res, portActions("Queries")...)
	}
	if n.Events {
		add("", lifecycleBus, "events:PutEvents")
	}
	if n.Stripe {
		add(HasStripeSecret, stripeSecret, "secretsmanager:GetSecretValue")
	}
	for _, sm := range n.Start {
		// Ref of a state machine is its ARN.
		add("", "${"+sm+"}", "states:StartExecution")
	}
	for _, sm := range n.Describe {
		// DescribeExecution is authorised on the execution, not the state machine.
		add("", executions(sm), "states:DescribeExecution")
	}
	for _, sm := range n.Stop {
		add("", executions(sm), "states:StopExecution")
	}
	for _, sm := range n.History {
		add("", executions(sm), "states:GetExecutionHistory")
	}
	// The purge's own ports (shared/purge/sources); purgePorts (purge_test.go) ties
	// them to these.
	if n.Data {
		add("", dataTable, "dynamodb:Query")
	}
	if n.DataDelete {
		add("", dataTable, "dynamodb:BatchWriteItem")
	}
	list := func(action string) {
		out = append(out, Grant{Action: action, Resource: exportsBucket, Prefix: exportsPrefix})
	}
	if n.Exports {
		list("s3:ListBucket")
	}
	if n.ExportVersions {
		list("s3:ListBucketVersions")
	}
	if n.ExportUploads {
		// IAM offers no s3:prefix condition key for this action (a condition on it
		// would deny every request): the grant is on the bucket as a whole.
		add("", exportsBucket, "s3:ListBucketMultipartUploads")
	}
	if n.ExportsDelete {
		add("", exportObjects, "s3:DeleteObjectVersion")
	}
	if n.ExportsAbort {
		add("", exportObjects, "s3:AbortMultipartUpload")
	}
	if n.TenantsDelete {
		add("", tenantsTable, "dynamodb:BatchWriteItem")
	}
	// The export's ports (shared/export).
	if n.ExportsWrite {
		add("", exportObjects, "s3:PutObject")
	}
	if n.ExportsRead {
		add("", exportObjects, "s3:GetObject")
	}
	if n.ExportsListParts {
		add("", exportObjects, "s3:ListMultipartUploadParts")
	}
	if n.WebhookSecret {
		add(HasStripeWebhookSecret, webhookSecretARN, "secretsmanager:GetSecretValue")
	}
	return out
}

// executions is the ARN pattern of every execution of a state machine: the resource
// IAM authorises DescribeExecution, StopExecution and GetExecutionHistory on.
func executions(sm string) string {
	return "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${" + sm + ".Name}:*"
}
