package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Routes added in the same round as this client by other parts of the API (operations
// console, plan catalogue). spec_test.go checks each against openapi.yaml once the spec
// describes it.

// ListOperationsParams filter ListOperations. Without TenantID, Status is one of
// running, needs_attention or scheduled (admin only).
type ListOperationsParams struct {
	TenantID string
	Status   string
	Limit    int
	Cursor   string
}

// OperationList is one page of ListOperations.
type OperationList struct {
	Operations []Operation `json:"operations"`
	NextCursor *string     `json:"next_cursor"`
}

// ListOperations lists operations by tenant or by status (listOperations).
func (c *Client) ListOperations(ctx context.Context, in ListOperationsParams) (*OperationList, error) {
	q := url.Values{}
	if in.TenantID != "" {
		q.Set("tenant_id", in.TenantID)
	}
	if in.Status != "" {
		q.Set("status", in.Status)
	}
	if in.Limit != 0 {
		q.Set("limit", strconv.Itoa(in.Limit))
	}
	if in.Cursor != "" {
		q.Set("cursor", in.Cursor)
	}
	return decode[OperationList](c.do(ctx, &request{method: http.MethodGet, path: "/operations", query: q}))
}

// Step is one state of an operation's execution. Compensation marks an undo step;
// Execution names the execution (the operation id, or <id>-retry-<n>).
type Step struct {
	Name         string     `json:"name"`
	Type         string     `json:"type"`
	Status       string     `json:"status"`
	StartedAt    time.Time  `json:"started_at"`
	EndedAt      *time.Time `json:"ended_at"`
	DurationMS   *int64     `json:"duration_ms"`
	Attempts     int        `json:"attempts"`
	Error        *string    `json:"error"`
	Cause        *string    `json:"cause"`
	Compensation bool       `json:"compensation"`
	Execution    string     `json:"execution"`
}

// Steps is an operation's execution, step by step.
type Steps struct {
	OperationID     string `json:"operation_id"`
	ExecutionStatus string `json:"execution_status"`
	Steps           []Step `json:"steps"`
}

// GetOperationSteps reads the steps of an operation's execution (getOperationSteps).
func (c *Client) GetOperationSteps(ctx context.Context, id string) (*Steps, error) {
	return decode[Steps](c.do(ctx, &request{method: http.MethodGet, path: "/operations/" + p(id) + "/steps"}))
}

// Upcoming is a due plan change or purge.
type Upcoming struct {
	Kind        string    `json:"kind"`
	TenantID    string    `json:"tenant_id"`
	DueAt       time.Time `json:"due_at"`
	OperationID string    `json:"operation_id,omitempty"`
	ToPlan      string    `json:"to_plan,omitempty"`
}

// OperationCounts counts the open operations.
type OperationCounts struct {
	Running        int `json:"running"`
	NeedsAttention int `json:"needs_attention"`
	Scheduled      int `json:"scheduled"`
}

// Stats is the operator's overview.
type Stats struct {
	TenantsByState map[string]int  `json:"tenants_by_state"`
	Operations     OperationCounts `json:"operations"`
	Upcoming       []Upcoming      `json:"upcoming"`
	AsOf           time.Time       `json:"as_of"`
}

// GetStats reads the overview (getStats; admin).
func (c *Client) GetStats(ctx context.Context) (*Stats, error) {
	return decode[Stats](c.do(ctx, &request{method: http.MethodGet, path: "/stats"}))
}

// Overrides is the whole set of a tenant's overrides of its plan (PutOverrides; admin):
// a limit or feature left out has no override, and Overrides{Reason: r} removes them all.
type Overrides struct {
	Limits   *LimitOverrides `json:"limits,omitempty"`
	Features map[string]bool `json:"features,omitempty"`
	Reason   string          `json:"reason"`
}

// PutOverrides replaces a tenant's overrides (putOverrides; admin); the answer is the
// tenant with its overrides and its effective limits.
func (c *Client) PutOverrides(ctx context.Context, id string, in Overrides, opts ...WriteOption) (*Tenant, error) {
	return decode[Tenant](c.do(ctx, &request{method: http.MethodPut, path: "/tenants/" + p(id) + "/overrides", body: in, idempotent: true}, opts...))
}

// ProvisioningAnswer is the app plane's answer to a ProvisioningRequested event:
// Status "succeeded" (with an optional Output), "failed" (with Error and Cause), or
// "in_progress" (a heartbeat: still working).
type ProvisioningAnswer struct {
	Status string          `json:"status"`
	Error  string          `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
}

// ProvisioningRequest is a provisioning request of the hook, as the answer route shows
// it.
type ProvisioningRequest struct {
	RequestID        string          `json:"request_id"`
	TenantID         string          `json:"tenant_id"`
	OperationID      string          `json:"operation_id"`
	Kind             string          `json:"kind"`
	Action           string          `json:"action"`
	Attempt          int             `json:"attempt"`
	FromPlan         string          `json:"from_plan"`
	ToPlan           string          `json:"to_plan"`
	Limits           json.RawMessage `json:"limits"`
	Status           string          `json:"status"`
	Error            string          `json:"error,omitempty"`
	Cause            string          `json:"cause,omitempty"`
	Output           json.RawMessage `json:"output,omitempty"`
	TimeoutSeconds   int             `json:"timeout_seconds"`
	HeartbeatSeconds int             `json:"heartbeat_seconds"`
	RequestedAt      time.Time       `json:"requested_at"`
	AnsweredAt       *time.Time      `json:"answered_at,omitempty"`
}

// AnswerProvisioning answers a provisioning request of a tenant (answerProvisioning;
// scope tenants/provisioning or admin). Repeating the same answer is harmless; a
// different one is a 409 provisioning-answered, and an answer after the flow stopped
// waiting a 410 provisioning-expired.
func (c *Client) AnswerProvisioning(ctx context.Context, tenantID, requestID string, in ProvisioningAnswer, opts ...WriteOption) (*ProvisioningRequest, error) {
	return decode[ProvisioningRequest](c.do(ctx, &request{method: http.MethodPost, path: "/tenants/" + p(tenantID) + "/provisioning/" + p(requestID), body: in, idempotent: true}, opts...))
}
