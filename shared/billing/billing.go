// Package billing keeps a tenant's Stripe subscription in step with its plan.
//
// The flows (upgrade, downgrade, deletion, reactivation, creation) depend on the
// Billing interface; shared/billing/stripebilling implements it on stripe-go v76 (API
// version 2023-10-16) and Disabled implements it for deployments without a Stripe key
// (stripebilling.New picks one). This package does not import stripe-go, so the
// functions that never call Stripe do not link it.
//
// Every write carries an idempotency key chosen by the caller. A flow step's key is
// Key(operation, attempt, step), for example "op_123:0:billing" and
// "op_123:0:billing-rollback": a Step Functions retry of the task, within one
// attempt, replays Stripe's first answer instead of changing billing twice, and an
// operator retry (the operation's next attempt) sends new keys, so it is not answered
// with an error Stripe stored for the old key (Stripe keeps a key's first answer for
// 24 hours, a 500 included). A method that needs more than one write sends the
// caller's key unchanged on its main write and the key plus a fixed suffix
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
	"fmt"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Billing is what the tenant flows need from a billing provider. Methods that write
// take the caller's idempotency key; calling one again with the same key and the same
// request is safe.
type Billing interface {
	// CreateSubscription creates a customer (unless req.CustomerID names one) and a
	// subscription on the plan's price. Used on tenant creation and when a
	// reactivation finds the old subscription ended.
	CreateSubscription(ctx context.Context, req CreateRequest) (Subscription, error)

	// ChangePlan moves the subscription to the plan's price now, with prorations.
	// It also drops a pending scheduled change, so ChangePlan to the current plan
	// cancels a change made by SchedulePlanChange (no other write is made then). An
	// ended subscription is not changed: the error matches ErrEnded.
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

	// CreatedBy lists the subscriptions of the customer that a CreateRequest with this
	// OperationID created, in any status: how a flow finds a subscription whose
	// create answer it never received.
	CreatedBy(ctx context.Context, customerID, operationID string) ([]Subscription, error)
}

// Key is the idempotency key of a flow step's billing write: "<operation>:<attempt>:<step>".
// attempt is the operation's Attempt (0, then one more per operator retry), so a
// re-run of the step within an attempt repeats its key and an operator retry does not.
func Key(operationID string, attempt int, step string) string {
	return fmt.Sprintf("%s:%d:%s", operationID, attempt, step)
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
	// OperationID and Attempt name the flow run that asks (empty for a tenant's
	// first subscription). They are stored as metadata operation_id and attempt on
	// the subscription, so CreatedBy finds it even when the create's answer was lost.
	OperationID string
	Attempt     int
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
	// OperationID is the metadata operation_id of a subscription a flow created.
	OperationID string
}

// Ended reports whether the subscription will never bill again: Stripe's canceled
// and incomplete_expired are final, and such a subscription cannot be resumed or
// changed; the tenant needs a new one.
func (s Subscription) Ended() bool {
	return s.Status == StatusCanceled || s.Status == StatusIncompleteExpired
}

// Subscription statuses the flows decide on (Stripe's names), and the Status of every
// Subscription returned by Disabled.
const (
	StatusCanceled          = "canceled"
	StatusIncompleteExpired = "incomplete_expired"
	StatusPaused            = "paused"
	StatusDisabled          = "disabled"
)

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
	// ErrEnded is matched by the *EndedError ChangePlan and SchedulePlanChange answer
	// for a subscription that has ended.
	ErrEnded = errors.New("billing: subscription has ended")
)
