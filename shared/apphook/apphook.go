// Package apphook is the provisioning hook: a flow asks the app plane (the SaaS
// application that serves the tenant's users) to provision or undo what a change
// needs, and waits for its answer through Step Functions' callback pattern.
//
// The flow's step (Requester.Request) records one request item per (operation,
// attempt, action) in the tenant's partition, keeps the task token of the Task's
// current attempt on it, and publishes ProvisioningRequested once. The app plane
// answers through the API (Answerer.Answer, POST /tenants/{id}/provisioning/{request_id}),
// which records the answer with a conditional write and then hands it to Step
// Functions with the stored token. Task tokens never leave the control plane: the app
// plane knows a request by its id only.
//
// At least once on every side: a step that runs again finds its request and only
// replaces the token (an answer already recorded is handed to the new token at once,
// so a retry never waits for an answer that came); a duplicate answer finds the same
// answer recorded and changes nothing; an answer the flow no longer waits for (its
// Task timed out or the flow moved on) is refused with ExpiredError and recorded as
// expired, and changes nothing else.
package apphook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Actions a request asks of the app plane.
const (
	ActionApply = "apply" // provision what the change needs
	ActionUndo  = "undo"  // undo what an apply of the same operation may have done
)

// Status of a request.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	// StatusExpired: the flow stopped waiting (timeout, heartbeat timeout, or it
	// compensated meanwhile); a later answer is refused.
	StatusExpired = "expired"
	// StatusInProgress is an answer only: a heartbeat, the request stays pending.
	StatusInProgress = "in_progress"
)

// ModeEventBridge is the ProvisioningHook value that turns the hook on; "none" (or
// anything else) leaves the flows as they are without it.
const ModeEventBridge = "eventbridge"

// DetailType is the lifecycle event that carries a request to the app plane.
const DetailType = "ProvisioningRequested"

// Error names the flows see (Step Functions errors of the waiting Task). The app
// plane's own error code goes into the cause: it can never name an error the state
// machine retries.
const (
	ErrorFailed  = "AppProvisioningFailed"
	ErrorExpired = "AppProvisioningExpired"
)

// Config is what the state machine passes the hook step (its $.app_hook).
type Config struct {
	Mode             string `json:"mode"`
	TimeoutSeconds   int    `json:"timeout_seconds"`
	HeartbeatSeconds int    `json:"heartbeat_seconds"`
}

// On reports whether the hook is configured.
func (c *Config) On() bool { return c != nil && c.Mode == ModeEventBridge }

// Request is one provisioning request and, once answered, its answer.
type Request struct {
	ID          string        `json:"request_id"`
	TenantID    string        `json:"tenant_id"`
	OperationID string        `json:"operation_id"`
	Kind        string        `json:"kind"`
	Action      string        `json:"action"`
	Attempt     int           `json:"attempt"`
	FromPlan    tenant.Plan   `json:"from_plan"`
	ToPlan      tenant.Plan   `json:"to_plan"`
	Limits      tenant.Limits `json:"limits"`
	Status      string        `json:"status"`
	// Token is the task token of the waiting Task's current attempt (never shown).
	Token string `json:"-"`
	// Error and Cause are the app plane's failure; Output its success document.
	Error            string          `json:"error,omitempty"`
	Cause            string          `json:"cause,omitempty"`
	Output           json.RawMessage `json:"output,omitempty"`
	Published        bool            `json:"-"`
	TimeoutSeconds   int             `json:"timeout_seconds"`
	HeartbeatSeconds int             `json:"heartbeat_seconds"`
	RequestedAt      time.Time       `json:"requested_at"`
	AnsweredAt       *time.Time      `json:"answered_at,omitempty"`
	// Version counts the writes; every write is conditioned on it.
	Version int64 `json:"-"`
}

// RequestID is the id of the request of (operation, attempt, action): the same on
// every run of the step, so a step that runs twice asks once; a new attempt (an
// operator retry) asks anew.
func RequestID(operationID string, attempt int, action string) string {
	sum := sha256.Sum256([]byte(operationID + ":" + strconv.Itoa(attempt) + ":" + action))
	return "prq_" + hex.EncodeToString(sum[:16])
}

// ValidRequestID reports whether id has RequestID's shape (checked before any read).
func ValidRequestID(id string) bool {
	if len(id) != 36 || id[:4] != "prq_" {
		return false
	}
	for _, c := range id[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Event is the detail of ProvisioningRequested.
type Event struct {
	RequestID        string        `json:"request_id"`
	TenantID         string        `json:"tenant_id"`
	OperationID      string        `json:"operation_id"`
	Kind             string        `json:"kind"`
	Action           string        `json:"action"`
	Attempt          int           `json:"attempt"`
	FromPlan         tenant.Plan   `json:"from_plan"`
	ToPlan           tenant.Plan   `json:"to_plan"`
	Limits           tenant.Limits `json:"limits"`
	AnswerPath       string        `json:"answer_path"`
	TimeoutSeconds   int           `json:"timeout_seconds"`
	HeartbeatSeconds int           `json:"heartbeat_seconds"`
	RequestedAt      time.Time     `json:"requested_at"`
}

// AnswerPath is the API path the app plane answers a request on.
func AnswerPath(tenantID, requestID string) string {
	return "/tenants/" + tenantID + "/provisioning/" + requestID
}

// Store keeps requests (shared/store implements it).
type Store interface {
	GetProvisioning(ctx context.Context, tenantID, id string) (*Request, error)
	// PutProvisioning writes r if the stored version is still expected (0: must not
	// exist); r.Version becomes expected+1. A lost condition is *tenant.ConflictError.
	PutProvisioning(ctx context.Context, r *Request, expected int64) error
}

// Tasks answers waiting Tasks (Step Functions' SendTask* on the task token).
type Tasks interface {
	SendTaskSuccess(ctx context.Context, token, output string) error
	SendTaskFailure(ctx context.Context, token, errName, cause string) error
	SendTaskHeartbeat(ctx context.Context, token string) error
}

// ErrTaskClosed is what Tasks return when Step Functions no longer waits on the token
// (TaskTimedOut, TaskDoesNotExist, InvalidToken).
var ErrTaskClosed = errors.New("the task no longer waits for an answer")

// Publisher sends the request event.
type Publisher interface {
	Publish(ctx context.Context, detailType string, detail any) error
}

// ExpiredError refuses an answer the flow no longer waits for.
type ExpiredError struct{ RequestID string }

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("provisioning request %s: the flow no longer waits for an answer", e.RequestID)
}

// AnsweredError refuses an answer that differs from the one recorded.
type AnsweredError struct{ RequestID, Status string }

func (e *AnsweredError) Error() string {
	return fmt.Sprintf("provisioning request %s was answered %s already", e.RequestID, e.Status)
}

// maxRaces bounds how often a write that lost its condition is decided again.
const maxRaces = 8

func conflict(err error) bool {
	var ce *tenant.ConflictError
	return errors.As(err, &ce)
}

func notFound(err error) bool {
	var nf *tenant.NotFoundError
	return errors.As(err, &nf)
}
