// Package planchange runs upgrades and downgrades: the API-side Starter does the
// synchronous pre-checks and starts the Step Functions execution; Steps holds one
// handler per state of statemachines/upgrade.asl.json and downgrade.asl.json. Each step
// is idempotent per operation id so Step Functions retries change nothing more, and each
// forward step has a compensating step the Catch branch runs.
package planchange

import (
	"encoding/json"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Input is the execution input and what every step receives and returns. Ids travel in
// the input because the local interpreter's $$ context is mostly empty.
type Input struct {
	OperationID string      `json:"operation_id"`
	TenantID    string      `json:"tenant_id"`
	Kind        string      `json:"kind"`
	FromPlan    tenant.Plan `json:"from_plan"`
	ToPlan      tenant.Plan `json:"to_plan"`
	AtPeriodEnd bool        `json:"at_period_end,omitempty"`
	RequestedBy string      `json:"requested_by,omitempty"`
	// Error is set by the state machine's Catch (ResultPath $.error).
	Error *CaughtError `json:"error,omitempty"`
}

// CaughtError is what a Catch puts at ResultPath: the error name and its cause.
type CaughtError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Message returns the human part of the cause: Lambda puts a JSON document
// {"errorMessage","errorType"} in Cause; other errors give plain text.
func (c *CaughtError) Message() string {
	if c == nil {
		return ""
	}
	var lambdaErr struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(c.Cause), &lambdaErr) == nil && lambdaErr.ErrorMessage != "" {
		return lambdaErr.ErrorMessage
	}
	return c.Cause
}

func (in Input) busyState() tenant.State {
	if in.Kind == tenant.KindDowngrade {
		return tenant.Downgrading
	}
	return tenant.Upgrading
}
