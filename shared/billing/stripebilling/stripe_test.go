package stripebilling_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/billing/stripebilling"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// One stripe-mock for the package (stateless, so shared safely); each test gets its own
// recording proxy.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var quiet = slog.New(slog.DiscardHandler)

var testPrices = billing.PriceIDs{
	tenant.Free:         "price_free",
	tenant.Starter:      "price_starter",
	tenant.Professional: "price_pro",
	tenant.Enterprise:   "price_ent",
}

func newStripe(t *testing.T) (*stripebilling.Stripe, *testenv.Stripe) {
	t.Helper()
	proxy := testenv.StartStripe(t)
	b, err := stripebilling.NewStripe(billing.Config{APIKey: "sk_test_123", BaseURL: proxy.URL, PriceIDs: testPrices, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return b, proxy
}

// stubSub describes the subscription a stubbed GET returns: stripe-mock answers every
// GET with the same active fixture, so states (paused, canceled, scheduled, on a given
// price) come from the proxy.
type stubSub struct {
	status            string
	price             string
	schedule          string
	cancelAtPeriodEnd bool
	item              string // the item's id, default si_stub
}

func (s stubSub) json() string {
	if s.status == "" {
		s.status = "active"
	}
	if s.item == "" {
		s.item = "si_stub"
	}
	var schedule any
	if s.schedule != "" {
		schedule = s.schedule
	}
	b, _ := json.Marshal(map[string]any{
		"id": "sub_123", "object": "subscription", "customer": "cus_stub", "status": s.status,
		"cancel_at_period_end": s.cancelAtPeriodEnd, "schedule": schedule,
		"current_period_start": 1700000000, "current_period_end": 1702592000,
		"items": map[string]any{"object": "list", "data": []any{map[string]any{
			"id": s.item, "object": "subscription_item", "quantity": 2,
			"price": map[string]any{"id": s.price, "object": "price"},
		}}},
	})
	return string(b)
}

// want is one expected request. A path or form value ending in "*" is a prefix;
// form lists the fields that must be present (others may be too); absent lists fields
// that must not be.
type want struct {
	method, path, key string
	form              map[string]string
	absent            []string
}

func match(pattern, got string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(got, p)
	}
	return pattern == got
}

func checkRequests(t *testing.T, got []testenv.StripeRequest, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		var lines []string
		for _, r := range got {
			lines = append(lines, fmt.Sprintf("  %s %s key=%q form=%v", r.Method, r.Path, r.IdempotencyKey, r.Form))
		}
		t.Fatalf("got %d requests, want %d:\n%s", len(got), len(wants), strings.Join(lines, "\n"))
	}
	for i, w := range wants {
		r := got[i]
		if r.Method != w.method || !match(w.path, r.Path) {
			t.Errorf("request %d: %s %s, want %s %s", i, r.Method, r.Path, w.method, w.path)
		}
		if r.IdempotencyKey != w.key {
			t.Errorf("request %d (%s %s): Idempotency-Key %q, want %q", i, r.Method, r.Path, r.IdempotencyKey, w.key)
		}
		for k, v := range w.form {
			if !r.Form.Has(k) || !match(v, r.Form.Get(k)) {
				t.Errorf("request %d (%s %s): form %s=%q, want %q (form %v)", i, r.Method, r.Path, k, r.Form.Get(k), v, r.Form)
			}
		}
		for _, k := range w.absent {
			if r.Form.Has(k) {
				t.Errorf("request %d (%s %s): form has %s=%q, want none", i, r.Method, r.Path, k, r.Form.Get(k))
			}
		}
		if r.StripeVersion != "2023-10-16" {
			t.Errorf("request %d: Stripe-Version %q, want 2023-10-16", i, r.StripeVersion)
		}
		if r.Status != 200 {
			t.Errorf("request %d (%s %s): status %d, want 200 (stripe-mock rejected it?)", i, r.Method, r.Path, r.Status)
		}
	}
}

