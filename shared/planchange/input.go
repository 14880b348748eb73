// Package planchange runs upgrades and downgrades on the flow kit (shared/flow): the
// API-side Starter does the synchronous pre-checks and starts the Step Functions
// execution; Steps holds one handler per state of statemachines/upgrade.asl.json and
// downgrade.asl.json; Sweeper starts period-end downgrades when they are due. Each step
// is correct when Step Functions runs it again after its answer was lost, and each
// forward step has a compensating step that undoes only what the records say this
// operation did.
package planchange

import (
	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Input is the execution input and what every step receives.
type Input struct {
	flow.Ref
	FromPlan    tenant.Plan `json:"from_plan"`
	ToPlan      tenant.Plan `json:"to_plan"`
	AtPeriodEnd bool        `json:"at_period_end,omitempty"`
	RequestedBy string      `json:"requested_by,omitempty"`
	// Actor is the class of caller who asked (the lifecycle policy's); the claim asks
	// the policy again for it. An execution started by hand without it is an
	// operator's.
	Actor tenant.Actor `json:"actor,omitempty"`
	// Resume starts an operator retry at the compensation chain.
	Resume bool `json:"resume,omitempty"`
	// Error is set by the state machine's Catch (ResultPath $.error).
	Error *flow.CaughtError `json:"error,omitempty"`
	// AppHook is the provisioning hook's configuration, set by the state machine's
	// first state from the template (absent in executions started before the hook).
	AppHook *apphook.Config `json:"app_hook,omitempty"`
}

// HookInput is the Payload of the provisioning hook's waiting Tasks
// (lambda:invoke.waitForTaskToken): the state, what to ask, and the task token.
type HookInput struct {
	Input     Input  `json:"input"`
	Action    string `json:"action"`
	TaskToken string `json:"task_token"`
}

// FlowRef names the operation (flow.Input).
func (h HookInput) FlowRef() flow.Ref { return h.Input.Ref }

// inputOf rebuilds the execution input of an operation (sweep starts, retries).
func inputOf(op *tenant.Operation) Input {
	return Input{Ref: flow.Ref{OperationID: op.ID, TenantID: op.TenantID, Kind: op.Kind}, FromPlan: op.FromPlan, ToPlan: op.ToPlan,
		AtPeriodEnd: op.AtPeriodEnd, RequestedBy: op.RequestedBy, Actor: op.Actor}
}

// action is the policy action the flow of kind runs: a period-end downgrade that has
// come due runs as a downgrade, judged on the usage reported by then.
func action(kind string) tenant.Action {
	if kind == tenant.KindDowngrade {
		return tenant.ActDowngrade
	}
	return tenant.ActUpgrade
}

// busyState is the state a plan change holds its tenant in.
func busyState(kind string) tenant.State {
	if kind == tenant.KindDowngrade {
		return tenant.Downgrading
	}
	return tenant.Upgrading
}

// Marks recorded on plan-change operations before billing is called and after it was
// reverted, so the release knows whether billing still needs undoing.
const (
	markBilling         = "billing"
	markBillingReverted = "billing-reverted"
)
