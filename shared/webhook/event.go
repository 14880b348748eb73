package webhook

import (
	"encoding/json"
	"fmt"

	"github.com/stripe/stripe-go/v76"
)

// Event types the handler maps; every other type is answered 200 and ignored.
const (
	SubscriptionUpdated = "customer.subscription.updated"
	SubscriptionDeleted = "customer.subscription.deleted"
	InvoicePaid         = "invoice.paid"
)

// Reasons a webhook suspends a tenant for (tenant.SuspendReason).
const (
	ReasonNonpayment = "nonpayment"
	ReasonCanceled   = "canceled"
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
	// of it in subscription_details.metadata).
	TenantID string
}

// InputError is a signed event whose object cannot be read as its type says.
type InputError struct{ Reason string }

func (e *InputError) Error() string { return "webhook event: " + e.Reason }

// ReadFact reads the subscription fact of a verified event. Only the fields needed
// are decoded, so objects of other API versions read the same.
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
		var inv struct {
			Subscription        json.RawMessage `json:"subscription"`
			SubscriptionDetails *struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"subscription_details"`
		}
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
			return f, &InputError{Reason: "invoice.paid: data.object is not an invoice"}
		}
		// subscription is an id, or the object when the event was expanded.
		var id string
		if json.Unmarshal(inv.Subscription, &id) != nil {
			var obj struct {
				ID       string            `json:"id"`
				Metadata map[string]string `json:"metadata"`
			}
			if json.Unmarshal(inv.Subscription, &obj) == nil {
				id, f.TenantID = obj.ID, obj.Metadata["tenant_id"]
			}
		}
		f.SubscriptionID = id
		if inv.SubscriptionDetails != nil && inv.SubscriptionDetails.Metadata["tenant_id"] != "" {
			f.TenantID = inv.SubscriptionDetails.Metadata["tenant_id"]
		}
	}
	return f, nil
}
