package webhook

import (
	"errors"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Intent is what a fact asks of its tenant.
type Intent int

const (
	// None: the event carries nothing the control plane acts on.
	None Intent = iota
	// SuspendNonpayment: the subscription is unpaid (Stripe gave up retrying).
	SuspendNonpayment
	// SuspendCanceled: the subscription was deleted; final in Stripe.
	SuspendCanceled
	// Reactivate: paid again (invoice.paid, or status back to active).
	Reactivate
)

func (i Intent) String() string {
	return [...]string{"none", "suspend_nonpayment", "suspend_canceled", "reactivate"}[i]
}

// Terminal intents apply whatever the delivery order (a deleted subscription never
// comes back) and make every other event of their subscription a no-op.
func (i Intent) Terminal() bool { return i == SuspendCanceled }

// IntentOf maps a fact. past_due and incomplete are None on purpose: Stripe is still
// retrying the payment (smart retries, dunning e-mails), so cutting the tenant off
// would punish a card that is about to work; the subscription becomes unpaid (or is
// deleted) when Stripe gives up, per the dashboard's dunning settings, and that event
// suspends. Status canceled on an update is the deletion seen through the update.
func IntentOf(f Fact) Intent {
	switch f.Type {
	case SubscriptionDeleted:
		return SuspendCanceled
	case InvoicePaid:
		return Reactivate
	case SubscriptionUpdated:
		switch f.Status {
		case "unpaid":
			return SuspendNonpayment
		case "canceled":
			return SuspendCanceled
		case "active":
			return Reactivate
		}
	}
	return None
}

// Action is what the handler does for an intent, given the tenant.
type Action int

const (
	// NoChange: the tenant already is where the intent would put it, or the intent
	// does not apply to its state (documented per case in Decide).
	NoChange Action = iota
	// StartSuspension starts the suspension flow.
	StartSuspension
	// StartReactivation starts the reactivation flow onto the tenant's plan.
	StartReactivation
	// Busy: another operation holds the tenant (or it waits for an operator) and the
	// intent may apply once it is free: answer 5xx so Stripe retries.
	Busy
	// ClearCause removes the nonpayment cause a DELETED tenant kept from its
	// suspension, in one conditional write; the tenant stays DELETED.
	ClearCause
)

func (a Action) String() string {
	return [...]string{"no_change", "suspension_started", "reactivation_started", "busy", "suspension_cause_cleared"}[a]
}

// Decide asks the lifecycle policy (tenant.Decide, actor Stripe) what an intent does
// to the tenant, and turns its answer into the webhook's action:
//   - allowed: start the flow (suspension, or reactivation onto the tenant's plan),
//     or, for a payment that meets a DELETED tenant still carrying a nonpayment
//     suspension, clear that cause (stripe_cure_nonpayment);
//   - refused because another operation holds the tenant, or one waits for an
//     operator, while the intent may apply once it is free: Busy (503, Stripe
//     retries);
//   - a tenant waiting for an operator (attention) is Busy for every intent, even one
//     its state would refuse: what the operator does decides where the tenant is (the
//     retry of a lost suspension suspends it; a resolve may come with a change by
//     hand), and the newer event must apply on top of that, not be judged before it
//     and dropped;
//   - any other refusal is final for this event: NoChange. An ACTIVE tenant needs no
//     lift; a SUSPENDED one needs no second suspension (its cause stays: an
//     operator's suspension is not turned into one a payment lifts); a payment lifts
//     only a nonpayment suspension (cause_liftable); a DELETED or PURGED tenant is
//     never moved — its subscription was canceled by the deletion, and a win-back is
//     the customer's decision, not a payment's. The one exception is the cure above:
//     the payment settles the debt a DELETED tenant's suspension was for, so its own
//     win-back later comes back ACTIVE rather than SUSPENDED for a paid debt; any
//     other cause stays.
func Decide(in Intent, t *tenant.Tenant) Action {
	var act tenant.Action
	start := StartSuspension
	switch in {
	case SuspendNonpayment:
		act = tenant.ActStripeSuspendNonpayment
	case SuspendCanceled:
		act = tenant.ActStripeSuspendCanceled
	case Reactivate:
		act, start = tenant.ActStripeLiftNonpayment, StartReactivation
		if t.State == tenant.Deleted {
			act, start = tenant.ActStripeCureNonpayment, ClearCause
		}
	default:
		return NoChange
	}
	if t.Attention != "" && t.State != tenant.Deleted && t.State != tenant.Purged {
		return Busy
	}
	_, err := tenant.Decide(tenant.Query{Action: act, Actor: tenant.ActorStripe, Tenant: t, Plan: t.Plan})
	var ce *tenant.ConflictError
	switch {
	case err == nil:
		return start
	case errors.As(err, &ce):
		return Busy
	}
	return NoChange
}
