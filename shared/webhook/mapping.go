package webhook

import (
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
)

func (a Action) String() string {
	return [...]string{"no_change", "suspension_started", "reactivation_started", "busy"}[a]
}

// Decide is the mapping table of docs/flows.md. A deleted or purged tenant is never
// touched: its subscription was canceled by the deletion itself, and a win-back is the
// customer's decision, not a payment's. While a deletion runs (DELETING) the event
// waits (Busy): the deletion may still roll back, and the event must then apply to
// the tenant it hands back.
func Decide(in Intent, t *tenant.Tenant) Action {
	switch t.State {
	case tenant.Deleting:
		return Busy
	case tenant.Deleted, tenant.Purged:
		return NoChange
	}
	held := t.Operation != "" || t.Attention != ""
	switch in {
	case SuspendNonpayment, SuspendCanceled:
		switch {
		case t.State == tenant.Suspended:
			return NoChange // already suspended (by an operator, by us, or a suspension running)
		case held:
			return Busy // e.g. an upgrade running: suspend once it has finished
		case t.State == tenant.Active:
			return StartSuspension
		}
	case Reactivate:
		switch {
		case t.State == tenant.Suspended && held:
			return Busy // a suspension finishing: it may be ours for nonpayment
		case t.State == tenant.Suspended && t.SuspendReason == ReasonNonpayment:
			return StartReactivation
		}
		// ACTIVE, coming back (REACTIVATING), mid plan change, or suspended for
		// another reason (an operator's, or canceled): paying does not lift it.
	}
	return NoChange
}
