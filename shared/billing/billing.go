// Package billing keeps a tenant's Stripe subscription in step with its plan.
//
// The flows (upgrade, downgrade, deletion, reactivation, creation) depend on the
// Billing interface; shared/billing/stripebilling implements it on stripe-go v76 (API
// version 2023-10-16) and Disabled implements it for deployments without a Stripe key
// (stripebilling.New picks one). This package does not import stripe-go, so the
// functions that never call Stripe do not link it.
//
// Every write carries an idempotency key chosen by the caller, derived from the
// operation id and the step (for example "op_123:billing" and
// "op_123:billing-rollback"), so a Step Functions retry of a task replays the first
// answer instead of changing billing twice. A method that needs more than one write
// sends the caller's key unchanged on its main write and the key plus a fixed suffix
// (":customer", ":schedule", ":release-schedule") on the helper writes, because Stripe
// refuses one key on two different requests.
//
// Failures come back as *TransientError (retry with the same key) or *RejectedError
// (Stripe said no; retrying will not help), returned unwrapped so a Lambda handler can
// return them as they are and the state machine can match their type names.
package billing

import (
	"context"
	"errors"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Billing is what the tenant flows need from a billing provider. Methods that write
// take the caller's idempotency key; calling one again with the same key and the same
// request is safe.
type Billing interface {
	// CreateSubscription creates a customer (unless req.CustomerID names one) and a
	// subscription on the plan's price. Used on tenant creation and when a
	// reactivation finds the old subscription canceled.
	CreateSubscription(ctx context.Context, req CreateRequest) (Subscription, error)

	// ChangePlan moves the subscription to the plan's price now, with prorations.
	// It also drops a pending scheduled change, so ChangePlan to the current plan
	// cancels a change made by SchedulePlanChange (no other write is made then).
	ChangePlan(ctx context.Context, req ChangeRequest) (Subscription, error)

	// SchedulePlanChange moves the subscription to the plan's price at the end of
	// the current billing period, without prorations, through a Stripe subscription
	// schedule. The returned Subscription still shows the current price; ScheduleID
	// names the schedule and CurrentPeriodEnd is when the change takes effect.
	SchedulePlanChange(ctx context.Context, req ChangeRequest) (Subscription, error)

	// Cancel ends the subscription now, or at the end of the period when
	// req.AtPeriodEnd is set (Resume can undo that until then). Canceling a canceled
	// subscription succeeds without a write.
	Cancel(ctx context.Context, req CancelRequest) (Subscription, error)

	// Resume undoes a cancel-at-period-end or resumes a paused subscription; an
	// active subscription is returned unchanged without a write. A canceled
	// subscription cannot be resumed: the error matches ErrNotResumable and the
	// caller creates a new subscription (CreateSubscription with the CustomerID).
	Resume(ctx context.Context, subscriptionID, idempotencyKey string) (Subscription, error)

	// Get reads the subscription.
	Get(ctx context.Context, subscriptionID string) (Subscription, error)
}

// CreateRequest asks for a new subscription for a tenant.
type CreateRequest struct {
	// TenantID is stored as metadata tenant_id on the customer and the subscription,
	// which is how webhooks find the tenant of a subscription.
	TenantID string
	// Name and Email describe the customer; both are optional.
	Name  string
	Email string
	// CustomerID reuses an existing Stripe customer (reactivation); empty creates one.
	CustomerID string
	// Plan selects the price.
	Plan tenant.Plan
	// IdempotencyKey is sent on the subscription create; the customer create gets
	// IdempotencyKey + ":customer".
	IdempotencyKey string
}

// ChangeRequest asks to move a subscription to another plan.
type ChangeRequest struct {
	SubscriptionID string
	Plan           tenant.Plan
	// IdempotencyKey is sent on the subscription (or schedule) update; helper writes
	// get a suffix (":schedule", ":release-schedule").
	IdempotencyKey string
	// NoProration applies the change without prorations: for a change made at the
	// billing period boundary, where there is no used part of a period to charge.
	NoProration bool
}

// CancelRequest asks to cancel a subscription.
type CancelRequest struct {
	SubscriptionID string
	// AtPeriodEnd keeps the subscription until the end of the paid period
	// (cancel_at_period_end), during which Resume can undo the cancellation.
	// Otherwise the subscription ends now, without proration.
	AtPeriodEnd    bool
	IdempotencyKey string
}

// Subscription is the part of a Stripe subscription the control plane uses.
type Subscription struct {
	ID         string
	CustomerID string
	// Status is Stripe's status (active, past_due, unpaid, canceled, paused, ...),
	// or StatusDisabled when billing is disabled.
	Status string
	// PriceID is the price of the subscription's item; Plan is the plan configured
	// for that price, empty when the price is not in the configuration.
	PriceID string
	Plan    tenant.Plan
	// CurrentPeriodStart and CurrentPeriodEnd bound the paid period; at its end a
	// scheduled change or a cancel-at-period-end takes effect. Both move at every renewal.
	CurrentPeriodStart time.Time
	CurrentPeriodEnd   time.Time
	CancelAtPeriodEnd  bool
	// ScheduleID names the subscription schedule that holds a pending plan change.
	ScheduleID string
}

// StatusDisabled is the Status of every Subscription returned by Disabled.
const StatusDisabled = "disabled"

// Errors for requests that cannot be sent. They are caller or configuration mistakes,
// never retried.
var (
	// ErrNoIdempotencyKey means a write was asked for without an idempotency key.
	ErrNoIdempotencyKey = errors.New("billing: idempotency key required")
	// ErrNoPrice means the plan has no configured Stripe price.
	ErrNoPrice = errors.New("billing: no price configured for plan")
	// ErrNotResumable means Resume found the subscription canceled (or expired
	// before its first payment): a new subscription is needed.
	ErrNotResumable = errors.New("billing: subscription cannot be resumed")
)
