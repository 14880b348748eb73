package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The proxy's model of what Stripe remembers and stripe-mock does not: the first
// answer of each idempotency key, and the state of the subscriptions the flows write.
// It keeps the flows honest about the three Stripe behaviours their correctness
// rests on: a key replays its first answer (even an error) with the same parameters
// and refuses other ones; a canceled subscription stays canceled and refuses price
// changes; and a subscription created while its answer was lost still exists and can
// be listed by its customer.

// SubscriptionState is what the proxy knows of one subscription beyond stripe-mock's
// fixture. Reads of the subscription (GET, and the list of its customer) show it.
type SubscriptionState struct {
	ID       string `json:"id"`
	Customer string `json:"customer,omitempty"`
	// Status is Stripe's status; "" leaves stripe-mock's ("active").
	Status string `json:"status,omitempty"`
	// Price is the price of the subscription's single item; "" leaves stripe-mock's.
	Price             string            `json:"price,omitempty"`
	CancelAtPeriodEnd bool              `json:"cancel_at_period_end"`
	Metadata          map[string]string `json:"metadata,omitempty"`
}

// Ended reports a status after which the subscription never bills again.
func (s SubscriptionState) Ended() bool {
	return s.Status == "canceled" || s.Status == "incomplete_expired"
}

// SetSubscription makes the proxy's Stripe hold the subscription in state st, as if
// Stripe had put it there itself (a period that ran out, dunning that gave up).
func (s *Stripe) SetSubscription(st SubscriptionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subscription(st.ID)
	st.Metadata = cloneMap(st.Metadata)
	*s.subs[st.ID] = st
}

// Subscription returns what the proxy knows of subscription id.
func (s *Stripe) Subscription(id string) (SubscriptionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.subs[id]
	if !ok {
		return SubscriptionState{}, false
	}
	out := *st
	out.Metadata = cloneMap(st.Metadata)
	return out, true
}

// subscription returns the state of id, adding an empty one; s.mu is held.
func (s *Stripe) subscription(id string) *SubscriptionState {
	st, ok := s.subs[id]
	if !ok {
		st = &SubscriptionState{ID: id}
		s.subs[id] = st
		s.order = append(s.order, id)
	}
	return st
}

// keyed is the first answer Stripe gave to one idempotency key.
type keyed struct {
	method, path, form string
	status             int
	body               []byte
	objectID           string
}

// stripeAnswer is what the proxy answers one request with.
type stripeAnswer struct {
	status int // 0 drops the connection
	body   []byte
	// upstream: stripe-mock answered (its 400s are parameter validation, which
	// Stripe does not store under the key).
	upstream bool
	// replayed: the answer is the key's stored first answer.
	replayed bool
	// applied: Stripe carried the write out.
	applied  bool
	objectID string
}

func stripeError(status int, typ, code, msg string) *stripeAnswer {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return &stripeAnswer{status: status, body: b}
}

// idempotent looks the request's key up: the stored answer (or Stripe's refusal of
// the key with other parameters), a 409 while another request holds the key, or nil
// when the request is to run, in which case the key is held until release.
func (s *Stripe) idempotent(rec StripeRequest) (ans *stripeAnswer, held bool) {
	key := rec.IdempotencyKey
	if key == "" || rec.Method == http.MethodGet {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.keys[key]; ok {
		if c.method != rec.Method || c.path != rec.Path || c.form != rec.Form.Encode() {
			return stripeError(http.StatusBadRequest, "idempotency_error", "",
				fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key)), false
		}
		return &stripeAnswer{status: c.status, body: c.body, replayed: true, objectID: c.objectID}, false
	}
	if s.inflight[key] {
		return stripeError(http.StatusConflict, "idempotency_error", "idempotency_key_in_use",
			"There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): "+key+". Please try again later."), false
	}
	s.inflight[key] = true
	return nil, true
}

