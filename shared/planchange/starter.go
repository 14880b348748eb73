package planchange

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// StarterStore is the persistence the API side needs.
type StarterStore interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	Update(ctx context.Context, id string, expectedVersion int64, mutate func(*tenant.Tenant), by store.Actor) (*tenant.Tenant, error)
	CreateOperation(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
	SetOperationStatus(ctx context.Context, id string, status tenant.OperationStatus, errName, cause string) error
}

// Executions is the part of the Step Functions client the starter uses.
type Executions interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, optFns ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Starter answers plan-change requests at once: it refuses what cannot work (unknown
// plan, wrong direction, tenant not ACTIVE, usage over the target limits) and starts
// the state machine for the rest. The operation id is the execution name.
type Starter struct {
	store        StarterStore
	sfn          Executions
	catalog      *tenant.Catalog
	upgradeARN   string
	downgradeARN string
	now          func() time.Time
}

// NewStarter wires the API side of plan changes.
func NewStarter(s StarterStore, x Executions, c *tenant.Catalog, upgradeARN, downgradeARN string) *Starter {
	return &Starter{store: s, sfn: x, catalog: c, upgradeARN: upgradeARN, downgradeARN: downgradeARN, now: time.Now}
}

// Upgrade starts an upgrade of tenantID to plan.
func (s *Starter) Upgrade(ctx context.Context, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error) {
	t, err := s.precheck(ctx, tenantID, tenant.KindUpgrade, plan)
	if err != nil {
		return nil, err
	}
	return s.start(ctx, s.upgradeARN, Input{OperationID: NewOperationID(), TenantID: t.ID, Kind: tenant.KindUpgrade, FromPlan: t.Plan, ToPlan: plan, RequestedBy: by.Who})
}

// Downgrade starts a downgrade of tenantID to plan now, or records it as pending until
// the billing period end when atPeriodEnd (the scheduled sweep starts it then).
func (s *Starter) Downgrade(ctx context.Context, tenantID string, plan tenant.Plan, atPeriodEnd bool, by store.Actor) (*tenant.Operation, error) {
	t, err := s.precheck(ctx, tenantID, tenant.KindDowngrade, plan)
	if err != nil {
		return nil, err
	}
	if err := s.catalog.FitsPlan(t.Usage, plan); err != nil {
		return nil, err
	}
	in := Input{OperationID: NewOperationID(), TenantID: t.ID, Kind: tenant.KindDowngrade, FromPlan: t.Plan, ToPlan: plan, RequestedBy: by.Who, AtPeriodEnd: atPeriodEnd}
	if !atPeriodEnd {
		return s.start(ctx, s.downgradeARN, in)
	}
	effective := PeriodEnd(t, s.now())
	op, err := s.store.CreateOperation(ctx, &tenant.Operation{ID: in.OperationID, TenantID: t.ID, Kind: in.Kind, Status: tenant.OpScheduled,
		FromPlan: t.Plan, ToPlan: plan, AtPeriodEnd: true, EffectiveAt: &effective, RequestedBy: by.Who})
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Update(ctx, t.ID, t.Version, func(x *tenant.Tenant) {
		x.PendingChange = &tenant.PendingChange{Plan: plan, EffectiveAt: effective, OperationID: op.ID}
	}, store.Actor{Who: by.Who, OperationID: op.ID, Reason: fmt.Sprintf("downgrade to %s scheduled for %s", plan, effective.Format(time.RFC3339))}); err != nil {
		_ = s.store.SetOperationStatus(ctx, op.ID, tenant.OpFailed, "ConflictError", err.Error())
		return nil, err
	}
	return op, nil
}

// PeriodEnd is when a period-end change of t takes effect: the subscription's current
// period end, or 30 days from now for tenants without one.
func PeriodEnd(t *tenant.Tenant, now time.Time) time.Time {
	if t.Billing.CurrentPeriodEnd != nil && t.Billing.CurrentPeriodEnd.After(now) {
		return t.Billing.CurrentPeriodEnd.UTC()
	}
	return now.UTC().AddDate(0, 0, 30).Truncate(time.Second)
}

func (s *Starter) precheck(ctx context.Context, tenantID, kind string, plan tenant.Plan) (*tenant.Tenant, error) {
	if _, err := s.catalog.Parse(string(plan)); err != nil {
		return nil, err
	}
	t, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	busy := tenant.Upgrading
	if kind == tenant.KindDowngrade {
		busy = tenant.Downgrading
	}
	if t.State != tenant.Active {
		return nil, tenant.CheckTransition(t.State, busy)
	}
	if t.Operation != "" || t.PendingChange != nil {
		op := t.Operation
		if op == "" {
			op = t.PendingChange.OperationID
		}
		return nil, &tenant.ConflictError{TenantID: t.ID, Reason: "operation " + op + " is already in progress for this tenant"}
	}
	if err := checkDirection(s.catalog, kind, t.Plan, plan); err != nil {
		return nil, err
	}
	return t, nil
}

// start records the operation and starts its execution named by the operation id.
func (s *Starter) start(ctx context.Context, arn string, in Input) (*tenant.Operation, error) {
	op, err := s.store.CreateOperation(ctx, &tenant.Operation{ID: in.OperationID, TenantID: in.TenantID, Kind: in.Kind, Status: tenant.OpRunning,
		FromPlan: in.FromPlan, ToPlan: in.ToPlan, AtPeriodEnd: in.AtPeriodEnd, RequestedBy: in.RequestedBy})
	if err != nil {
		return nil, err
	}
	if err := StartExecution(ctx, s.sfn, arn, in); err != nil {
		_ = s.store.SetOperationStatus(ctx, op.ID, tenant.OpFailed, "StartExecutionFailed", err.Error())
		return nil, err
	}
	return op, nil
}

// StartExecution starts the flow for in, named by its operation id. Starting the same
// operation again is harmless: Step Functions answers the same execution while it runs,
// and ExecutionAlreadyExists once it has finished — both mean "already started".
func StartExecution(ctx context.Context, x Executions, arn string, in Input) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("marshal execution input: %w", err)
	}
	_, err = x.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String(in.OperationID), Input: aws.String(string(body))})
	var exists *sfntypes.ExecutionAlreadyExists
	if errors.As(err, &exists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("start execution %s: %w", in.OperationID, err)
	}
	return nil
}

