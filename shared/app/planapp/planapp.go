// Package planapp wires the upgrade and downgrade functions (shared/planchange), and
// the provisioning hook's function, which the reactivation shares. It
// links no client beyond the tenants table: the steps that publish or call Stripe, and
// the sweep, get theirs from the adapters their main.go passes (eventsapp.Publisher,
// stripeapp.Billing, sfnapp.Executions).
package planapp

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/lifecycle"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Flows returns the flow-kit definitions of upgrade and downgrade.
func Flows(d *core.Deps) (upgrade, downgrade *flow.Definition) {
	return planchange.Definitions(d.Store(), d.StateMachineARN(core.UpgradeStateMachine), d.StateMachineARN(core.DowngradeStateMachine))
}

// Steps builds the plan-change step handlers of one step function: only the clients
// its Needs declare (the others stay nil and are never called by that step), from the
// adapters its main.go passes.
func Steps(logicalID string, adapters ...core.Adapter) (*core.Deps, *planchange.Steps) {
	d := core.Load(logicalID, adapters...)
	var prov planchange.Provisioner
	if d.Needs().Events {
		prov = provision.New(d.Store(), core.Provided[events.Publisher](d), d.Catalog)
	}
	var price planchange.PriceChanger
	if d.Needs().Stripe {
		price = priceChanger{core.Provided[billing.Billing](d)}
	}
	return d, planchange.NewSteps(d.Kit(), d.Store(), prov, price, d.Catalog)
}

// HookSteps builds the steps of the provisioning hook's function: the requester on the
// control-plane table, the lifecycle bus and Step Functions' task answers (adapters:
// eventsapp.Publisher, sfnapp.Tasks).
func HookSteps(logicalID string, adapters ...core.Adapter) (*core.Deps, *planchange.Steps) {
	d, steps := Steps(logicalID, adapters...)
	q := &apphook.Requester{Store: d.Store(), Tasks: core.Provided[apphook.Tasks](d), Events: core.Provided[events.Publisher](d), Log: d.Log}
	return d, steps.WithHook(q)
}

// Hook is the provisioning hook function's handler, one for every flow that asks the
// app plane: the upgrade's and downgrade's Tasks (planchange.Steps.AppHook) and the
// reactivation's (lifecycle.Steps.AppHook), told apart by the operation kind in the
// Payload's input. Both share one requester, so they ask and answer alike.
func Hook(logicalID string, adapters ...core.Adapter) (*core.Deps, func(context.Context, HookPayload) (struct{}, error)) {
	d, plan := HookSteps(logicalID, adapters...)
	life := lifecycle.NewSteps(d.Kit(), d.Store(), nil, nil, d.Catalog).WithHook(plan.Hook())
	return d, func(ctx context.Context, p HookPayload) (struct{}, error) {
		if p.ref.Kind == tenant.KindReactivation {
			var in lifecycle.HookInput
			if err := json.Unmarshal(p.raw, &in); err != nil {
				return struct{}{}, &tenant.ValidationError{Field: "payload", Reason: err.Error()}
			}
			return life.AppHook(ctx, in)
		}
		var in planchange.HookInput
		if err := json.Unmarshal(p.raw, &in); err != nil {
			return struct{}{}, &tenant.ValidationError{Field: "payload", Reason: err.Error()}
		}
		return plan.AppHook(ctx, in)
	}
}

// HookPayload is the Payload of a hook Task, kept whole until its kind is known.
type HookPayload struct {
	raw json.RawMessage
	ref flow.Ref
}

// UnmarshalJSON keeps the payload and reads the operation it is about.
func (p *HookPayload) UnmarshalJSON(b []byte) error {
	var peek struct {
		Input flow.Ref `json:"input"`
	}
	if err := json.Unmarshal(b, &peek); err != nil {
		return err
	}
	p.raw, p.ref = append(json.RawMessage(nil), b...), peek.Input
	return nil
}

// FlowRef names the operation (flow.Input).
func (p HookPayload) FlowRef() flow.Ref { return p.ref }

// Sweeper builds the scheduled period-end downgrade sweep (adapters: Stripe and Step
// Functions).
func Sweeper(logicalID string, adapters ...core.Adapter) *planchange.Sweeper {
	d := core.Load(logicalID, adapters...)
	return planchange.NewSweeper(d.Store(), core.Provided[flow.Executions](d), Periods(core.Provided[billing.Billing](d)),
		d.StateMachineARN(core.DowngradeStateMachine), d.Log)
}

// priceChanger adapts billing.Billing to what the plan-change steps need.
type priceChanger struct{ b billing.Billing }

func (p priceChanger) ChangePrice(ctx context.Context, subscriptionID string, plan tenant.Plan, key string, prorate bool) error {
	_, err := p.b.ChangePlan(ctx, billing.ChangeRequest{SubscriptionID: subscriptionID, Plan: plan, IdempotencyKey: key, NoProration: !prorate})
	return err
}

// Periods adapts billing.Billing to the billing period reads of plan changes.
func Periods(b billing.Billing) planchange.Periods { return periods{b} }

type periods struct{ b billing.Billing }

func (p periods) CurrentPeriod(ctx context.Context, subscriptionID string) (time.Time, time.Time, bool, error) {
	sub, err := p.b.Get(ctx, subscriptionID)
	if err != nil || sub.Status == billing.StatusDisabled || sub.CurrentPeriodEnd.IsZero() {
		return time.Time{}, time.Time{}, false, err
	}
	return sub.CurrentPeriodStart, sub.CurrentPeriodEnd, true, nil
}
