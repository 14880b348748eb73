package webhook

import (
	"encoding/json"
	"fmt"

	"github.com/stripe/stripe-go/v76"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Event types the handler maps; every other type is answered 200 and ignored.
const (
	SubscriptionUpdated = "customer.subscription.updated"
	SubscriptionDeleted = "customer.subscription.deleted"
	InvoicePaid         = "invoice.paid"
)

// Reasons a webhook suspends a tenant for: the suspension causes of the lifecycle
// policy, which the starter maps back to Stripe's actions (so they are one value).
const (
	ReasonNonpayment = tenant.CauseNonpayment
	ReasonCanceled   = tenant.CauseCanceled
)

// Fact is what one Stripe event says about one subscription.
type Fact struct {
	EventID        string
	Type           string
	Created        int64
	SubscriptionID string
	// Status is the subscription's status (subscription events only).
	Status string
	// TenantID is the subscription's metadata tenant_id (an invoice carries a snapshot
	// of it, see ReadFact).
	TenantID string
}

// InputError is a signed event whose object cannot be read as its type says.
type InputError struct{ Reason string }

func (e *InputError) Error() string { return "webhook event: " + e.Reason }

// ReadFact reads the subscription fact of a verified event from its raw object, never
// through stripe-go's structs: the endpoint's API version is chosen in the Stripe
// dashboard, not by stripe-go's pin (2023-10-16), and fields moved between versions.
// What is read, and where each version puts it:
//   - subscription events: id, status and metadata.tenant_id, the same in every
//     version (a subscription's billing period moved to its items in
//     2025-03-31.basil; it is not read here);
//   - invoices of the versions before 2025-03-31.basil (2023-10-16 included):
//     subscription (an id, or the object when expanded) and the metadata snapshot
//     subscription_details.metadata;
//   - invoices since 2025-03-31.basil: both only under
//     parent.subscription_details (subscription and metadata); an invoice whose
//     parent is not a subscription (a quote, a one-off invoice) names none.
//
// Both invoice shapes are tried, so an endpoint may move between versions at any
// time. An object that names no subscription or tenant gives an empty one: the
// handler answers no_tenant_id.
func ReadFact(ev stripe.Event) (Fact, error) {
	f := Fact{EventID: ev.ID, Type: string(ev.Type), Created: ev.Created}
	if ev.ID == "" || ev.Data == nil || len(ev.Data.Raw) == 0 {
		return f, &InputError{Reason: "event without id or data.object"}
	}
	switch f.Type {
	case SubscriptionUpdated, SubscriptionDeleted:
		var sub struct {
			ID       string            `json:"id"`
			Status   string            `json:"status"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal(ev.Data.Raw, &sub); err != nil || sub.ID == "" {
			return f, &InputError{Reason: fmt.Sprintf("%s: data.object is not a subscription", f.Type)}
		}
		f.SubscriptionID, f.Status, f.TenantID = sub.ID, sub.Status, sub.Metadata["tenant_id"]
	case InvoicePaid:
		type snapshot struct {
			Metadata map[string]string `json:"metadata"`
		}
		var inv struct {
			// Before 2025-03-31.basil.
			Subscription        json.RawMessage `json:"subscription"`
			SubscriptionDetails *snapshot       `json:"subscription_details"`
			// Since 2025-03-31.basil.
			Parent *struct {
				SubscriptionDetails *struct {
					Subscription json.RawMessage `json:"subscription"`
					snapshot
				} `json:"subscription_details"`
			} `json:"parent"`
		}
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
			return f, &InputError{Reason: "invoice.paid: data.object is not an invoice"}
		}
		sub, snap := inv.Subscription, inv.SubscriptionDetails
		if p := inv.Parent; p != nil && p.SubscriptionDetails != nil {
			sub, snap = p.SubscriptionDetails.Subscription, &p.SubscriptionDetails.snapshot
		}
		f.SubscriptionID, f.TenantID = subscriptionOf(sub)
		if snap != nil && snap.Metadata["tenant_id"] != "" {
			f.TenantID = snap.Metadata["tenant_id"]
		}
	}
	return f, nil
}

// subscriptionOf reads an invoice's subscription: an id, or the object when the event
// was expanded (then its metadata's tenant_id too; the invoice's snapshot of the
// metadata, taken when it was finalized, wins over it).
func subscriptionOf(raw json.RawMessage) (id, tenantID string) {
	if json.Unmarshal(raw, &id) == nil {
		return id, ""
	}
	var obj struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return "", ""
	}
	return obj.ID, obj.Metadata["tenant_id"]
}
