// Package stripebilling is the billing.Billing adapter on stripe-go v76 (API version
// 2023-10-16). It calls only the stripe-go resource packages it uses (customer,
// subscription, subscriptionschedule) on one backend, never stripe-go's client
// package, which links every resource of the Stripe API. Only the wiring of the
// functions that call Stripe imports it.
package stripebilling

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/subscription"
	"github.com/stripe/stripe-go/v76/subscriptionschedule"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Suffixes of the idempotency keys of helper writes (see the billing package doc).
const (
	suffixCustomer        = ":customer"
	suffixSchedule        = ":schedule"
	suffixReleaseSchedule = ":release-schedule"
	maxIdempotencyKeyLen  = 255 // Stripe's limit
	metadataTenantID      = "tenant_id"
	metadataOperationID   = "operation_id"
	metadataAttempt       = "attempt"
)

// Stripe is the Billing adapter on stripe-go v76. It uses its own resource clients on
// its own backend (never the stripe package globals), so one process can talk to
// stripe-mock in tests and to Stripe in production, and concurrent instances do not
// interfere.
type Stripe struct {
	customers     customer.Client
	subscriptions subscription.Client
	schedules     subscriptionschedule.Client
	prices        billing.PriceIDs
}

var _ billing.Billing = (*Stripe)(nil)

// New returns the Stripe adapter, or billing.Disabled (and logs so) when cfg.APIKey is
// empty. With a key, every plan must have a price id: a deployment fails at start
// rather than on the first upgrade.
func New(cfg billing.Config) (billing.Billing, error) {
	if cfg.APIKey == "" {
		logger := cfg.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Info("billing disabled: no Stripe API key configured")
		return billing.NewDisabled(logger), nil
	}
	return NewStripe(cfg)
}

// NewStripe builds the adapter. It fails when the key is empty or a plan has no price.
func NewStripe(cfg billing.Config) (*Stripe, error) {
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("billing: Stripe API key is empty")
	}
	if err := cfg.PriceIDs.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	backendCfg := &stripe.BackendConfig{
		HTTPClient:    httpClient,
		LeveledLogger: stripeLogger{logger},
		// No retries inside the Lambda: the Step Functions Retry (backoff with full
		// jitter, visible in the execution history) is the retry layer. stripe-go's
		// own retries would multiply with it, spend the task's timeout sleeping and
		// hide failures. The caller's idempotency key makes that outer retry safe.
		MaxNetworkRetries: stripe.Int64(0),
	}
	if cfg.BaseURL != "" {
		backendCfg.URL = stripe.String(cfg.BaseURL)
	}
	// Every call the adapter makes goes to the API backend (as client.New would give
	// these resources), with the key on each call.
	api := stripe.GetBackendWithConfig(stripe.APIBackend, backendCfg)
	prices := make(billing.PriceIDs, len(cfg.PriceIDs))
	for k, v := range cfg.PriceIDs {
		prices[k] = v
	}
	return &Stripe{
		customers:     customer.Client{B: api, Key: cfg.APIKey},
		subscriptions: subscription.Client{B: api, Key: cfg.APIKey},
		schedules:     subscriptionschedule.Client{B: api, Key: cfg.APIKey},
		prices:        prices,
	}, nil
}

