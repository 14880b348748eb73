// Package store keeps tenants, their audit trail, operations and entitlements in one
// DynamoDB table. Every state change is one conditional TransactWriteItems: the tenant
// item guarded by state and version, plus its audit record, so no update is ever lost
// and no transition goes unrecorded.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// DynamoDB is the part of the DynamoDB client the store uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Index names; template.yaml declares the same ones.
const (
	// StateIndex lists tenants by state (HASH state, RANGE tenant_id).
	StateIndex = "ByState"
	// DueIndex is sparse: only tenants with something due carry due_kind/due_at, so a
	// sweep reads O(due) items (HASH due_kind, RANGE due_at).
	DueIndex = "Due"
	// OpenIndex is sparse too: only open work carries open_kind/open_at (an operation
	// while RUNNING, an export job while queued or running), so the reconciler reads
	// O(open) items (HASH open_kind, RANGE open_at: when it became open).
	OpenIndex = "Open"
)

// Open kinds stored in open_kind.
const (
	OpenOperation = "OP"     // an operation item while RUNNING
	OpenExport    = "EXPORT" // an export job item while queued or running
)

// Due kinds stored in due_kind.
const (
	DueChange = "CHANGE" // a pending plan change at period end
	DuePurge  = "PURGE"  // a deleted tenant whose retention ends at due_at
	// DuePurgedEvent is a PURGED tenant whose TenantPurged is still to be published
	// (due_at: the commit); the purge sweep publishes what its Finish step could not.
	DuePurgedEvent = "PURGED_EVENT"
)

// Store is the DynamoDB adapter for the control-plane table.
type Store struct {
	db    DynamoDB
	table string
	now   func() time.Time
}

// New returns a store on table. now may be nil (time.Now).
func New(db DynamoDB, table string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: table, now: now}
}

// Table is the name of the table the store writes.
func (s *Store) Table() string { return s.table }

// Actor says who caused a change, for the audit trail.
type Actor struct {
	Who string // subject of the token, or "system:<function>"
	// As is the class of caller the lifecycle policy decides for (tenant.Decide);
	// entry points set it from the credentials, never from a request body.
	As          tenant.Actor
	OperationID string
	Reason      string
}

// conflictFrom maps a conditional failure (plain or inside a transaction) to
// *tenant.ConflictError and passes other errors through wrapped.
func conflictFrom(err error, id, reason, op string) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &tenant.ConflictError{TenantID: id, Reason: reason}
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return &tenant.ConflictError{TenantID: id, Reason: reason}
			}
		}
		return fmt.Errorf("%s %s: transaction canceled: %w", op, id, err)
	}
	return fmt.Errorf("%s %s: %w", op, id, err)
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// Timestamp is how the store writes times, fixed width so that they sort as strings:
// index range keys written outside the store (an export job's open_at) use it too.
func Timestamp(t time.Time) string { return ts(t) }
