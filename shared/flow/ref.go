package flow

import (
	"encoding/json"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Ref names the operation a step works for. Every flow's execution input embeds it;
// ids travel in the input because the local interpreter's $$ context is mostly empty.
type Ref struct {
	OperationID string `json:"operation_id"`
	TenantID    string `json:"tenant_id"`
	Kind        string `json:"kind"`
}

// FlowRef returns r; embedding Ref gives every Input this method (see Input).
func (r Ref) FlowRef() Ref { return r }

// Input is what Handler needs of a step's input: the operation it works for.
type Input interface{ FlowRef() Ref }

// CaughtError is what a Catch puts at its ResultPath: the error name and its cause.
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

// Outcome is what the release step answers; the state machine's last Choice reads
// Status: SUCCEEDED means the flow had committed before the failure that led here (its
// answer was lost), so the execution ends in Succeed.
type Outcome struct {
	Status                 tenant.OperationStatus `json:"status"`
	CompensationIncomplete []string               `json:"compensation_incomplete,omitempty"`
	// Released is true for the call that failed the operation, false for a repeat
	// that found it failed already: a flow counts its own failure metrics on it once.
	Released bool `json:"-"`
}