// CreateSubscription creates the customer (key + ":customer") unless req.CustomerID is
// set, then the subscription on the plan's price (the caller's key). Both carry
// metadata tenant_id; the subscription also carries operation_id and attempt when the
// request names an operation, which is what CreatedBy looks for. Stripe's default
// payment behaviour applies: a paid first invoice of a customer without a payment
// method leaves the subscription "incomplete".
func (s *Stripe) CreateSubscription(ctx context.Context, req billing.CreateRequest) (billing.Subscription, error) {
	if req.TenantID == "" {
		return billing.Subscription{}, fmt.Errorf("billing: create subscription: tenant id is empty")
	}
	op := "create subscription for tenant " + req.TenantID
	if err := checkKey(op, req.IdempotencyKey, suffixCustomer); err != nil {
		return billing.Subscription{}, err
	}
	price, err := s.price(op, req.Plan)
	if err != nil {
		return billing.Subscription{}, err
	}
	customerID := req.CustomerID
	if customerID == "" {
		p := &stripe.CustomerParams{Metadata: map[string]string{metadataTenantID: req.TenantID}}
		if req.Name != "" {
			p.Name = stripe.String(req.Name)
		}
		if req.Email != "" {
			p.Email = stripe.String(req.Email)
		}
		p.Context = ctx
		p.SetIdempotencyKey(req.IdempotencyKey + suffixCustomer)
		c, err := s.customers.New(p)
		if err != nil {
			return billing.Subscription{}, classify("create customer for tenant "+req.TenantID, err)
		}
		customerID = c.ID
	}
	p := &stripe.SubscriptionParams{
		Customer: stripe.String(customerID),
		Items:    []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}},
		Metadata: map[string]string{metadataTenantID: req.TenantID},
	}
	if req.OperationID != "" {
		p.Metadata[metadataOperationID] = req.OperationID
		p.Metadata[metadataAttempt] = strconv.Itoa(req.Attempt)
	}
	p.Context = ctx
	p.SetIdempotencyKey(req.IdempotencyKey)
	sub, err := s.subscriptions.New(p)
	if err != nil {
		return billing.Subscription{}, classify(op, err)
	}
	out := s.convert(sub)
	if out.CustomerID == "" {
		out.CustomerID = customerID
	}
	return out, nil
}

// ChangePlan reads the subscription, releases a pending schedule (key +
// ":release-schedule"), and, unless the item already has the plan's price, updates
// the item's price with proration_behavior=create_prorations (the caller's key).
// Skipping the no-op update makes a rollback of a change that never happened free. An
// ended subscription is left alone (*billing.EndedError): Stripe refuses the update,
// and a matching price on it would not mean the tenant is billed.
func (s *Stripe) ChangePlan(ctx context.Context, req billing.ChangeRequest) (billing.Subscription, error) {
	op := "change plan of subscription " + req.SubscriptionID
	if err := checkKey(op, req.IdempotencyKey, suffixReleaseSchedule); err != nil {
		return billing.Subscription{}, err
	}
	price, err := s.price(op, req.Plan)
	if err != nil {
		return billing.Subscription{}, err
	}
	sub, item, err := s.getWithItem(ctx, req.SubscriptionID)
	if err != nil {
		return billing.Subscription{}, err
	}
	if ended(sub.Status) {
		return s.convert(sub), &billing.EndedError{SubscriptionID: req.SubscriptionID, Status: string(sub.Status)}
	}
	return s.changePlan(ctx, req, price, sub, item)
}

func (s *Stripe) changePlan(ctx context.Context, req billing.ChangeRequest, price string, sub *stripe.Subscription, item *stripe.SubscriptionItem) (billing.Subscription, error) {
	if sub.Schedule != nil && sub.Schedule.ID != "" {
		if err := s.releaseSchedule(ctx, sub.Schedule.ID, req.IdempotencyKey+suffixReleaseSchedule); err != nil {
			return billing.Subscription{}, err
		}
		sub.Schedule = nil
	}
	if item.Price != nil && item.Price.ID == price {
		return s.convert(sub), nil
	}
	proration := "create_prorations"
	if req.NoProration {
		proration = "none"
	}
	p := &stripe.SubscriptionParams{
		Items:             []*stripe.SubscriptionItemsParams{{ID: stripe.String(item.ID), Price: stripe.String(price)}},
		ProrationBehavior: stripe.String(proration),
	}
	p.Context = ctx
	p.SetIdempotencyKey(req.IdempotencyKey)
	updated, err := s.subscriptions.Update(req.SubscriptionID, p)
	if err != nil {
		return billing.Subscription{}, classify("update subscription "+req.SubscriptionID, err)
	}
	return s.convert(updated), nil
}

