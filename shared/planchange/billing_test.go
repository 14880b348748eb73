package planchange_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestOperatorRetryUsesNewIdempotencyKeys: Stripe stores the first answer of an
// idempotency key for 24 hours, a 500 included, and replays it to every later request
// with that key (the recording proxy does the same). An upgrade's commit fails and its
// billing rollback meets a 500: every Step Functions retry of the rollback, in the
// same attempt and so with the same key, gets that 500 back, and the operation needs
// attention. The operator retry is a new attempt: its keys are new, and it succeeds.
func TestOperatorRetryUsesNewIdempotencyKeys(t *testing.T) {
	s := st.Shared(t)
	id := "idem-retry"
	st.Clone(t, s, "tenant_techstart", id) // free
	defer s.Lambda.ClearFaults()
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "PlanCommitFunction", Count: -1, ErrorType: "InjectedFault", Message: "commit failed"}); err != nil {
		t.Fatal(err)
	}
	s.Stripe.FailKey(1, ":billing-rollback", 500, "api_error")
	opID := st.OperationID(t, planChange(t, s, tenant.KindUpgrade, id, tenant.Starter, false))
	op := st.WaitDone(t, s, opID)
	if op["status"] != "FAILED" || op["needs_attention"] != true || !slices.Equal(anyStrings(op["compensation_incomplete"]), []string{"billing"}) {
		t.Fatalf("operation %v", op)
	}
	posts := s.Stripe.RequestsTo("POST /v1/subscriptions/sub_" + id)
	var first []string
	for _, r := range posts {
		if strings.HasSuffix(r.IdempotencyKey, ":billing-rollback") {
			first = append(first, fmt.Sprintf("%s=%d replayed=%v", r.IdempotencyKey, r.Status, r.Replayed))
		}
	}
	if len(first) < 2 || !strings.HasSuffix(first[1], "=500 replayed=true") {
		t.Fatalf("rollback requests %v: want the 500 replayed to the same key", first)
	}

	s.Lambda.ClearFaults()
	resp := st.Call(t, s, st.Event(t, "POST", "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil, st.Admin))
	if resp.StatusCode != 202 {
		t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
	}
	op = st.WaitDone(t, s, opID)
	if op["status"] != "FAILED" || op["needs_attention"] == true || op["compensation_incomplete"] != nil {
		t.Fatalf("after retry: %v", op)
	}
	checkSettled(t, s, id, tenant.Free)
	var keys []string
	for _, r := range s.Stripe.RequestsTo("POST /v1/subscriptions/sub_" + id) {
		keys = append(keys, fmt.Sprintf("%s=%d", r.IdempotencyKey, r.Status))
	}
	want := []string{opID + ":0:billing=200", opID + ":0:billing-rollback=500", opID + ":1:billing-rollback=200"}
	if got := slices.Compact(keys); !slices.Equal(got, want) {
		t.Errorf("updates %v, want %v", got, want)
	}
}

// TestPlanChangeOfEndedSubscriptionRefused: a plan change never restarts billing. On
// a subscription Stripe has ended, the upgrade fails with EndedError, sends Stripe no
// update (it would refuse one), and its rollback has no price to move back, so nothing
// needs attention.
func TestPlanChangeOfEndedSubscriptionRefused(t *testing.T) {
	s := st.Shared(t)
	id := "ended-upgrade"
	st.Clone(t, s, "tenant_techstart", id) // free
	s.Stripe.SetSubscription(testenv.SubscriptionState{ID: "sub_" + id, Customer: "cus_" + id, Status: "canceled", Price: "price_free"})
	opID := st.OperationID(t, planChange(t, s, tenant.KindUpgrade, id, tenant.Starter, false))
	op := st.WaitDone(t, s, opID)
	if op["status"] != "FAILED" || op["error"] != "EndedError" || op["needs_attention"] == true {
		t.Fatalf("operation %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Active || tn.Plan != tenant.Free || tn.Operation != "" {
		t.Fatalf("tenant %s on %s held by %q", tn.State, tn.Plan, tn.Operation)
	}
	if posts := s.Stripe.RequestsTo("POST /v1/subscriptions/sub_" + id); len(posts) != 0 {
		t.Errorf("%d updates sent to an ended subscription", len(posts))
	}
}
