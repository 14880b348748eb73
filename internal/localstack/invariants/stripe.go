package invariants

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// subscription is one Stripe subscription as Stripe holds it, replayed from what was
// asked of Stripe (the proxy's recorded requests) and what Stripe said happened (the
// events the sequence sent): never from the tenant item.
type subscription struct {
	ID, Tenant string
	Price      string
	// Canceling is cancel_at_period_end: it bills until the period ends, then stops.
	Canceling bool
	// Dead is a canceled subscription: it never bills again and Stripe refuses to
	// change it.
	Dead bool
}

// billing says whether the subscription bills beyond the current period.
func (s *subscription) billing() bool { return !s.Dead && !s.Canceling }

func (s *subscription) String() string {
	st := "live"
	switch {
	case s.Dead:
		st = "canceled"
	case s.Canceling:
		st = "canceling at period end"
	}
	return fmt.Sprintf("%s (%s, %s)", s.ID, s.Price, st)
}

// ledger is Stripe's side of a sequence.
type ledger struct {
	subs  map[string]*subscription
	order []string // creation order
}

// of returns the tenant's subscriptions, oldest first.
func (l *ledger) of(tenantID string) []*subscription {
	var out []*subscription
	for _, id := range l.order {
		if s := l.subs[id]; s.Tenant == tenantID {
			out = append(out, s)
		}
	}
	return out
}

// current is the subscription Stripe would send the tenant's events about: its newest
// one that has not ended, else its newest.
func (l *ledger) current(tenantID string) *subscription {
	subs := l.of(tenantID)
	for i := len(subs) - 1; i >= 0; i-- {
		if !subs[i].Dead {
			return subs[i]
		}
	}
	if len(subs) > 0 {
		return subs[len(subs)-1]
	}
	return nil
}

// replayStripe folds the recorded requests, in order, into the subscriptions they
// made: a refused request changed nothing, and a repeated idempotency key is Stripe
// replaying its first answer (stripe-mock makes up a new id for a repeated create:
// that id is the first one's). killed are the subscriptions whose deletion Stripe
// announced.
func replayStripe(reqs []testenv.StripeRequest, killed map[string]bool) *ledger {
	l := &ledger{subs: map[string]*subscription{}}
	firstByKey := map[string]string{} // idempotency key → object id of its first answer
	alias := map[string]string{}
	resolve := func(id string) string {
		if a, ok := alias[id]; ok {
			return a
		}
		return id
	}
	for _, r := range reqs {
		if r.Status < 200 || r.Status > 299 {
			continue
		}
		if r.IdempotencyKey != "" {
			if first, seen := firstByKey[r.IdempotencyKey]; seen {
				create := r.Method == http.MethodPost && r.Path == "/v1/subscriptions"
				if create && r.ObjectID != "" && first != "" && r.ObjectID != first {
					alias[r.ObjectID] = first
				}
				continue
			}
			firstByKey[r.IdempotencyKey] = r.ObjectID
		}
		switch {
		case r.Method == http.MethodPost && r.Path == "/v1/subscriptions":
			if r.ObjectID == "" {
				continue
			}
			l.subs[r.ObjectID] = &subscription{ID: r.ObjectID, Tenant: r.Form.Get("metadata[tenant_id]"), Price: r.Form.Get("items[0][price]")}
			l.order = append(l.order, r.ObjectID)
		case strings.HasPrefix(r.Path, "/v1/subscriptions/"):
			rest := strings.TrimPrefix(r.Path, "/v1/subscriptions/")
			id, sub, _ := strings.Cut(rest, "/")
			s := l.subs[resolve(id)]
			if s == nil || s.Dead {
				continue
			}
			switch {
			case r.Method == http.MethodDelete && sub == "":
				s.Dead = true
			case r.Method == http.MethodPost && sub == "":
				if p := r.Form.Get("items[0][price]"); p != "" {
					s.Price = p
				}
				if c := r.Form.Get("cancel_at_period_end"); c != "" {
					s.Canceling = c == "true"
				}
			}
		}
	}
	for id := range killed {
		if s := l.subs[resolve(id)]; s != nil {
			s.Dead = true
		}
	}
	return l
}

