package planchange_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
)

// TestIdempotentUpgradeUnderConcurrency sends 50 identical upgrades with one
// Idempotency-Key at once through the real api bootstrap: exactly one runs (one
// execution, one ACTIVE->UPGRADING transition) and every caller ends with the same 202
// (a 409 idempotency-in-progress while the first is running, then the replay).
func TestIdempotentUpgradeUnderConcurrency(t *testing.T) {
	s := st.Shared(t)
	id := "idem-techstart"
	st.Clone(t, s, "tenant_techstart", id)
	ev := st.EventWithHeaders(t, "POST", "/tenants/"+id+"/upgrade", "/tenants/{id}/upgrade", map[string]string{"id": id},
		map[string]any{"plan": "starter"}, st.Admin, map[string]string{"Idempotency-Key": "upgrade-" + id})

	const n = 50
	answers := make([]events.APIGatewayV2HTTPResponse, n)
	inProgress := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(60 * time.Second)
			for {
				r := st.Call(t, s, ev)
				if r.StatusCode != 409 || time.Now().After(deadline) {
					answers[i] = r
					return
				}
				if p := st.Body(t, r); p["type"] != "urn:tenantflow:problem:idempotency-in-progress" {
					answers[i] = r
					return
				}
				inProgress[i]++
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	first := answers[0]
	replayed, retried := 0, 0
	for i, a := range answers {
		if a.StatusCode != 202 || a.Body != first.Body || a.Headers["Location"] != first.Headers["Location"] {
			t.Fatalf("answer %d: %d %s, want the same 202 as %s", i, a.StatusCode, a.Body, first.Body)
		}
		if a.Headers["Idempotent-Replayed"] == "true" {
			replayed++
		}
		if inProgress[i] > 0 {
			retried++
		}
	}
	if replayed != n-1 {
		t.Fatalf("%d replays, want %d", replayed, n-1)
	}
	t.Logf("%d identical 202 answers (%d replays); %d callers saw 409 idempotency-in-progress first", n, replayed, retried)
	opID := st.OperationID(t, first)
	if op := st.WaitDone(t, s, opID); op["status"] != "SUCCEEDED" {
		t.Fatalf("operation %v", op)
	}
	list, err := s.SFNClient().ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(s.StateMachines["UpgradeStateMachine"])})
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, e := range list.Executions {
		if aws.ToString(e.Name) == opID {
			runs++
		}
	}
	if runs != 1 {
		t.Fatalf("%d executions named %s", runs, opID)
	}
	if tr := st.Transitions(t, s, id); !slices.Equal(tr, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}) {
		t.Fatalf("audit %v", tr)
	}
	if pc := priceChanges(s, "sub_"+id); len(pc) != 1 {
		t.Fatalf("stripe price changes %v", pc)
	}
	// After the flow, the key still replays the same 202.
	if r := st.Call(t, s, ev); r.StatusCode != 202 || r.Body != first.Body {
		t.Fatalf("late replay %d %s", r.StatusCode, r.Body)
	}
}