// SchedulePlanChange uses a subscription schedule rather than an update with
// proration_behavior=none: such an update would switch the price (and what webhooks
// and Get report) at once and leave only the money for later, while the schedule
// switches the price exactly at the period boundary, inside Stripe, before the renewal
// invoice is drawn. It reads the subscription, creates a schedule from it (key +
// ":schedule") or reads the one it has, and sets two phases with the caller's key:
// the current price until current_period_end, then the plan's price, after which the
// schedule releases the subscription (end_behavior=release). A change to the current
// price is ChangePlan's job: it drops the pending schedule.
func (s *Stripe) SchedulePlanChange(ctx context.Context, req billing.ChangeRequest) (billing.Subscription, error) {
	op := "schedule plan change of subscription " + req.SubscriptionID
	if err := checkKey(op, req.IdempotencyKey, suffixReleaseSchedule); err != nil {
		return billing.Subscription{}, err
	}
	price, err := s.price(op, req.Plan)
	if err != nil {
		return billing.Subscription{}, err
	}
	sub, item, err := s.getWithItem(ctx, req.SubscriptionID)
	if err != nil {
		return billing.Subscription{}, err
	}
	if ended(sub.Status) {
		return s.convert(sub), &billing.EndedError{SubscriptionID: req.SubscriptionID, Status: string(sub.Status)}
	}
	if item.Price != nil && item.Price.ID == price {
		return s.changePlan(ctx, req, price, sub, item)
	}
	var sched *stripe.SubscriptionSchedule
	if sub.Schedule != nil && sub.Schedule.ID != "" {
		p := &stripe.SubscriptionScheduleParams{}
		p.Context = ctx
		sched, err = s.schedules.Get(sub.Schedule.ID, p)
		if err != nil {
			return billing.Subscription{}, classify("get subscription schedule "+sub.Schedule.ID, err)
		}
	} else {
		p := &stripe.SubscriptionScheduleParams{FromSubscription: stripe.String(sub.ID)}
		p.Context = ctx
		p.SetIdempotencyKey(req.IdempotencyKey + suffixSchedule)
		sched, err = s.schedules.New(p)
		if err != nil {
			return billing.Subscription{}, classify("create subscription schedule for "+sub.ID, err)
		}
	}
	// Stripe wants the current phase restated with its own start date.
	start := sub.CurrentPeriodStart
	switch {
	case sched.CurrentPhase != nil && sched.CurrentPhase.StartDate != 0:
		start = sched.CurrentPhase.StartDate
	case len(sched.Phases) > 0 && sched.Phases[0].StartDate != 0:
		start = sched.Phases[0].StartDate
	}
	quantity := item.Quantity
	if quantity < 1 {
		quantity = 1
	}
	currentPrice := ""
	if item.Price != nil {
		currentPrice = item.Price.ID
	}
	p := &stripe.SubscriptionScheduleParams{
		EndBehavior:       stripe.String("release"),
		ProrationBehavior: stripe.String("none"),
		Phases: []*stripe.SubscriptionSchedulePhaseParams{
			{
				Items:     []*stripe.SubscriptionSchedulePhaseItemParams{{Price: stripe.String(currentPrice), Quantity: stripe.Int64(quantity)}},
				StartDate: stripe.Int64(start),
				EndDate:   stripe.Int64(sub.CurrentPeriodEnd),
			},
			{
				Items:             []*stripe.SubscriptionSchedulePhaseItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(quantity)}},
				Iterations:        stripe.Int64(1),
				ProrationBehavior: stripe.String("none"),
			},
		},
	}
	p.Context = ctx
	p.SetIdempotencyKey(req.IdempotencyKey)
	if _, err := s.schedules.Update(sched.ID, p); err != nil {
		return billing.Subscription{}, classify("update subscription schedule "+sched.ID, err)
	}
	out := s.convert(sub)
	out.ScheduleID = sched.ID
	return out, nil
}

