// Package lifecycle runs the flows that move a tenant between being usable and not:
// soft deletion (ACTIVE/SUSPENDED → DELETING → DELETED with a retention window),
// suspension (ACTIVE → SUSPENDED, access restricted to read and export) and
// reactivation or win-back (SUSPENDED, or DELETED inside retention → REACTIVATING →
// ACTIVE). All three are built on the flow kit (shared/flow) and share one set of step
// handlers that switch on the operation kind: claim, access, billing, finish, their
// compensations and the release — one Lambda function per step, like plan changes.
package lifecycle

import (
	"time"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Input is the execution input of the three flows and what every step receives.
type Input struct {
	flow.Ref
	// Plan is the plan a reactivation restores.
	Plan tenant.Plan `json:"plan,omitempty"`
	// RetentionDays is how long a deletion keeps the tenant before it is purged.
	RetentionDays int `json:"retention_days,omitempty"`
	// Reason is the free text of a suspension.
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// Action and Actor are the policy rule that allowed the flow and who asked: the
	// claim asks the policy again with them. An execution started by hand without
	// them is an operator's (only operators can start one), its action the kind's
	// natural one (policyQuery).
	Action tenant.Action `json:"action,omitempty"`
	Actor  tenant.Actor  `json:"actor,omitempty"`
	// ToState is where a reactivation ends: ACTIVE ("" too), or SUSPENDED when the
	// tenant's suspension survives a win-back. The API records what the policy
	// decided; the claim refuses when the policy no longer agrees.
	ToState tenant.State `json:"to_state,omitempty"`
	// Cause is the suspension cause a suspension records on the tenant.
	Cause string `json:"suspend_cause,omitempty"`
	// Resume starts an operator retry at the compensation chain.
	Resume bool `json:"resume,omitempty"`
	// Error is set by the state machine's Catch (ResultPath $.error).
	Error *flow.CaughtError `json:"error,omitempty"`
	// AppHook is the provisioning hook's configuration, set by the reactivation
	// machine's first state from the template (absent in the other flows and in
	// executions started before the hook).
	AppHook *apphook.Config `json:"app_hook,omitempty"`
}

// HookInput is the Payload of the reactivation's provisioning hook Tasks
// (lambda:invoke.waitForTaskToken): the state, what to ask, and the task token.
type HookInput struct {
	Input     Input  `json:"input"`
	Action    string `json:"action"`
	TaskToken string `json:"task_token"`
}

// FlowRef names the operation (flow.Input).
func (h HookInput) FlowRef() flow.Ref { return h.Input.Ref }

// inputOf rebuilds the execution input of an operation (operator retries).
func inputOf(op *tenant.Operation) Input {
	return Input{Ref: flow.Ref{OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind}, Plan: op.ToPlan,
		RetentionDays: op.RetentionDays, Reason: op.Reason, RequestedBy: op.RequestedBy,
		Action: op.Action, Actor: op.Actor, ToState: op.ToState, Cause: op.SuspendCause}
}

// target is where a reactivation ends.
func (in Input) target() tenant.State {
	if in.ToState == "" {
		return tenant.Active
	}
	return in.ToState
}

// busy is the state each flow holds its tenant in. A suspension has no state of its
// own: it claims the tenant as SUSPENDED at once and finishes by releasing the claim.
func busy(kind string) tenant.State {
	switch kind {
	case tenant.KindDeletion:
		return tenant.Deleting
	case tenant.KindReactivation:
		return tenant.Reactivating
	}
	return tenant.Suspended
}

// Marks recorded before billing is called and after its compensation, so the release
// knows whether billing still needs undoing.
const (
	markBilling         = "billing"
	markBillingReverted = "billing-reverted"
	// markSubscriptionCreated: a reactivation may have created a new subscription
	// (the old one had ended); its compensation cancels what the operation created.
	markSubscriptionCreated = "subscription-created"
	// markResumed: a reactivation took back the cancellation at period end (or the
	// pause) of the subscription; its compensation cancels at period end again.
	markResumed = "billing-resumed"
)

// purgeAfter is when a tenant deleted at t with a retention of days may be purged.
func purgeAfter(t time.Time, days int) time.Time { return t.UTC().AddDate(0, 0, days) }