// Operation returns an operation. While the record says RUNNING it asks Step Functions,
// so an execution that died without reaching its compensation still reports FAILED.
func (s *Starter) Operation(ctx context.Context, id string) (*tenant.Operation, error) {
	op, err := s.store.GetOperation(ctx, id)
	if err != nil {
		return nil, err
	}
	if op.Status != tenant.OpRunning {
		return op, nil
	}
	arn := s.upgradeARN
	if op.Kind == tenant.KindDowngrade {
		arn = s.downgradeARN
	}
	out, err := s.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(ExecutionARN(arn, id))})
	if err != nil {
		return op, nil // the record is still the best answer we have
	}
	switch out.Status {
	case sfntypes.ExecutionStatusFailed, sfntypes.ExecutionStatusTimedOut, sfntypes.ExecutionStatusAborted:
		// Re-read: the abort step may have just finished the record.
		if again, err := s.store.GetOperation(ctx, id); err == nil && again.Done() {
			return again, nil
		}
		op.Status, op.Error, op.Cause = tenant.OpFailed, aws.ToString(out.Error), aws.ToString(out.Cause)
		if op.Error == "" {
			op.Error = "Execution" + string(out.Status)
		}
	}
	return op, nil
}

// ExecutionARN derives an execution's ARN from its state machine ARN and name.
func ExecutionARN(stateMachineARN, name string) string {
	return strings.Replace(stateMachineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

// NewOperationID returns a new, time-ordered operation id that is a valid execution name.
func NewOperationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("op_%x_%s", time.Now().UTC().UnixMilli(), hex.EncodeToString(b[:]))
}
