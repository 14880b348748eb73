package flow_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestClassify: what a step reports decides whether Step Functions retries it (the
// name TransientError) or catches it at once (a typed domain error, by its name).
func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string // Go type name = the ASL error name
	}{
		{"typed domain error stays itself", &tenant.UsageExceedsLimitError{Plan: tenant.Free}, "UsageExceedsLimitError"},
		{"wrapped typed error is unwrapped", fmt.Errorf("claim: %w", &tenant.ConflictError{TenantID: "t"}), "ConflictError"},
		{"invalid transition", &tenant.InvalidTransitionError{From: tenant.Deleted, To: tenant.Active}, "InvalidTransitionError"},
		{"billing transient", fmt.Errorf("billing: %w", &billing.TransientError{Op: "update", StatusCode: 503}), "TransientError"},
		{"billing rejection is final", &billing.RejectedError{Op: "update", StatusCode: 402}, "RejectedError"},
		{"store kept losing its race", fmt.Errorf("change: %w", store.ErrContended), "TransientError"},
		{"deadline", fmt.Errorf("put: %w", context.DeadlineExceeded), "TransientError"},
		{"transaction conflict", &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: aws.String("TransactionConflict")}}}, "TransientError"},
		{"throttling", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}, "TransientError"},
		// A missing grant stays missing: retrying it only delays the failure.
		{"access denied is final", fmt.Errorf("get tenant: %w", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:iam::123456789012:user/f is not authorized to perform: dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/t"}), "wrapError"},
		{"S3 access denied is final", &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}, "GenericAPIError"},
		{"throttled event entry", &events.RejectedError{DetailType: "TenantDeleted", Code: "ThrottlingException"}, "TransientError"},
		{"rejected event entry is final", &events.RejectedError{DetailType: "TenantDeleted", Code: "MalformedDetail"}, "RejectedError"},
		{"unknown error unchanged", errors.New("boom"), "errorString"},
	}
	for _, c := range cases {
		got := flow.Classify("step", c.err)
		typ := reflect.TypeOf(got)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Name() != c.want {
			t.Errorf("%s: classified as %s (%v), want %s", c.name, typ.Name(), got, c.want)
		}
	}
	if flow.Classify("step", nil) != nil {
		t.Error("nil is not nil")
	}
}

// TestExecutionNames: the first attempt runs under the operation id, operator retries
// under -retry-N, and execution ARNs follow from the state machine ARN.
func TestExecutionNames(t *testing.T) {
	op := &tenant.Operation{ID: "op_1"}
	if op.ExecutionName() != "op_1" {
		t.Fatal(op.ExecutionName())
	}
	op.Attempt = 2
	if op.ExecutionName() != "op_1-retry-2" {
		t.Fatal(op.ExecutionName())
	}
	arn := flow.ExecutionARN("arn:aws:states:us-east-1:123456789012:stateMachine:upgrade", "op_1")
	if arn != "arn:aws:states:us-east-1:123456789012:execution:upgrade:op_1" {
		t.Fatal(arn)
	}
	if id := flow.NewOperationID(); len(id) > 80 || id[:3] != "op_" {
		t.Fatalf("operation id %q is not a valid execution name", id)
	}
}