// settle stores the answer under the request's key when Stripe would (an answer its
// endpoint produced: not a dropped connection, a 409, 429 or 503 refused before it ran,
// or a parameter validation error), and releases the key; s.mu is held.
func (s *Stripe) settle(rec StripeRequest, ans *stripeAnswer, held bool) {
	key := rec.IdempotencyKey
	if held {
		delete(s.inflight, key)
	}
	if key == "" || rec.Method == http.MethodGet || ans.replayed {
		return
	}
	switch {
	case ans.status == 0, ans.status == http.StatusConflict, ans.status == http.StatusTooManyRequests,
		ans.status == http.StatusServiceUnavailable, ans.status == http.StatusBadRequest && ans.upstream:
		return
	}
	if _, ok := s.keys[key]; !ok {
		s.keys[key] = &keyed{method: rec.Method, path: rec.Path, form: rec.Form.Encode(), status: ans.status, body: ans.body, objectID: ans.objectID}
	}
}

// refuse answers what Stripe refuses because of a subscription's state: any change
// but metadata to a canceled subscription.
func (s *Stripe) refuse(rec StripeRequest) *stripeAnswer {
	id := subscriptionID(rec.Path)
	if id == "" || rec.Method != http.MethodPost {
		return nil
	}
	s.mu.Lock()
	st, ok := s.subs[id]
	ended := ok && st.Ended()
	s.mu.Unlock()
	if !ended {
		return nil
	}
	for k := range rec.Form {
		if !strings.HasPrefix(k, "metadata[") && !strings.HasPrefix(k, "cancellation_details[") && !strings.HasPrefix(k, "expand[") {
			return stripeError(http.StatusBadRequest, "invalid_request_error", "",
				"A canceled subscription can only update its cancellation_details and metadata.")
		}
	}
	return nil
}

// model applies a successful answer of stripe-mock to the subscriptions' state and
// shows that state in the answer: a create records the new subscription (active, on
// its price, with its customer and metadata), an update its price,
// cancel_at_period_end and metadata, a cancel ends it, a resume makes it active;
// reads show what is known, and the list answers from the known subscriptions.
func (s *Stripe) model(rec StripeRequest, ans *stripeAnswer) {
	var doc map[string]any
	if json.Unmarshal(ans.body, &doc) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	write := rec.Method != http.MethodGet
	id, resume := subscriptionID(rec.Path), ""
	if r, ok := strings.CutSuffix(strings.TrimPrefix(rec.Path, "/v1/subscriptions/"), "/resume"); ok && !strings.Contains(r, "/") {
		resume = r
	}
	switch {
	case rec.Path == "/v1/subscriptions" && rec.Method == http.MethodPost:
		newID, _ := doc["id"].(string)
		if newID == "" {
			return
		}
		st := s.subscription(newID)
		*st = SubscriptionState{ID: newID, Customer: rec.Form.Get("customer"), Status: "active",
			Price: rec.Form.Get("items[0][price]"), Metadata: metadataOf(rec.Form, nil)}
		overlay(doc, st)
	case rec.Path == "/v1/subscriptions" && rec.Method == http.MethodGet:
		s.list(doc, rec.Query)
	case resume != "":
		st := s.subscription(resume)
		st.Status, st.CancelAtPeriodEnd = "active", false
		overlay(doc, st)
	case id != "" && rec.Method == http.MethodPost:
		st := s.subscription(id)
		if p := rec.Form.Get("items[0][price]"); p != "" {
			st.Price = p
		}
		if c := rec.Form.Get("cancel_at_period_end"); c != "" {
			st.CancelAtPeriodEnd = c == "true"
		}
		st.Metadata = metadataOf(rec.Form, st.Metadata)
		overlay(doc, st)
	case id != "" && rec.Method == http.MethodDelete:
		st := s.subscription(id)
		st.Status, st.CancelAtPeriodEnd = "canceled", false
		overlay(doc, st)
	case id != "" && rec.Method == http.MethodGet:
		if st, ok := s.subs[id]; ok {
			overlay(doc, st)
		}
	default:
		ans.applied = write
		ans.objectID, _ = doc["id"].(string)
		return // nothing modeled: the answer stays stripe-mock's
	}
	ans.applied = write
	ans.objectID, _ = doc["id"].(string)
	ans.body, _ = json.Marshal(doc)
}

