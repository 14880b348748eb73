package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// StripeEventDir holds the Stripe event payloads of the webhook (one per mapped type
// and status); they are unsigned: StripeEvent fills them in and SignStripeEvent signs
// them with the local secret at send time, as Stripe does.
const StripeEventDir = "events/stripe-webhook"

// StripeEventSpec says which event to build for which tenant.
type StripeEventSpec struct {
	// Type is a fixture name without .json: "invoice.paid",
	// "customer.subscription.deleted", "customer.subscription.updated-unpaid",
	// "invoice.paid-2025" (the shape of Stripe's 2025 API versions), ... A bare
	// "customer.subscription.updated" takes Status.
	Type, Status string
	TenantID     string
	// SubscriptionID defaults to the seeded sub_<tenant id>.
	SubscriptionID string
	// ID and Created default to a fresh evt_ id and now.
	ID      string
	Created time.Time
}

// StripeEventTypes lists the fixtures of root/events/stripe-webhook.
func StripeEventTypes(root string) []string {
	files, _ := filepath.Glob(filepath.Join(root, StripeEventDir, "*.json"))
	var out []string
	for _, f := range files {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	sort.Strings(out)
	return out
}

// StripeEvent builds the payload of one event from its fixture, for spec's tenant:
// id, created, the subscription's id and metadata.tenant_id (or the invoice's
// subscription and subscription_details.metadata.tenant_id, under parent in the shape
// of Stripe's 2025 API versions).
func StripeEvent(root string, spec StripeEventSpec) ([]byte, error) {
	name, status := spec.Type, ""
	if name == "customer.subscription.updated" {
		if spec.Status == "" {
			return nil, fmt.Errorf("%s needs a status (unpaid, active, past_due, ...)", name)
		}
		// A fixture of that status ("unpaid", or "unpaid-2025" for the shape of the
		// 2025 API versions) as it is; any other status in the shape of "active".
		name += "-" + spec.Status
		if _, err := os.Stat(filepath.Join(root, StripeEventDir, name+".json")); err != nil {
			name, status = "customer.subscription.updated-active", spec.Status
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, StripeEventDir, name+".json"))
	if err != nil {
		return nil, fmt.Errorf("no fixture for %q (types: %s)", spec.Type, strings.Join(StripeEventTypes(root), ", "))
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if spec.ID == "" {
		spec.ID = fmt.Sprintf("evt_devstack_%d", time.Now().UnixNano())
	}
	if spec.Created.IsZero() {
		spec.Created = time.Now()
	}
	if spec.SubscriptionID == "" {
		spec.SubscriptionID = "sub_" + spec.TenantID
	}
	ev["id"], ev["created"] = spec.ID, spec.Created.Unix()
	data, _ := ev["data"].(map[string]any)
	obj, _ := data["object"].(map[string]any)
	if obj == nil {
		return nil, fmt.Errorf("%s: no data.object", name)
	}
	meta := map[string]any{"tenant_id": spec.TenantID}
	switch obj["object"] {
	case "subscription":
		obj["id"], obj["metadata"], obj["customer"] = spec.SubscriptionID, meta, "cus_"+spec.TenantID
		if status != "" {
			obj["status"] = status
		}
	case "invoice":
		obj["customer"] = "cus_" + spec.TenantID
		if parent, ok := obj["parent"].(map[string]any); ok {
			// API versions since 2025-03-31.basil: the subscription and its metadata
			// snapshot live under parent.subscription_details.
			parent["subscription_details"] = map[string]any{"subscription": spec.SubscriptionID, "metadata": meta}
		} else {
			obj["subscription"], obj["subscription_details"] = spec.SubscriptionID, map[string]any{"metadata": meta}
		}
	default:
		obj["customer"] = "cus_" + spec.TenantID
	}
	return json.Marshal(ev)
}

// SignStripeEvent returns the Stripe-Signature header of payload signed with secret
// at t, as Stripe computes it.
func SignStripeEvent(payload []byte, secret string, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: t}).Header
}
