package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestConcurrentDeletesOneAccepted sends two DELETEs of one tenant at the same moment
// through the real api bootstrap, for several tenants: the API reserves the tenant
// before it starts the execution, so exactly one request is accepted and the other is
// a 409 conflict naming the operation that holds the tenant (not two 202s of which
// one fails later).
func TestConcurrentDeletesOneAccepted(t *testing.T) {
	s := st.Shared(t)
	const pairs = 4
	for i := range pairs {
		id := fmt.Sprintf("twice-delete-%d", i)
		st.Clone(t, s, "tenant_techstart", id)
		answers := concurrently(t, s, 2, st.Event(t, "DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil, st.Admin))
		checkOneAccepted(t, s, id, answers)
		if tn := st.Tenant(t, s, id); tn.State != tenant.Deleted {
			t.Errorf("%s: %s after the accepted deletion", id, tn.State)
		}
	}
}

// concurrently sends the same API event n times at once and returns the answers.
func concurrently(t *testing.T, s *stack.Stack, n int, ev []byte) []events.APIGatewayV2HTTPResponse {
	t.Helper()
	out := make([]events.APIGatewayV2HTTPResponse, n)
	var ready, done sync.WaitGroup
	ready.Add(n)
	start := make(chan struct{})
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i] = st.Call(t, s, ev)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out
}

// checkOneAccepted: one 202 whose operation succeeds, the others 409 conflict naming
// that operation.
func checkOneAccepted(t *testing.T, s *stack.Stack, id string, answers []events.APIGatewayV2HTTPResponse) {
	t.Helper()
	var accepted []string
	var refused []events.APIGatewayV2HTTPResponse
	for _, a := range answers {
		switch a.StatusCode {
		case http.StatusAccepted:
			accepted = append(accepted, st.OperationID(t, a))
		default:
			refused = append(refused, a)
		}
	}
	if len(accepted) != 1 {
		for _, op := range accepted {
			done := st.WaitDone(t, s, op)
			t.Logf("%s: accepted %s ended %v %v", id, op, done["status"], done["error"])
		}
		t.Fatalf("%s: %d of %d concurrent requests accepted %v, want exactly 1", id, len(accepted), len(answers), accepted)
	}
	for _, r := range refused {
		p := st.Body(t, r)
		detail, _ := p["detail"].(string)
		if r.StatusCode != http.StatusConflict || p["type"] != "urn:tenantflow:problem:conflict" || !strings.Contains(detail, accepted[0]) {
			t.Errorf("%s: refused with %d %s, want 409 conflict naming %s", id, r.StatusCode, r.Body, accepted[0])
		}
	}
	if op := st.WaitDone(t, s, accepted[0]); op["status"] != "SUCCEEDED" {
		t.Errorf("%s: accepted operation %v", id, op)
	}
}

// reconcileLater runs the reconciler as its schedule would one period from now, past
// the grace an operation's start is given.
func reconcileLater(t *testing.T, s *stack.Stack) map[string]any {
	t.Helper()
	return st.Reconcile(t, s, time.Now().UTC().Add(5*time.Minute))
}

// checkEnded: after one reconcile run the operation is FAILED (record and API), the
// tenant is back in state, held by nothing, and the Open index no longer holds it.
func checkEnded(t *testing.T, s *stack.Stack, id, opID string, state tenant.State) {
	t.Helper()
	op, err := s.Store().GetOperation(context.Background(), opID)
	if err != nil {
		t.Fatal(err)
	}
	tn := st.Tenant(t, s, id)
	t.Logf("%s: operation %s %s (%s: %s)", id, opID, op.Status, op.Error, op.Cause)
	if op.Status != tenant.OpFailed || op.Error == "" {
		t.Errorf("%s: operation %s is %s (%s: %s) after one reconcile run, want FAILED with the reason", id, opID, op.Status, op.Error, op.Cause)
	}
	if tn.Operation != "" || tn.State != state {
		t.Errorf("%s: tenant %s held by %q after one reconcile run, want %s held by nothing", id, tn.State, tn.Operation, state)
	}
	resp := st.Call(t, s, st.Event(t, "GET", "/operations/"+opID, "/operations/{id}", map[string]string{"id": opID}, nil, st.Admin))
	if got := st.Body(t, resp)["status"]; got != "FAILED" {
		t.Errorf("%s: GET /operations/%s says %v", id, opID, got)
	}
	if t.Failed() {
		return
	}
	if open := st.OpenOperations(t, s, id); len(open) != 0 {
		t.Errorf("%s: the Open index still holds %v", id, open)
	}
}

// TestStuckOperationsEnd breaks the start of a deletion in each way an operation used
// to stay RUNNING for good, from outside (the Lambda service, the AWS endpoints the API
// talks to, the Step Functions service), and checks that one run of the reconciler
// ends it truthfully and frees the tenant.
func TestStuckOperationsEnd(t *testing.T) {
	t.Run("claim and release always failing", func(t *testing.T) {
		s := st.Shared(t)
		id := "stuck-claim-release"
		st.Clone(t, s, "tenant_techstart", id)
		defer s.Lambda.ClearFaults()
		for _, fn := range []string{"LifecycleClaimFunction", "LifecycleReleaseFunction"} {
			if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault", Message: "injected in " + fn}); err != nil {
				t.Fatal(err)
			}
		}
		opID := st.OperationID(t, deleteTenant(t, s, id, nil, st.Admin))
		if got := st.WaitExecutionEnded(t, s, "DeletionStateMachine", opID); got != "FAILED" {
			t.Fatalf("execution %s", got)
		}
		s.Lambda.ClearFaults()
		res := reconcileLater(t, s)
		t.Logf("reconcile: %v", res)
		checkEnded(t, s, id, opID, tenant.Active)
	})

	t.Run("StartExecution refused", func(t *testing.T) {
		s := st.Shared(t)
		id := "stuck-start-refused"
		st.Clone(t, s, "tenant_techstart", id)
		// Refused alone: the API frees the tenant and fails the operation at once.
		s.AWSFaults.Add(stack.AWSFault{Operations: []string{"StartExecution"}, Contains: id, Count: 1,
			Status: http.StatusBadRequest, ErrorType: "ExecutionLimitExceeded", Message: "too many executions (injected)"})
		if r := deleteTenant(t, s, id, nil, st.Admin); r.StatusCode == http.StatusAccepted {
			t.Fatalf("accepted although StartExecution was refused: %s", r.Body)
		}
		if running := st.RunningOperations(t, s, id); len(running) != 0 {
			t.Errorf("operations %v left RUNNING by a refused start", running)
		}
		if tn := st.Tenant(t, s, id); tn.Operation != "" {
			t.Errorf("tenant held by %s after a refused start", tn.Operation)
		}
		// Refused, and the API's next write fails too: nothing the API does can end
		// the operation; the reconciler must.
		var opID string
		s.AWSFaults.Add(stack.AWSFault{Operations: []string{"StartExecution"}, Contains: id, Count: 1,
			Status: http.StatusBadRequest, ErrorType: "ExecutionLimitExceeded", Message: "too many executions (injected)",
			OnMatch: func(body []byte) {
				opID = executionName(body)
				s.AWSFaults.Add(stack.AWSFault{Operations: []string{"PutItem", "UpdateItem", "TransactWriteItems"}, Count: -1,
					Status: http.StatusInternalServerError, ErrorType: "InternalServerError", Message: "write failed (injected)"})
			}})
		if r := deleteTenant(t, s, id, nil, st.Admin); r.StatusCode == http.StatusAccepted {
			t.Fatalf("accepted although StartExecution was refused: %s", r.Body)
		}
		s.AWSFaults.Clear()
		if opID == "" {
			t.Fatal("no StartExecution reached the endpoint")
		}
		res := reconcileLater(t, s)
		t.Logf("reconcile: %v", res)
		checkEnded(t, s, id, opID, tenant.Active)
	})

	t.Run("execution stopped before its claim", func(t *testing.T) {
		s := st.Shared(t)
		id := "stuck-stopped"
		st.Clone(t, s, "tenant_techstart", id)
		defer s.Lambda.ClearFaults()
		// The claim step is slow to answer; the execution is stopped meanwhile.
		if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "LifecycleClaimFunction", Count: 1, Delay: 3 * time.Second,
			ErrorType: "Lambda.ServiceException", Message: "slow claim (injected)"}); err != nil {
			t.Fatal(err)
		}
		opID := st.OperationID(t, deleteTenant(t, s, id, nil, st.Admin))
		if _, err := s.SFNClient().StopExecution(context.Background(), &sfn.StopExecutionInput{
			ExecutionArn: aws.String(st.ExecutionARN(s, "DeletionStateMachine", opID)), Error: aws.String("StoppedByOperator"),
		}); err != nil {
			t.Fatal(err)
		}
		if got := st.WaitExecutionEnded(t, s, "DeletionStateMachine", opID); got != "ABORTED" {
			t.Fatalf("execution %s", got)
		}
		time.Sleep(3500 * time.Millisecond) // the delayed claim invocation has answered (faulted)
		res := reconcileLater(t, s)
		t.Logf("reconcile: %v", res)
		checkEnded(t, s, id, opID, tenant.Active)
	})

	t.Run("API killed between its writes", func(t *testing.T) {
		s := st.Shared(t)
		id := "stuck-api-killed"
		st.Clone(t, s, "tenant_techstart", id)
		var opID string
		s.AWSFaults.Add(stack.AWSFault{Operations: []string{"StartExecution"}, Contains: id, Count: 1, Drop: true,
			OnMatch: func(body []byte) {
				opID = executionName(body)
				if n, err := s.Lambda.Kill("ApiFunction"); err != nil || n == 0 {
					t.Errorf("kill the API: %d processes, %v", n, err)
				}
			}})
		res, err := s.Lambda.Invoke(context.Background(), "ApiFunction", st.Event(t, "DELETE", "/tenants/"+id, "/tenants/{id}", map[string]string{"id": id}, nil, st.Admin))
		if err != nil {
			t.Fatal(err)
		}
		if res.FunctionError == "" {
			t.Fatalf("the API answered although it was killed: %s", res.Payload)
		}
		s.AWSFaults.Clear()
		if opID == "" {
			t.Fatal("no StartExecution reached the endpoint")
		}
		if got := st.ExecutionStatus(t, s, "DeletionStateMachine", opID); got != "" {
			t.Fatalf("execution %s exists (%s); the test needs one that never started", opID, got)
		}
		out := reconcileLater(t, s)
		t.Logf("reconcile: %v", out)
		checkEnded(t, s, id, opID, tenant.Active)
	})
}

// executionName reads the execution name from a StartExecution request body.
func executionName(body []byte) string {
	var in struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(body, &in)
	return in.Name
}