// list fills a list answer with the known subscriptions, newest first, filtered as
// Stripe filters: by customer, and by status, where none means every status but
// canceled and "all" means every one. stripe-mock's first item is the template of
// each entry.
func (s *Stripe) list(doc map[string]any, q url.Values) {
	data, _ := doc["data"].([]any)
	if len(data) == 0 {
		return
	}
	tmpl, _ := json.Marshal(data[0])
	var out []any
	for _, id := range slices.Backward(s.order) {
		st := s.subs[id]
		if c := q.Get("customer"); c != "" && st.Customer != c {
			continue
		}
		status := st.Status
		if status == "" {
			status = "active"
		}
		switch want := q.Get("status"); want {
		case "all":
		case "":
			if status == "canceled" {
				continue
			}
		case "ended":
			if !st.Ended() {
				continue
			}
		default:
			if status != want {
				continue
			}
		}
		var item map[string]any
		_ = json.Unmarshal(tmpl, &item)
		overlay(item, st)
		out = append(out, item)
	}
	if out == nil {
		out = []any{}
	}
	doc["data"], doc["has_more"] = out, false
}

// overlay writes what is known of a subscription into its JSON.
func overlay(doc map[string]any, st *SubscriptionState) {
	doc["id"] = st.ID
	if st.Customer != "" {
		doc["customer"] = st.Customer
	}
	if st.Status != "" {
		doc["status"] = st.Status
	}
	doc["cancel_at_period_end"] = st.CancelAtPeriodEnd
	if st.Metadata != nil {
		doc["metadata"] = st.Metadata
	}
	if st.Price == "" {
		return
	}
	items, _ := doc["items"].(map[string]any)
	data, _ := items["data"].([]any)
	if len(data) == 0 {
		return
	}
	item, _ := data[0].(map[string]any)
	price, _ := item["price"].(map[string]any)
	if price == nil {
		price = map[string]any{"object": "price"}
		item["price"] = price
	}
	price["id"] = st.Price
}

// metadataOf applies the form's metadata[...] fields to cur, as Stripe does (an empty
// value removes the key); it returns cur unchanged when the form sets none.
func metadataOf(form url.Values, cur map[string]string) map[string]string {
	out := cloneMap(cur)
	for k, v := range form {
		name, ok := strings.CutPrefix(k, "metadata[")
		if !ok || !strings.HasSuffix(name, "]") || len(v) == 0 {
			continue
		}
		name = strings.TrimSuffix(name, "]")
		if out == nil {
			out = map[string]string{}
		}
		if v[0] == "" {
			delete(out, name)
		} else {
			out[name] = v[0]
		}
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ReplayBilling folds recorded requests, in order, into the state of every
// subscription they touched, starting from known (the subscriptions that existed
// before, by id): a create adds one (its id from the answer; active, on its price,
// with its customer and metadata), an update sets the price, cancel_at_period_end and
// metadata it carried, a cancel ends the subscription, a resume makes it active. Only
// requests Stripe carried out count: refusals, injected errors and replays of a key
// change nothing, and a write whose answer was lost counts.
func ReplayBilling(reqs []StripeRequest, known map[string]SubscriptionState) map[string]SubscriptionState {
	out := make(map[string]SubscriptionState, len(known))
	for id, st := range known {
		st.ID = id
		out[id] = st
	}
	for _, r := range reqs {
		if !r.Applied {
			continue
		}
		if r.Path == "/v1/subscriptions" && r.Method == http.MethodPost {
			out[r.ObjectID] = SubscriptionState{ID: r.ObjectID, Customer: r.Form.Get("customer"), Status: "active",
				Price: r.Form.Get("items[0][price]"), Metadata: metadataOf(r.Form, nil)}
			continue
		}
		if id, ok := strings.CutSuffix(strings.TrimPrefix(r.Path, "/v1/subscriptions/"), "/resume"); ok && r.Method == http.MethodPost && !strings.Contains(id, "/") {
			st := out[id]
			st.ID, st.Status, st.CancelAtPeriodEnd = id, "active", false
			out[id] = st
			continue
		}
		id := subscriptionID(r.Path)
		if id == "" {
			continue
		}
		st := out[id]
		st.ID = id
		switch r.Method {
		case http.MethodPost:
			if p := r.Form.Get("items[0][price]"); p != "" {
				st.Price = p
			}
			if c := r.Form.Get("cancel_at_period_end"); c != "" {
				st.CancelAtPeriodEnd = c == "true"
			}
			st.Metadata = metadataOf(r.Form, st.Metadata)
		case http.MethodDelete:
			st.Status, st.CancelAtPeriodEnd = "canceled", false
		}
		out[id] = st
	}
	return out
}
