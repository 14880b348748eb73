package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The proxy tests start their own stripe-mock and stop it at the end rather than
// using the shared one, which only testenv.Run in a TestMain would stop.
func TestStripeProxy(t *testing.T) {
	bin, err := Tool("bin/stripe-mock")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mock, err := StartStripeMock(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mock.Stop)
	t.Logf("stripe-mock listening after %v", time.Since(start).Round(time.Millisecond))

	newProxy := func(t *testing.T) *Stripe {
		p, err := NewStripeProxy(mock.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	do := func(t *testing.T, p *Stripe, method, path string, form url.Values, key string) (int, map[string]any) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, p.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer sk_test_123")
		req.Header.Set("Stripe-Version", "2023-10-16")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	t.Run("records method, path, query, form and headers", func(t *testing.T) {
		p := newProxy(t)
		if st, _ := do(t, p, "POST", "/v1/customers", url.Values{"name": {"Acme"}, "metadata[tenant_id]": {"tenant_acme"}}, "op_1:billing:customer"); st != 200 {
			t.Fatalf("status %d", st)
		}
		if st, body := do(t, p, "GET", "/v1/subscriptions/sub_1?expand[]=schedule", nil, ""); st != 200 || body["id"] != "sub_1" {
			t.Fatalf("status %d body id %v", st, body["id"])
		}
		reqs := p.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests", len(reqs))
		}
		r := reqs[0]
		if r.Method != "POST" || r.Path != "/v1/customers" || r.IdempotencyKey != "op_1:billing:customer" || r.StripeVersion != "2023-10-16" ||
			r.Form.Get("name") != "Acme" || r.Form.Get("metadata[tenant_id]") != "tenant_acme" || r.Status != 200 || r.Injected || r.Time.IsZero() {
			t.Errorf("POST recorded as %+v", r)
		}
		r = reqs[1]
		if r.Method != "GET" || r.Path != "/v1/subscriptions/sub_1" || r.Query.Get("expand[]") != "schedule" || r.Form != nil || r.IdempotencyKey != "" {
			t.Errorf("GET recorded as %+v", r)
		}
		reqs[0].Form.Set("name", "changed")
		if p.Requests()[0].Form.Get("name") != "Acme" {
			t.Error("Requests must return copies")
		}
	})

	t.Run("records the id of what a create made", func(t *testing.T) {
		p := newProxy(t)
		st, body := do(t, p, "POST", "/v1/subscriptions", url.Values{"customer": {"cus_1"}, "items[0][price]": {"price_1"}}, "k1")
		if st != 200 || body["id"] == nil {
			t.Fatalf("status %d body %v", st, body)
		}
		do(t, p, "POST", "/v1/subscriptions/sub_1", url.Values{"no_such_param": {"1"}}, "k2")
		reqs := p.Requests()
		if reqs[0].ObjectID == "" || reqs[0].ObjectID != body["id"] {
			t.Errorf("create recorded object id %q, the answer's is %v", reqs[0].ObjectID, body["id"])
		}
		if reqs[1].ObjectID != "" {
			t.Errorf("a refused request recorded object id %q", reqs[1].ObjectID)
		}
	})

	t.Run("stripe-mock's validation errors pass through", func(t *testing.T) {
		p := newProxy(t)
		st, body := do(t, p, "POST", "/v1/subscriptions/sub_1", url.Values{"no_such_param": {"1"}}, "k")
		if st != 400 || body["error"] == nil {
			t.Errorf("status %d body %v", st, body)
		}
		if r := p.Requests()[0]; r.Status != 400 || r.Injected {
			t.Errorf("recorded %+v", r)
		}
	})

	t.Run("FailNext answers n matching requests with a Stripe error", func(t *testing.T) {
		p := newProxy(t)
		p.FailNext(2, "POST /v1/subscriptions", 402, "card_error")
		if st, _ := do(t, p, "GET", "/v1/subscriptions/sub_1", nil, ""); st != 200 {
			t.Errorf("GET does not match a POST rule, got %d", st)
		}
		for i := 0; i < 2; i++ {
			st, body := do(t, p, "POST", "/v1/subscriptions", url.Values{"customer": {"cus_1"}}, fmt.Sprintf("k%d", i))
			e, _ := body["error"].(map[string]any)
			if st != 402 || e["type"] != "card_error" || e["code"] != "card_declined" || e["message"] == "" {
				t.Errorf("attempt %d: status %d body %v", i, st, body)
			}
		}
		if st, _ := do(t, p, "POST", "/v1/subscriptions", url.Values{"customer": {"cus_1"}}, "k2"); st != 200 {
			t.Errorf("third POST should reach stripe-mock, got %d", st)
		}
		reqs := p.Requests()
		if !reqs[1].Injected || !reqs[2].Injected || reqs[3].Injected || reqs[1].Status != 402 || reqs[1].Form.Get("customer") != "cus_1" {
			t.Errorf("recorded %+v", reqs)
		}
	})

	t.Run("a bare prefix matches any method; 429 carries rate_limit", func(t *testing.T) {
		p := newProxy(t)
		p.FailNext(1, "/v1/subscriptions/sub_1", 429, "invalid_request_error")
		st, body := do(t, p, "DELETE", "/v1/subscriptions/sub_1", nil, "k")
		if e, _ := body["error"].(map[string]any); st != 429 || e["code"] != "rate_limit" {
			t.Errorf("status %d body %v", st, body)
		}
		if got := p.RequestsTo("DELETE /v1/subscriptions/"); len(got) != 1 {
			t.Errorf("RequestsTo: %+v", got)
		}
		if got := p.RequestsTo("POST /v1/subscriptions/"); len(got) != 0 {
			t.Errorf("RequestsTo matched another method: %+v", got)
		}
	})

	t.Run("StubNext answers with the given body", func(t *testing.T) {
		p := newProxy(t)
		p.StubNext(1, "GET /v1/subscriptions/", 200, `{"id":"sub_1","object":"subscription","status":"paused"}`)
		if _, body := do(t, p, "GET", "/v1/subscriptions/sub_1", nil, ""); body["status"] != "paused" {
			t.Errorf("stub not served: %v", body)
		}
		if _, body := do(t, p, "GET", "/v1/subscriptions/sub_1", nil, ""); body["status"] != "active" {
			t.Errorf("second GET should reach stripe-mock: %v", body)
		}
	})

	t.Run("status 0 drops the connection", func(t *testing.T) {
		p := newProxy(t)
		p.FailNext(1, "/v1/customers", 0, "")
		req, _ := http.NewRequest("POST", p.URL+"/v1/customers", strings.NewReader("name=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want a transport error", resp.StatusCode)
		}
		if r := p.Requests()[0]; r.Status != 0 || !r.Injected {
			t.Errorf("recorded %+v", r)
		}
	})

	t.Run("Reset forgets requests and pending faults", func(t *testing.T) {
		p := newProxy(t)
		do(t, p, "GET", "/v1/subscriptions/sub_1", nil, "")
		p.FailNext(1, "/v1/", 500, "api_error")
		p.Reset()
		if n := len(p.Requests()); n != 0 {
			t.Errorf("%d requests after Reset", n)
		}
		if st, _ := do(t, p, "GET", "/v1/subscriptions/sub_1", nil, ""); st != 200 {
			t.Errorf("fault survived Reset: %d", st)
		}
	})

	t.Run("an idempotency key replays its first answer, even a 500", func(t *testing.T) {
		p := newProxy(t)
		upd := url.Values{"items[0][price]": {"price_pro"}}
		p.FailNext(1, "POST /v1/subscriptions/sub_1", 500, "api_error")
		for i := 0; i < 3; i++ {
			if st, body := do(t, p, "POST", "/v1/subscriptions/sub_1", upd, "op_1:0:billing"); st != 500 || body["error"] == nil {
				t.Fatalf("call %d: status %d body %v, want the first answer (500) again", i, st, body)
			}
		}
		if st, _ := do(t, p, "POST", "/v1/subscriptions/sub_1", upd, "op_1:1:billing"); st != 200 {
			t.Fatalf("a new key: status %d, want 200", st)
		}
		st, body := do(t, p, "POST", "/v1/subscriptions/sub_1", url.Values{"items[0][price]": {"price_free"}}, "op_1:1:billing")
		if e, _ := body["error"].(map[string]any); st != 400 || e["type"] != "idempotency_error" {
			t.Errorf("the key with other parameters: status %d body %v", st, body)
		}
		reqs := p.Requests()
		if !reqs[0].Injected || reqs[1].Injected || !reqs[1].Replayed || reqs[1].Status != 500 || reqs[1].Applied || !reqs[3].Applied || reqs[3].Replayed {
			t.Errorf("recorded %+v", reqs)
		}
		// FailKey picks the request by its key's end, on any path.
		p.FailKey(1, ":billing-rollback", 500, "api_error")
		if st, _ := do(t, p, "POST", "/v1/subscriptions/sub_3", upd, "op_3:0:billing"); st != 200 {
			t.Errorf("FailKey hit another key: %d", st)
		}
		if st, _ := do(t, p, "POST", "/v1/subscriptions/sub_3", url.Values{"items[0][price]": {"price_free"}}, "op_3:0:billing-rollback"); st != 500 {
			t.Errorf("FailKey missed its key: %d", st)
		}
		// 429 (and 409, and a dropped connection) happen before Stripe runs the request:
		// nothing is stored under the key.
		p.FailNext(1, "POST /v1/subscriptions/sub_2", 429, "invalid_request_error")
		if st, _ := do(t, p, "POST", "/v1/subscriptions/sub_2", upd, "k429"); st != 429 {
			t.Fatalf("status %d", st)
		}
		if st, _ := do(t, p, "POST", "/v1/subscriptions/sub_2", upd, "k429"); st != 200 {
			t.Errorf("after a 429 the key is free: status %d", st)
		}
	})

	t.Run("an answer lost after Stripe created the subscription", func(t *testing.T) {
		p := newProxy(t)
		p.LoseNext(1, "POST /v1/subscriptions$")
		create := url.Values{"customer": {"cus_9"}, "items[0][price]": {"price_starter"}, "metadata[operation_id]": {"op_9"}}
		if st, _ := do(t, p, "POST", "/v1/subscriptions", create, "op_9:0:billing-new"); st != 0 {
			t.Fatalf("status %d, want no answer", st)
		}
		lost := p.Requests()[0]
		if !lost.Lost || !lost.Applied || lost.Status != 0 || lost.ObjectID == "" || lost.Injected {
			t.Fatalf("recorded %+v", lost)
		}
		// The subscription exists: its customer's list shows it, and the key replays it.
		_, list := do(t, p, "GET", "/v1/subscriptions?customer=cus_9&status=all", nil, "")
		data, _ := list["data"].([]any)
		if len(data) != 1 {
			t.Fatalf("list %v", list)
		}
		got, _ := data[0].(map[string]any)
		if md, _ := got["metadata"].(map[string]any); got["id"] != lost.ObjectID || got["status"] != "active" || md["operation_id"] != "op_9" {
			t.Errorf("listed %v", got)
		}
		if st, body := do(t, p, "POST", "/v1/subscriptions", create, "op_9:0:billing-new"); st != 200 || body["id"] != lost.ObjectID {
			t.Errorf("replay: status %d id %v, want %s", st, body["id"], lost.ObjectID)
		}
		if _, other := do(t, p, "GET", "/v1/subscriptions?customer=cus_other", nil, ""); len(other["data"].([]any)) != 0 {
			t.Errorf("another customer's list: %v", other)
		}
	})

	t.Run("a canceled subscription stays canceled and refuses changes", func(t *testing.T) {
		p := newProxy(t)
		p.SetSubscription(SubscriptionState{ID: "sub_7", Customer: "cus_7", Status: "active", Price: "price_starter"})
		if _, body := do(t, p, "GET", "/v1/subscriptions/sub_7", nil, ""); body["status"] != "active" || body["customer"] != "cus_7" {
			t.Fatalf("GET %v", body)
		}
		if st, body := do(t, p, "DELETE", "/v1/subscriptions/sub_7", nil, "k-cancel"); st != 200 || body["status"] != "canceled" {
			t.Fatalf("cancel: %d %v", st, body["status"])
		}
		if _, body := do(t, p, "GET", "/v1/subscriptions/sub_7", nil, ""); body["status"] != "canceled" {
			t.Errorf("GET after cancel: %v", body["status"])
		}
		st, body := do(t, p, "POST", "/v1/subscriptions/sub_7", url.Values{"items[0][price]": {"price_pro"}}, "k-upd")
		if e, _ := body["error"].(map[string]any); st != 400 || e["type"] != "invalid_request_error" {
			t.Errorf("update of a canceled subscription: %d %v", st, body)
		}
		if st, _ := do(t, p, "POST", "/v1/subscriptions/sub_7", url.Values{"metadata[note]": {"x"}}, "k-md"); st != 200 {
			t.Errorf("metadata of a canceled subscription: %d", st)
		}
		for q, want := range map[string]int{"": 0, "all": 1, "canceled": 1, "active": 0} {
			path := "/v1/subscriptions?customer=cus_7"
			if q != "" {
				path += "&status=" + q
			}
			_, list := do(t, p, "GET", path, nil, "")
			if data, ok := list["data"].([]any); !ok || len(data) != want {
				t.Errorf("list status=%q: %v, want %d entries", q, list, want)
			}
		}
		subs := ReplayBilling(p.Requests(), map[string]SubscriptionState{"sub_7": {Status: "active", Price: "price_starter"}})
		if got := subs["sub_7"]; !got.Ended() || got.Price != "price_starter" || got.Metadata["note"] != "x" {
			t.Errorf("replayed %+v", got)
		}
	})

	t.Run("control API for other processes", func(t *testing.T) {
		p := newProxy(t)
		resp, err := http.Post(p.URL+"/__testenv/fail", "application/json",
			strings.NewReader(`{"n":1,"match":"POST /v1/subscriptions/","status":500,"type":"api_error"}`))
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("fail: %v %v", resp, err)
		}
		resp.Body.Close()
		if st, _ := do(t, p, "POST", "/v1/subscriptions/sub_1", url.Values{"cancel_at_period_end": {"true"}}, "op_9:billing"); st != 500 {
			t.Errorf("status %d, want the injected 500", st)
		}
		resp, err = http.Get(p.URL + "/__testenv/requests")
		if err != nil {
			t.Fatal(err)
		}
		var got []StripeRequest
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(got) != 1 || got[0].IdempotencyKey != "op_9:billing" || got[0].Form.Get("cancel_at_period_end") != "true" || got[0].Status != 500 {
			t.Errorf("requests: %+v", got)
		}
		req, _ := http.NewRequest("DELETE", p.URL+"/__testenv/requests", nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("reset: %v %v", resp, err)
		}
		if n := len(p.Requests()); n != 0 {
			t.Errorf("%d requests after reset", n)
		}
		resp, err = http.Post(p.URL+"/__testenv/fail", "application/json", strings.NewReader(`{"n":0}`))
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("bad command: %v %v", resp, err)
		}
	})
	t.Run("a deleted customer reads as deleted and is not deleted twice", func(t *testing.T) {
		p := newProxy(t)
		if st, body := do(t, p, "GET", "/v1/customers/cus_gone", nil, ""); st != 200 || body["deleted"] == true {
			t.Fatalf("before the delete: %d %v", st, body)
		}
		if st, body := do(t, p, "DELETE", "/v1/customers/cus_gone", nil, "op_1:0:purge-customer"); st != 200 || body["deleted"] != true {
			t.Fatalf("delete: %d %v", st, body)
		}
		if st, body := do(t, p, "GET", "/v1/customers/cus_gone", nil, ""); st != 200 || body["deleted"] != true || body["id"] != "cus_gone" {
			t.Errorf("read after the delete: %d %v", st, body)
		}
		st, body := do(t, p, "DELETE", "/v1/customers/cus_gone", nil, "")
		if e, _ := body["error"].(map[string]any); st != 404 || e["code"] != "resource_missing" {
			t.Errorf("second delete: %d %v", st, body)
		}
		if st, body := do(t, p, "GET", "/v1/customers/cus_other", nil, ""); st != 200 || body["deleted"] == true {
			t.Errorf("another customer: %d %v", st, body)
		}
		p.Reset()
		if st, body := do(t, p, "GET", "/v1/customers/cus_gone", nil, ""); st != 200 || body["deleted"] == true {
			t.Errorf("after Reset: %d %v", st, body)
		}
	})
}