func TestCreateSubscription(t *testing.T) {
	tests := []struct {
		name      string
		req       billing.CreateRequest
		want      []want
		wantCusID string
	}{
		{
			name: "new customer, then subscription on the plan's price",
			req:  billing.CreateRequest{TenantID: "tenant_acme", Name: "Acme Corp", Email: "billing@acme.test", Plan: tenant.Starter, IdempotencyKey: "op_1:billing"},
			want: []want{
				{method: "POST", path: "/v1/customers", key: "op_1:billing:customer", form: map[string]string{
					"name": "Acme Corp", "email": "billing@acme.test", "metadata[tenant_id]": "tenant_acme"}},
				{method: "POST", path: "/v1/subscriptions", key: "op_1:billing", form: map[string]string{
					"customer": "cus_*", "items[0][price]": "price_starter", "metadata[tenant_id]": "tenant_acme"},
					absent: []string{"proration_behavior", "items[0][id]", "metadata[operation_id]", "metadata[attempt]"}},
			},
		},
		{
			name: "existing customer (reactivation): no customer create; the operation in the metadata",
			req: billing.CreateRequest{TenantID: "tenant_suspended", CustomerID: "cus_existing", Plan: tenant.Enterprise, IdempotencyKey: "op_2:1:billing-new",
				OperationID: "op_2", Attempt: 1},
			want: []want{
				{method: "POST", path: "/v1/subscriptions", key: "op_2:1:billing-new", form: map[string]string{
					"customer": "cus_existing", "items[0][price]": "price_ent", "metadata[tenant_id]": "tenant_suspended",
					"metadata[operation_id]": "op_2", "metadata[attempt]": "1"}},
			},
			wantCusID: "cus_existing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, proxy := newStripe(t)
			sub, err := b.CreateSubscription(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			checkRequests(t, proxy.Requests(), tt.want)
			if !strings.HasPrefix(sub.ID, "sub_") || sub.Status != "active" || !strings.HasPrefix(sub.CustomerID, "cus_") {
				t.Errorf("subscription %+v", sub)
			}
			if tt.wantCusID != "" && sub.CustomerID != tt.wantCusID {
				t.Errorf("CustomerID %q, want %q", sub.CustomerID, tt.wantCusID)
			}
		})
	}
}

func TestChangePlan(t *testing.T) {
	tests := []struct {
		name        string
		stub        *stubSub
		plan        tenant.Plan
		noProration bool
		want        []want
		wantPlan    tenant.Plan
	}{
		{
			name:        "at the period boundary: no prorations",
			plan:        tenant.Starter,
			noProration: true,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscriptions/sub_123", key: "op_3:billing", form: map[string]string{
					"items[0][price]": "price_starter", "proration_behavior": "none"}},
			},
		},
		{
			name: "item price switched now with prorations",
			plan: tenant.Starter,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscriptions/sub_123", key: "op_3:billing", form: map[string]string{
					"items[0][id]": "si_*", "items[0][price]": "price_starter", "proration_behavior": "create_prorations"}},
			},
		},
		{
			name: "item id comes from the retrieved subscription",
			stub: &stubSub{price: "price_pro"},
			plan: tenant.Enterprise,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscriptions/sub_123", key: "op_3:billing", form: map[string]string{
					"items[0][id]": "si_stub", "items[0][price]": "price_ent", "proration_behavior": "create_prorations"}},
			},
		},
		{
			name: "a pending scheduled change is released first",
			stub: &stubSub{price: "price_pro", schedule: "sub_sched_pending"},
			plan: tenant.Enterprise,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscription_schedules/sub_sched_pending/release", key: "op_3:billing:release-schedule"},
				{method: "POST", path: "/v1/subscriptions/sub_123", key: "op_3:billing", form: map[string]string{
					"items[0][id]": "si_stub", "items[0][price]": "price_ent"}},
			},
		},
		{
			name:     "already on the price (rollback of a change that never happened): no write",
			stub:     &stubSub{price: "price_starter"},
			plan:     tenant.Starter,
			want:     []want{{method: "GET", path: "/v1/subscriptions/sub_123"}},
			wantPlan: tenant.Starter,
		},
		{
			name: "same price with a pending schedule: only the release (cancels the pending change)",
			stub: &stubSub{price: "price_pro", schedule: "sub_sched_pending"},
			plan: tenant.Professional,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscription_schedules/sub_sched_pending/release", key: "op_3:billing:release-schedule"},
			},
			wantPlan: tenant.Professional,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, proxy := newStripe(t)
			if tt.stub != nil {
				proxy.StubNext(1, "GET /v1/subscriptions/", 200, tt.stub.json())
			}
			sub, err := b.ChangePlan(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_123", Plan: tt.plan, IdempotencyKey: "op_3:billing", NoProration: tt.noProration})
			if err != nil {
				t.Fatal(err)
			}
			checkRequests(t, proxy.Requests(), tt.want)
			if sub.ID != "sub_123" || sub.ScheduleID != "" {
				t.Errorf("subscription %+v", sub)
			}
			if tt.wantPlan != "" && sub.Plan != tt.wantPlan {
				t.Errorf("Plan %q, want %q", sub.Plan, tt.wantPlan)
			}
		})
	}
}