// Cancel reads the subscription and returns it unchanged when it is already canceled
// (or already canceling at period end, when that is asked). Otherwise it sets
// cancel_at_period_end=true (after releasing a schedule, which would otherwise keep
// the subscription going) or deletes the subscription now, with the caller's key.
func (s *Stripe) Cancel(ctx context.Context, req billing.CancelRequest) (billing.Subscription, error) {
	op := "cancel subscription " + req.SubscriptionID
	if err := checkKey(op, req.IdempotencyKey, suffixReleaseSchedule); err != nil {
		return billing.Subscription{}, err
	}
	sub, err := s.get(ctx, req.SubscriptionID)
	if err != nil {
		return billing.Subscription{}, err
	}
	if ended(sub.Status) || (req.AtPeriodEnd && sub.CancelAtPeriodEnd) {
		return s.convert(sub), nil
	}
	if !req.AtPeriodEnd {
		p := &stripe.SubscriptionCancelParams{}
		p.Context = ctx
		p.SetIdempotencyKey(req.IdempotencyKey)
		canceled, err := s.subscriptions.Cancel(req.SubscriptionID, p)
		if err != nil {
			return billing.Subscription{}, classify(op, err)
		}
		return s.convert(canceled), nil
	}
	if sub.Schedule != nil && sub.Schedule.ID != "" {
		if err := s.releaseSchedule(ctx, sub.Schedule.ID, req.IdempotencyKey+suffixReleaseSchedule); err != nil {
			return billing.Subscription{}, err
		}
	}
	p := &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(true)}
	p.Context = ctx
	p.SetIdempotencyKey(req.IdempotencyKey)
	updated, err := s.subscriptions.Update(req.SubscriptionID, p)
	if err != nil {
		return billing.Subscription{}, classify(op+" at period end", err)
	}
	return s.convert(updated), nil
}

// Resume reads the subscription; a paused one is resumed (POST .../resume), one that
// cancels at period end gets cancel_at_period_end=false, both with the caller's key.
// Anything else that has not ended is returned unchanged; an ended one gives an error
// matching billing.ErrNotResumable, with the billing.Subscription (and its CustomerID) filled in.
func (s *Stripe) Resume(ctx context.Context, subscriptionID, idempotencyKey string) (billing.Subscription, error) {
	op := "resume subscription " + subscriptionID
	if err := checkKey(op, idempotencyKey, ""); err != nil {
		return billing.Subscription{}, err
	}
	sub, err := s.get(ctx, subscriptionID)
	if err != nil {
		return billing.Subscription{}, err
	}
	switch {
	case ended(sub.Status):
		return s.convert(sub), fmt.Errorf("%w: %s is %s", billing.ErrNotResumable, subscriptionID, sub.Status)
	case sub.Status == stripe.SubscriptionStatusPaused:
		p := &stripe.SubscriptionResumeParams{}
		p.Context = ctx
		p.SetIdempotencyKey(idempotencyKey)
		resumed, err := s.subscriptions.Resume(subscriptionID, p)
		if err != nil {
			return billing.Subscription{}, classify(op, err)
		}
		return s.convert(resumed), nil
	case sub.CancelAtPeriodEnd:
		p := &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(false)}
		p.Context = ctx
		p.SetIdempotencyKey(idempotencyKey)
		updated, err := s.subscriptions.Update(subscriptionID, p)
		if err != nil {
			return billing.Subscription{}, classify(op, err)
		}
		return s.convert(updated), nil
	}
	return s.convert(sub), nil
}

// CreatedBy lists the customer's subscriptions in every status (GET
// /v1/subscriptions?customer=...&status=all, no idempotency key) and keeps those whose
// metadata operation_id is operationID. The list, unlike Stripe's search, is read
// from the source of truth at once, so a subscription created a moment ago is in it;
// a customer has few subscriptions, so filtering here is cheap.
func (s *Stripe) CreatedBy(ctx context.Context, customerID, operationID string) ([]billing.Subscription, error) {
	if customerID == "" || operationID == "" {
		return nil, fmt.Errorf("billing: list subscriptions: customer id and operation id are required")
	}
	p := &stripe.SubscriptionListParams{Customer: stripe.String(customerID), Status: stripe.String("all")}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	var out []billing.Subscription
	it := s.subscriptions.List(p)
	for it.Next() {
		if sub := it.Subscription(); sub.Metadata[metadataOperationID] == operationID {
			out = append(out, s.convert(sub))
		}
	}
	if err := it.Err(); err != nil {
		return nil, classify("list subscriptions of customer "+customerID, err)
	}
	return out, nil
}

// Get reads the subscription (GET, no idempotency key).
func (s *Stripe) Get(ctx context.Context, subscriptionID string) (billing.Subscription, error) {
	sub, err := s.get(ctx, subscriptionID)
	if err != nil {
		return billing.Subscription{}, err
	}
	return s.convert(sub), nil
}

func (s *Stripe) get(ctx context.Context, id string) (*stripe.Subscription, error) {
	if id == "" {
		return nil, fmt.Errorf("billing: subscription id is empty")
	}
	p := &stripe.SubscriptionParams{}
	p.Context = ctx
	sub, err := s.subscriptions.Get(id, p)
	if err != nil {
		return nil, classify("get subscription "+id, err)
	}
	return sub, nil
}