// sentEvent is a Stripe event the sequence delivered (or still delivers: Stripe
// retries an answer other than 2xx).
type sentEvent struct {
	Number  int
	ID      string
	Kind    Kind
	Tenant  int
	Sub     string
	Created time.Time
	Payload []byte
	// Answers are the webhook's answers, one per delivery.
	Answers []answer
	// Pending is true while Stripe still has to deliver it again.
	Pending bool
}

// accepted reports whether the last delivery was answered 2xx.
func (e *sentEvent) accepted() bool {
	return len(e.Answers) > 0 && e.Answers[len(e.Answers)-1].Status/100 == 2
}

// outcome is what the last accepted delivery said it did ("" otherwise).
func (e *sentEvent) outcome() string {
	if !e.accepted() {
		return ""
	}
	return e.Answers[len(e.Answers)-1].field("outcome")
}

// before orders events as Stripe's created time, then id.
func (e *sentEvent) before(o *sentEvent) bool {
	return e.Created.Before(o.Created) || e.Created.Equal(o.Created) && e.ID < o.ID
}

// payload builds an event of kind about sub, for tenant id.
func eventPayload(root string, k Kind, id, tenantID, sub string, created time.Time) ([]byte, error) {
	spec := stack.StripeEventSpec{TenantID: tenantID, SubscriptionID: sub, ID: id, Created: created}
	switch k {
	case SubUnpaid:
		spec.Type, spec.Status = "customer.subscription.updated", "unpaid"
	case SubActive:
		spec.Type, spec.Status = "customer.subscription.updated", "active"
	case SubDeleted:
		spec.Type = "customer.subscription.deleted"
	case InvoicePaid:
		spec.Type = "invoice.paid"
	default:
		return nil, fmt.Errorf("%s is not a Stripe event", k)
	}
	return stack.StripeEvent(root, spec)
}

// canceledStub makes the Stripe proxy answer for a subscription Stripe canceled as
// Stripe does: a read shows it canceled (on the price it had), and an update or a
// resume is refused. stripe-mock keeps no state, so without this a canceled
// subscription would look live to the flows.
func canceledStub(ctx context.Context, s *stack.Stack, sub *subscription) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.StripeMock.URL+"/v1/subscriptions/"+sub.ID, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+stack.StripeTestKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("stripe-mock: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("stripe-mock subscription %s: %w", raw, err)
	}
	now := time.Now().Unix()
	doc["id"], doc["status"], doc["cancel_at_period_end"] = sub.ID, "canceled", false
	doc["canceled_at"], doc["ended_at"], doc["schedule"] = now, now, nil
	doc["metadata"] = map[string]any{"tenant_id": sub.Tenant}
	if items, _ := doc["items"].(map[string]any); items != nil {
		if data, _ := items["data"].([]any); len(data) > 0 {
			if item, _ := data[0].(map[string]any); item != nil {
				if price, _ := item["price"].(map[string]any); price != nil {
					price["id"] = sub.Price
				}
				item["subscription"] = sub.ID
			}
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	const always = 1 << 30
	s.Stripe.StubNext(always, "GET /v1/subscriptions/"+sub.ID, http.StatusOK, string(body))
	s.Stripe.FailNext(always, "POST /v1/subscriptions/"+sub.ID, http.StatusBadRequest, "invalid_request_error")
	return nil
}

// lastWord is the newest status event of sub among those sent (nil when none).
func lastWord(events []*sentEvent, sub string) *sentEvent {
	var last *sentEvent
	for _, e := range events {
		if e.Sub != sub || !slices.Contains([]Kind{SubUnpaid, SubActive, InvoicePaid, SubDeleted}, e.Kind) {
			continue
		}
		if last == nil || last.before(e) {
			last = e
		}
	}
	return last
}