// A subscription that has ended is never changed: Stripe refuses it, and a price that
// matches on a dead subscription must not pass for a tenant being billed.
func TestChangePlanEnded(t *testing.T) {
	for _, status := range []string{"canceled", "incomplete_expired"} {
		t.Run(status, func(t *testing.T) {
			b, proxy := newStripe(t)
			for _, plan := range []tenant.Plan{tenant.Starter, tenant.Professional} {
				proxy.StubNext(1, "GET /v1/subscriptions/", 200, stubSub{status: status, price: "price_starter"}.json())
				sub, err := b.ChangePlan(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_123", Plan: plan, IdempotencyKey: "op_3:0:billing"})
				if !errors.Is(err, billing.ErrEnded) || sub.Status != status || !sub.Ended() {
					t.Errorf("onto %s: %+v, %v; want ErrEnded with the subscription", plan, sub, err)
				}
				proxy.StubNext(1, "GET /v1/subscriptions/", 200, stubSub{status: status, price: "price_starter"}.json())
				if _, err := b.SchedulePlanChange(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_123", Plan: plan, IdempotencyKey: "op_3:0:billing"}); !errors.Is(err, billing.ErrEnded) {
					t.Errorf("schedule onto %s: %v, want ErrEnded", plan, err)
				}
			}
			for _, r := range proxy.Requests() {
				if r.Method != "GET" {
					t.Errorf("a write to an ended subscription: %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

// CreatedBy finds the subscriptions a flow created (its operation in their metadata)
// among the customer's subscriptions in every status, also one whose create answer
// was lost.
func TestCreatedBy(t *testing.T) {
	b, proxy := newStripe(t)
	ctx := context.Background()
	proxy.SetSubscription(testenv.SubscriptionState{ID: "sub_old", Customer: "cus_1", Status: "canceled", Price: "price_starter"})
	proxy.SetSubscription(testenv.SubscriptionState{ID: "sub_other_op", Customer: "cus_1", Status: "active", Price: "price_starter",
		Metadata: map[string]string{"operation_id": "op_other"}})
	proxy.LoseNext(2, "POST /v1/subscriptions$") // the answer, and the transport's one resend
	_, err := b.CreateSubscription(ctx, billing.CreateRequest{TenantID: "t1", CustomerID: "cus_1", Plan: tenant.Professional,
		IdempotencyKey: "op_7:0:billing-new", OperationID: "op_7"})
	if !errors.As(err, new(*billing.TransientError)) {
		t.Fatalf("create with its answer lost: %v, want a TransientError", err)
	}
	created := proxy.RequestsTo("POST /v1/subscriptions$")[0].ObjectID
	got, err := b.CreatedBy(ctx, "cus_1", "op_7")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != created || got[0].OperationID != "op_7" || got[0].Ended() || got[0].Plan != tenant.Professional {
		t.Errorf("CreatedBy %+v, want only %s", got, created)
	}
	if got, err := b.CreatedBy(ctx, "cus_2", "op_7"); err != nil || len(got) != 0 {
		t.Errorf("another customer: %+v %v", got, err)
	}
	list := proxy.RequestsTo("GET /v1/subscriptions$")
	if len(list) != 2 || list[0].Query.Get("customer") != "cus_1" || list[0].Query.Get("status") != "all" {
		t.Errorf("list requests %+v", list)
	}
	if _, err := b.CreatedBy(ctx, "", "op_7"); err == nil {
		t.Error("CreatedBy without a customer must fail")
	}
}

// Stripe dedupes writes by Idempotency-Key: for 24 h it replays the first answer, and
// refuses the key with other parameters (idempotency_error), as the recording proxy
// does. A retry whose read still shows the old price (stubbed here: a read that
// raced the first write) sends the update again; it must carry the same key and the
// same parameters, and gets Stripe's replay instead of a second change.
func TestChangePlanSameKeySendsSameRequest(t *testing.T) {
	b, proxy := newStripe(t)
	req := billing.ChangeRequest{SubscriptionID: "sub_123", Plan: tenant.Professional, IdempotencyKey: "op_4:0:billing"}
	if _, err := b.ChangePlan(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	item := proxy.RequestsTo("POST /v1/subscriptions/sub_123")[0].Form.Get("items[0][id]")
	proxy.StubNext(1, "GET /v1/subscriptions/", 200, stubSub{price: "price_starter", item: item}.json())
	if _, err := b.ChangePlan(context.Background(), req); err != nil {
		t.Fatal(err) // an idempotency_error: the retry sent other parameters
	}
	posts := proxy.RequestsTo("POST /v1/subscriptions/sub_123")
	if len(posts) != 2 {
		t.Fatalf("got %d POSTs, want 2", len(posts))
	}
	if posts[0].IdempotencyKey != "op_4:0:billing" || posts[1].IdempotencyKey != posts[0].IdempotencyKey {
		t.Errorf("keys %q, %q; want both op_4:0:billing", posts[0].IdempotencyKey, posts[1].IdempotencyKey)
	}
	if !posts[0].Applied || !posts[1].Replayed || posts[1].Applied {
		t.Errorf("want the first applied and the second replayed: %+v", posts)
	}
}

func TestSchedulePlanChange(t *testing.T) {
	tests := []struct {
		name         string
		stub         *stubSub
		plan         tenant.Plan
		want         []want
		wantSchedule string
	}{
		{
			name: "schedule created from the subscription, then two phases",
			stub: &stubSub{price: "price_pro"},
			plan: tenant.Starter,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscription_schedules", key: "op_5:billing:schedule", form: map[string]string{"from_subscription": "sub_123"}},
				{method: "POST", path: "/v1/subscription_schedules/sub_sched_*", key: "op_5:billing", form: map[string]string{
					"end_behavior":                  "release",
					"proration_behavior":            "none",
					"phases[0][items][0][price]":    "price_pro",
					"phases[0][items][0][quantity]": "2",
					"phases[0][start_date]":         "*",
					"phases[0][end_date]":           "1702592000",
					"phases[1][items][0][price]":    "price_starter",
					"phases[1][items][0][quantity]": "2",
					"phases[1][iterations]":         "1",
					"phases[1][proration_behavior]": "none",
				}},
			},
			wantSchedule: "sub_sched_*",
		},
		{
			name: "existing schedule is read and rewritten",
			stub: &stubSub{price: "price_pro", schedule: "sub_sched_1"},
			plan: tenant.Free,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "GET", path: "/v1/subscription_schedules/sub_sched_1"},
				{method: "POST", path: "/v1/subscription_schedules/sub_sched_1", key: "op_5:billing", form: map[string]string{
					"phases[0][items][0][price]": "price_pro", "phases[1][items][0][price]": "price_free", "end_behavior": "release"}},
			},
			wantSchedule: "sub_sched_1",
		},
		{
			name: "target is the current price: the pending change is dropped",
			stub: &stubSub{price: "price_pro", schedule: "sub_sched_1"},
			plan: tenant.Professional,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscription_schedules/sub_sched_1/release", key: "op_5:billing:release-schedule"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, proxy := newStripe(t)
			proxy.StubNext(1, "GET /v1/subscriptions/", 200, tt.stub.json())
			sub, err := b.SchedulePlanChange(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_123", Plan: tt.plan, IdempotencyKey: "op_5:billing"})
			if err != nil {
				t.Fatal(err)
			}
			checkRequests(t, proxy.Requests(), tt.want)
			if tt.wantSchedule == "" && sub.ScheduleID != "" || tt.wantSchedule != "" && !match(tt.wantSchedule, sub.ScheduleID) {
				t.Errorf("ScheduleID %q, want %q", sub.ScheduleID, tt.wantSchedule)
			}
			if sub.PriceID != "price_pro" || !sub.CurrentPeriodEnd.Equal(time.Unix(1702592000, 0)) {
				t.Errorf("subscription %+v: want the current price and the period end (when the change applies)", sub)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name        string
		stub        *stubSub
		atPeriodEnd bool
		want        []want
	}{
		{
			name: "now: DELETE",
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "DELETE", path: "/v1/subscriptions/sub_123", key: "op_6:billing"},
			},
		},
		{
			name:        "at period end",
			atPeriodEnd: true,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscriptions/sub_123", key: "op_6:billing", form: map[string]string{"cancel_at_period_end": "true"}},
			},
		},
		{
			name:        "at period end releases a pending schedule first",
			stub:        &stubSub{price: "price_pro", schedule: "sub_sched_1"},
			atPeriodEnd: true,
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscription_schedules/sub_sched_1/release", key: "op_6:billing:release-schedule"},
				{method: "POST", path: "/v1/subscriptions/sub_123", key: "op_6:billing", form: map[string]string{"cancel_at_period_end": "true"}},
			},
		},
		{
			name: "already canceled: no write",
			stub: &stubSub{status: "canceled", price: "price_pro"},
			want: []want{{method: "GET", path: "/v1/subscriptions/sub_123"}},
		},
		{
			name:        "already canceling at period end: no write",
			stub:        &stubSub{price: "price_pro", cancelAtPeriodEnd: true},
			atPeriodEnd: true,
			want:        []want{{method: "GET", path: "/v1/subscriptions/sub_123"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, proxy := newStripe(t)
			if tt.stub != nil {
				proxy.StubNext(1, "GET /v1/subscriptions/", 200, tt.stub.json())
			}
			if _, err := b.Cancel(context.Background(), billing.CancelRequest{SubscriptionID: "sub_123", AtPeriodEnd: tt.atPeriodEnd, IdempotencyKey: "op_6:billing"}); err != nil {
				t.Fatal(err)
			}
			checkRequests(t, proxy.Requests(), tt.want)
		})
	}
}

func TestResume(t *testing.T) {
	tests := []struct {
		name    string
		stub    *stubSub
		want    []want
		wantErr error
	}{
		{
			name: "cancel at period end is undone",
			stub: &stubSub{price: "price_pro", cancelAtPeriodEnd: true},
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscriptions/sub_123", key: "op_7:billing", form: map[string]string{"cancel_at_period_end": "false"}},
			},
		},
		{
			name: "paused is resumed",
			stub: &stubSub{status: "paused", price: "price_pro"},
			want: []want{
				{method: "GET", path: "/v1/subscriptions/sub_123"},
				{method: "POST", path: "/v1/subscriptions/sub_123/resume", key: "op_7:billing"},
			},
		},
		{
			name: "active: nothing to resume",
			want: []want{{method: "GET", path: "/v1/subscriptions/sub_123"}},
		},
		{
			name:    "canceled: not resumable, no write",
			stub:    &stubSub{status: "canceled", price: "price_pro"},
			want:    []want{{method: "GET", path: "/v1/subscriptions/sub_123"}},
			wantErr: billing.ErrNotResumable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, proxy := newStripe(t)
			if tt.stub != nil {
				proxy.StubNext(1, "GET /v1/subscriptions/", 200, tt.stub.json())
			}
			sub, err := b.Resume(context.Background(), "sub_123", "op_7:billing")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			checkRequests(t, proxy.Requests(), tt.want)
			if tt.wantErr != nil && sub.CustomerID != "cus_stub" {
				t.Errorf("a not-resumable answer should still name the customer for the new subscription: %+v", sub)
			}
		})
	}
}

func TestGet(t *testing.T) {
	b, proxy := newStripe(t)
	proxy.StubNext(1, "GET /v1/subscriptions/", 200, stubSub{price: "price_pro", schedule: "sub_sched_9", cancelAtPeriodEnd: true}.json())
	got, err := b.Get(context.Background(), "sub_123")
	if err != nil {
		t.Fatal(err)
	}
	wantSub := billing.Subscription{ID: "sub_123", CustomerID: "cus_stub", Status: "active", PriceID: "price_pro", Plan: tenant.Professional,
		CurrentPeriodStart: time.Unix(1700000000, 0).UTC(), CurrentPeriodEnd: time.Unix(1702592000, 0).UTC(), CancelAtPeriodEnd: true, ScheduleID: "sub_sched_9"}
	if got != wantSub {
		t.Errorf("got  %+v\nwant %+v", got, wantSub)
	}
	// And the real stripe-mock fixture parses too.
	got, err = b.Get(context.Background(), "sub_123")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "sub_123" || got.Status != "active" || got.PriceID == "" || got.Plan != "" || got.CurrentPeriodEnd.IsZero() {
		t.Errorf("fixture: %+v", got)
	}
	checkRequests(t, proxy.Requests()[1:], []want{{method: "GET", path: "/v1/subscriptions/sub_123"}})
}

func TestStripeErrors(t *testing.T) {
	tests := []struct {
		name       string
		match      string
		status     int
		errType    string
		call       func(billing.Billing) error
		transient  bool
		wantCode   string
		wantStatus int
	}{
		{name: "500 api_error on the update is transient", match: "POST /v1/subscriptions/", status: 500, errType: "api_error",
			call: changePlan, transient: true, wantStatus: 500},
		{name: "503 on the read is transient", match: "GET /v1/subscriptions/", status: 503, errType: "api_error",
			call: changePlan, transient: true, wantStatus: 503},
		{name: "429 is transient", match: "POST /v1/subscriptions", status: 429, errType: "invalid_request_error",
			call: create, transient: true, wantCode: "rate_limit", wantStatus: 429},
		{name: "409 (key in use, lock timeout) is transient", match: "DELETE /v1/subscriptions/", status: 409, errType: "invalid_request_error",
			call: cancelNow, transient: true, wantStatus: 409},
		{name: "402 card_error is rejected", match: "POST /v1/subscriptions", status: 402, errType: "card_error",
			call: create, wantCode: "card_declined", wantStatus: 402},
		{name: "404 is rejected", match: "GET /v1/subscriptions/", status: 404, errType: "invalid_request_error",
			call: changePlan, wantStatus: 404},
		{name: "400 idempotency_error is rejected", match: "POST /v1/subscription_schedules", status: 400, errType: "idempotency_error",
			call: schedule, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, proxy := newStripe(t)
			proxy.FailNext(1, tt.match, tt.status, tt.errType)
			err := tt.call(b)
			var te *billing.TransientError
			var re *billing.RejectedError
			switch {
			case tt.transient:
				if !errors.As(err, &te) {
					t.Fatalf("err %T %v, want *TransientError", err, err)
				}
				if te.StatusCode != tt.wantStatus || te.Code != tt.wantCode {
					t.Errorf("status %d code %q, want %d %q", te.StatusCode, te.Code, tt.wantStatus, tt.wantCode)
				}
			default:
				if !errors.As(err, &re) {
					t.Fatalf("err %T %v, want *RejectedError", err, err)
				}
				if re.StatusCode != tt.wantStatus || re.Code != tt.wantCode || re.Type != tt.errType || re.Message == "" {
					t.Errorf("rejected %+v, want status %d code %q type %q", re, tt.wantStatus, tt.wantCode, tt.errType)
				}
			}
			if _, ok := err.(interface{ Unwrap() error }); !ok || errors.As(err, new(*billing.TransientError)) == errors.As(err, new(*billing.RejectedError)) {
				t.Errorf("want exactly one of the two types, unwrapped: %T", err)
			}
			if tt.status != 0 {
				var se *stripe.Error
				if !errors.As(err, &se) || se.HTTPStatusCode != tt.status {
					t.Errorf("the *stripe.Error should stay reachable: %v", err)
				}
			}
			if strings.Contains(err.Error(), "{") {
				t.Errorf("message carries JSON: %s", err)
			}
			// MaxNetworkRetries is 0: the failed request went out once and nothing after it.
			reqs := proxy.Requests()
			last := reqs[len(reqs)-1]
			if !last.Injected || len(proxy.RequestsTo(tt.match)) != 1 {
				t.Errorf("stripe-go retried or went on after the failure: %+v", reqs)
			}
		})
	}
}

// A connection that dies without an answer. Go's http.Transport itself sends a request
// again once when a reused keep-alive connection dies before any answer and the
// request is replayable, and a request with an Idempotency-Key header counts as
// replayable. That one resend is safe for the same reason the Step Functions retry is,
// so the adapter leaves it on; a second failure comes back as a TransientError.
func TestDroppedConnection(t *testing.T) {
	t.Run("once on a reused connection: the transport resends with the same key", func(t *testing.T) {
		b, proxy := newStripe(t)
		proxy.FailNext(1, "POST /v1/subscriptions/", 0, "")
		if err := changePlan(b); err != nil {
			t.Fatal(err)
		}
		posts := proxy.RequestsTo("POST /v1/subscriptions/")
		if len(posts) != 2 || !posts[0].Injected || posts[0].Status != 0 || posts[1].Status != 200 ||
			posts[0].IdempotencyKey != "op_8:billing" || posts[1].IdempotencyKey != "op_8:billing" {
			t.Errorf("want a dropped POST and its resend with the same key, got %+v", posts)
		}
	})
	t.Run("twice: transient", func(t *testing.T) {
		b, proxy := newStripe(t)
		proxy.FailNext(2, "POST /v1/subscriptions/", 0, "")
		err := changePlan(b)
		var te *billing.TransientError
		if !errors.As(err, &te) || te.StatusCode != 0 {
			t.Fatalf("err %T %v, want *TransientError without status", err, err)
		}
		if n := len(proxy.RequestsTo("POST /v1/subscriptions/")); n != 2 {
			t.Errorf("%d POSTs, want 2 (one transport resend, no stripe-go retry)", n)
		}
	})
}

func TestNetworkFailureIsTransient(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	b, err := stripebilling.NewStripe(billing.Config{APIKey: "sk_test_123", BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port), PriceIDs: testPrices})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Get(context.Background(), "sub_123")
	var te *billing.TransientError
	if !errors.As(err, &te) || te.StatusCode != 0 {
		t.Fatalf("err %T %v, want *TransientError without status", err, err)
	}
}

func TestRequestsNotSent(t *testing.T) {
	long := strings.Repeat("k", 250)
	tests := []struct {
		name    string
		call    func(billing.Billing) error
		wantErr error
	}{
		{"create without key", func(b billing.Billing) error {
			_, err := b.CreateSubscription(context.Background(), billing.CreateRequest{TenantID: "t", Plan: tenant.Free})
			return err
		}, billing.ErrNoIdempotencyKey},
		{"change without key", func(b billing.Billing) error {
			_, err := b.ChangePlan(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_1", Plan: tenant.Free})
			return err
		}, billing.ErrNoIdempotencyKey},
		{"schedule without key", func(b billing.Billing) error {
			_, err := b.SchedulePlanChange(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_1", Plan: tenant.Free})
			return err
		}, billing.ErrNoIdempotencyKey},
		{"cancel without key", func(b billing.Billing) error {
			_, err := b.Cancel(context.Background(), billing.CancelRequest{SubscriptionID: "sub_1"})
			return err
		}, billing.ErrNoIdempotencyKey},
		{"resume without key", func(b billing.Billing) error {
			_, err := b.Resume(context.Background(), "sub_1", "")
			return err
		}, billing.ErrNoIdempotencyKey},
		{"unknown plan", func(b billing.Billing) error {
			_, err := b.ChangePlan(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_1", Plan: "gold", IdempotencyKey: "k"})
			return err
		}, billing.ErrNoPrice},
		{"key too long with its suffix", func(b billing.Billing) error {
			_, err := b.CreateSubscription(context.Background(), billing.CreateRequest{TenantID: "t", Plan: tenant.Free, IdempotencyKey: long})
			return err
		}, nil},
		{"no tenant id", func(b billing.Billing) error {
			_, err := b.CreateSubscription(context.Background(), billing.CreateRequest{Plan: tenant.Free, IdempotencyKey: "k"})
			return err
		}, nil},
		{"no subscription id", func(b billing.Billing) error {
			_, err := b.Get(context.Background(), "")
			return err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, proxy := newStripe(t)
			err := tt.call(b)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if errors.As(err, new(*billing.TransientError)) || errors.As(err, new(*billing.RejectedError)) {
				t.Errorf("a request that was never sent is neither transient nor Stripe's refusal: %T", err)
			}
			if n := len(proxy.Requests()); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}
}

func changePlan(b billing.Billing) error {
	_, err := b.ChangePlan(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_123", Plan: tenant.Starter, IdempotencyKey: "op_8:billing"})
	return err
}

func create(b billing.Billing) error {
	_, err := b.CreateSubscription(context.Background(), billing.CreateRequest{TenantID: "tenant_acme", CustomerID: "cus_1", Plan: tenant.Starter, IdempotencyKey: "op_8:billing"})
	return err
}

func cancelNow(b billing.Billing) error {
	_, err := b.Cancel(context.Background(), billing.CancelRequest{SubscriptionID: "sub_123", IdempotencyKey: "op_8:billing"})
	return err
}

func schedule(b billing.Billing) error {
	_, err := b.SchedulePlanChange(context.Background(), billing.ChangeRequest{SubscriptionID: "sub_123", Plan: tenant.Free, IdempotencyKey: "op_8:billing"})
	return err
}