// getWithItem reads the subscription and its single item: the control plane creates
// one-item subscriptions, and guessing which of several items is "the plan" would be
// worse than stopping.
func (s *Stripe) getWithItem(ctx context.Context, id string) (*stripe.Subscription, *stripe.SubscriptionItem, error) {
	sub, err := s.get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if sub.Items == nil || len(sub.Items.Data) != 1 || sub.Items.Data[0] == nil {
		n := 0
		if sub.Items != nil {
			n = len(sub.Items.Data)
		}
		return nil, nil, fmt.Errorf("billing: subscription %s has %d items, want exactly 1", id, n)
	}
	return sub, sub.Items.Data[0], nil
}

func (s *Stripe) releaseSchedule(ctx context.Context, id, key string) error {
	p := &stripe.SubscriptionScheduleReleaseParams{}
	p.Context = ctx
	p.SetIdempotencyKey(key)
	if _, err := s.schedules.Release(id, p); err != nil {
		return classify("release subscription schedule "+id, err)
	}
	return nil
}

func (s *Stripe) price(op string, plan tenant.Plan) (string, error) {
	price, ok := s.prices.Price(plan)
	if !ok {
		return "", fmt.Errorf("%w %q (%s)", billing.ErrNoPrice, plan, op)
	}
	return price, nil
}

func (s *Stripe) convert(sub *stripe.Subscription) billing.Subscription {
	out := billing.Subscription{
		ID:                sub.ID,
		Status:            string(sub.Status),
		CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
	}
	if sub.Customer != nil {
		out.CustomerID = sub.Customer.ID
	}
	if sub.CurrentPeriodEnd != 0 {
		out.CurrentPeriodEnd = time.Unix(sub.CurrentPeriodEnd, 0).UTC()
	}
	if sub.CurrentPeriodStart != 0 {
		out.CurrentPeriodStart = time.Unix(sub.CurrentPeriodStart, 0).UTC()
	}
	if sub.Schedule != nil {
		out.ScheduleID = sub.Schedule.ID
	}
	out.OperationID = sub.Metadata[metadataOperationID]
	if sub.Items != nil && len(sub.Items.Data) > 0 && sub.Items.Data[0] != nil && sub.Items.Data[0].Price != nil {
		out.PriceID = sub.Items.Data[0].Price.ID
		out.Plan, _ = s.prices.Plan(out.PriceID)
	}
	return out
}

// ended reports a status after which the subscription never bills again.
func ended(status stripe.SubscriptionStatus) bool {
	return status == stripe.SubscriptionStatusCanceled || status == stripe.SubscriptionStatusIncompleteExpired
}

// checkKey refuses a missing key, and one that would exceed Stripe's 255 characters
// once suffix is added, before anything is sent.
func checkKey(op, key, suffix string) error {
	if key == "" {
		return fmt.Errorf("%w (%s)", billing.ErrNoIdempotencyKey, op)
	}
	if len(key)+len(suffix) > maxIdempotencyKeyLen {
		return fmt.Errorf("billing: %s: idempotency key %.40q... is longer than %d characters with suffix %q", op, key, maxIdempotencyKeyLen-len(suffix), suffix)
	}
	return nil
}

// stripeLogger sends stripe-go's logs to slog. Its per-request Info lines go to Debug,
// and its Errorf to Warn: the error is returned to the caller, who logs it with the
// tenant and operation.
type stripeLogger struct{ l *slog.Logger }

func (s stripeLogger) Debugf(format string, v ...interface{}) {
	s.l.Debug(fmt.Sprintf(format, v...), "component", "stripe-go")
}

func (s stripeLogger) Infof(format string, v ...interface{}) {
	s.l.Debug(fmt.Sprintf(format, v...), "component", "stripe-go")
}

func (s stripeLogger) Warnf(format string, v ...interface{}) {
	s.l.Warn(fmt.Sprintf(format, v...), "component", "stripe-go")
}

func (s stripeLogger) Errorf(format string, v ...interface{}) {
	s.l.Warn(fmt.Sprintf(format, v...), "component", "stripe-go")
}
