package planchange_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestConcurrentUpgradesOneAccepted sends two upgrades of one tenant at the same
// moment through the real api bootstrap, for several tenants: exactly one is accepted,
// the other is a 409 conflict naming the operation that holds the tenant.
func TestConcurrentUpgradesOneAccepted(t *testing.T) {
	s := st.Shared(t)
	const pairs = 4
	for i := range pairs {
		id := fmt.Sprintf("twice-upgrade-%d", i)
		st.Clone(t, s, "tenant_techstart", id)
		ev := st.Event(t, "POST", "/tenants/"+id+"/upgrade", "/tenants/{id}/upgrade", map[string]string{"id": id}, map[string]any{"plan": "starter"}, st.Admin)
		answers := make([]events.APIGatewayV2HTTPResponse, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j := range answers {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; answers[j] = st.Call(t, s, ev) }()
		}
		close(start)
		wg.Wait()
		var accepted []string
		for _, a := range answers {
			if a.StatusCode == http.StatusAccepted {
				accepted = append(accepted, st.OperationID(t, a))
			}
		}
		if len(accepted) != 1 {
			for _, op := range accepted {
				done := st.WaitDone(t, s, op)
				t.Logf("%s: accepted %s ended %v %v", id, op, done["status"], done["error"])
			}
			t.Fatalf("%s: %d of 2 concurrent upgrades accepted, want exactly 1", id, len(accepted))
		}
		for _, a := range answers {
			if a.StatusCode == http.StatusAccepted {
				continue
			}
			p := st.Body(t, a)
			detail, _ := p["detail"].(string)
			if a.StatusCode != http.StatusConflict || p["type"] != "urn:tenantflow:problem:conflict" || !strings.Contains(detail, accepted[0]) {
				t.Errorf("%s: refused with %d %s, want 409 conflict naming %s", id, a.StatusCode, a.Body, accepted[0])
			}
		}
		if op := st.WaitDone(t, s, accepted[0]); op["status"] != "SUCCEEDED" {
			t.Errorf("%s: %v", id, op)
		}
		if tn := st.Tenant(t, s, id); tn.Plan != tenant.Starter {
			t.Errorf("%s: on %s", id, tn.Plan)
		}
	}
}

// TestSweepReservesBeforeStarting: a period-end downgrade started by the sweep holds
// its tenant from the moment it is started, before its first step runs, so a deletion
// requested in between is a 409 naming the downgrade rather than a 202 that takes the
// tenant from it (and fails the downgrade).
func TestSweepReservesBeforeStarting(t *testing.T) {
	s := st.Shared(t)
	id := "sweep-reserves"
	st.Clone(t, s, "tenant_acme", id)
	opID := st.OperationID(t, planChange(t, s, tenant.KindDowngrade, id, tenant.Free, true))
	due := st.Tenant(t, s, id).PendingChange.EffectiveAt
	defer s.Lambda.ClearFaults()
	// The downgrade's first step is slow to be called (once), as after a cold start.
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "PlanValidateFunction", Count: 1, Delay: 3 * time.Second,
		ErrorType: "Lambda.ServiceException", Message: "slow first call (injected)"}); err != nil {
		t.Fatal(err)
	}
	if r := sweepAt(t, s, due.Add(time.Minute)); !slices.Contains(r.Started, opID) {
		t.Fatalf("sweep started %v, want %s", r.Started, opID)
	}
	r := st.Call(t, s, st.Event(t, "DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil, st.Admin))
	p := st.Body(t, r)
	detail, _ := p["detail"].(string)
	if r.StatusCode != http.StatusConflict || !strings.Contains(detail, opID) {
		if r.StatusCode == http.StatusAccepted {
			st.WaitDone(t, s, st.OperationID(t, r))
		}
		t.Fatalf("deletion while the sweep's downgrade starts: %d %s, want 409 naming %s", r.StatusCode, r.Body, opID)
	}
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("downgrade %v", op)
	}
	if tn := st.Tenant(t, s, id); tn.Plan != tenant.Free || tn.Operation != "" || tn.PendingChange != nil {
		t.Fatalf("after the downgrade: %+v", tn)
	}
}
