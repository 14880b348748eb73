package sfnsvc

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// waitToken waits until the "request" function has been handed its n-th task token
// for tenant and returns it.
func (l *fakeLambda) waitToken(t *testing.T, tenant string, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		got := slices.Clone(l.tokens[tenant])
		l.mu.Unlock()
		if len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d tokens handed out, want %d", tenant, len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apiErrorCode is the AWS error code of err ("" if none).
func apiErrorCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func eventOf(events []types.HistoryEvent, typ types.HistoryEventType) *types.HistoryEvent {
	for i := range events {
		if events[i].Type == typ {
			return &events[i]
		}
	}
	return nil
}

// TestCallbackPattern runs .waitForTaskToken Tasks the way Step Functions does: the
// function gets $$.Task.Token, the execution waits for SendTaskSuccess/SendTaskFailure,
// TimeoutSeconds and HeartbeatSeconds end the wait with catchable errors, a retry
// issues a new token, and a token whose task has ended answers TaskTimedOut.
func TestCallbackPattern(t *testing.T) {
	lambda := newFakeLambda(t)
	cfg := testConfig(t, lambda.srv.URL, &syncBuffer{})
	cfg.StateMachines = append(cfg.StateMachines, StateMachine{Name: "callback", DefinitionPath: "testdata/callback.asl.json",
		Substitutions: map[string]string{"RequestFunctionArn": functionARN("request")}})
	svc := startService(t, cfg)
	c := newClient(svc.Endpoint())
	ctx := context.Background()
	input := func(tenant, mode string, timeout, heartbeat int) map[string]any {
		return map[string]any{"tenant_id": tenant, "mode": mode, "timeout_seconds": timeout, "heartbeat_seconds": heartbeat}
	}

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		run := start(t, c, "callback", "", input("t-success", "ok", 30, 20))
		token := lambda.waitToken(t, "t-success", 1)
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String("not json")}); apiErrorCode(err) != "InvalidOutput" {
			t.Errorf("output that is not JSON: %v, want InvalidOutput", err)
		}
		if _, err := c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)}); err != nil {
			t.Fatalf("SendTaskHeartbeat: %v", err)
		}
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(`{"provisioned":true}`)}); err != nil {
			t.Fatalf("SendTaskSuccess: %v", err)
		}
		d := waitDone(t, c, aws.ToString(run.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusSucceeded)
		out := decode(t, d.Output)
		if answer, _ := out["answer"].(map[string]any); answer["provisioned"] != true {
			t.Errorf("task result at ResultPath: %v", out)
		}
		events := history(t, c, aws.ToString(run.ExecutionArn), 0, false)
		types_ := strings.Join(eventTypes(events), " ")
		if !strings.Contains(types_, "TaskStateEntered TaskScheduled TaskStarted TaskSubmitted TaskSucceeded TaskStateExited") {
			t.Errorf("history: %s", types_)
		}
		sched := eventOf(events, types.HistoryEventTypeTaskScheduled).TaskScheduledEventDetails
		if aws.ToString(sched.Resource) != "invoke.waitForTaskToken" || aws.ToString(sched.ResourceType) != "lambda" ||
			aws.ToInt64(sched.TimeoutInSeconds) != 30 || aws.ToInt64(sched.HeartbeatInSeconds) != 20 ||
			!strings.Contains(aws.ToString(sched.Parameters), token) {
			t.Errorf("TaskScheduled: %+v", sched)
		}
		if got := aws.ToString(eventOf(events, types.HistoryEventTypeTaskSucceeded).TaskSucceededEventDetails.Output); got != `{"provisioned":true}` {
			t.Errorf("TaskSucceeded output %s", got)
		}
		if !strings.Contains(aws.ToString(eventOf(events, types.HistoryEventTypeTaskSubmitted).TaskSubmittedEventDetails.Output), `"requested":true`) {
			t.Errorf("TaskSubmitted does not carry the function's answer")
		}
		// The task is closed: every later call on its token is TaskTimedOut, as in AWS.
		_, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(`{}`)})
		if apiErrorCode(err) != "TaskTimedOut" {
			t.Errorf("second SendTaskSuccess: %v, want TaskTimedOut", err)
		}
		if _, err := c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token)}); apiErrorCode(err) != "TaskTimedOut" {
			t.Errorf("SendTaskFailure after success: %v, want TaskTimedOut", err)
		}
		if _, err := c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)}); apiErrorCode(err) != "TaskTimedOut" {
			t.Errorf("SendTaskHeartbeat after success: %v, want TaskTimedOut", err)
		}
	})

	t.Run("failure, retried with a new token", func(t *testing.T) {
		t.Parallel()
		run := start(t, c, "callback", "", input("t-failure", "ok", 30, 20))
		first := lambda.waitToken(t, "t-failure", 1)
		if _, err := c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(first), Error: aws.String("RetryMe"), Cause: aws.String("try again")}); err != nil {
			t.Fatalf("SendTaskFailure: %v", err)
		}
		second := lambda.waitToken(t, "t-failure", 2)
		if second == first {
			t.Fatal("the retry reused the first attempt's token")
		}
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(first), Output: aws.String(`{}`)}); apiErrorCode(err) != "TaskTimedOut" {
			t.Errorf("the failed attempt's token: %v, want TaskTimedOut", err)
		}
		if _, err := c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(second), Error: aws.String("AppProvisioningFailed"), Cause: aws.String("no capacity")}); err != nil {
			t.Fatalf("SendTaskFailure: %v", err)
		}
		d := waitDone(t, c, aws.ToString(run.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusSucceeded) // caught into Refused (a Pass that ends)
		caught, _ := decode(t, d.Output)["error"].(map[string]any)
		if caught["Error"] != "AppProvisioningFailed" || caught["Cause"] != "no capacity" {
			t.Errorf("caught error: %v", caught)
		}
		events := history(t, c, aws.ToString(run.ExecutionArn), 0, false)
		var failed []string
		for _, e := range events {
			if e.Type == types.HistoryEventTypeTaskFailed {
				failed = append(failed, aws.ToString(e.TaskFailedEventDetails.Error))
			}
		}
		if !slices.Equal(failed, []string{"RetryMe", "AppProvisioningFailed"}) {
			t.Errorf("TaskFailed errors %v", failed)
		}
	})

	t.Run("function error fails the task", func(t *testing.T) {
		t.Parallel()
		run := start(t, c, "callback", "", input("t-crash", "crash", 30, 20))
		// The first invocation fails (RetryMe, retried); the second waits for its token.
		token := lambda.waitToken(t, "t-crash", 2)
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(lambda.waitToken(t, "t-crash", 1)), Output: aws.String(`{}`)}); apiErrorCode(err) != "TaskTimedOut" {
			t.Errorf("token of the failed invocation: %v, want TaskTimedOut", err)
		}
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(`{"n":2}`)}); err != nil {
			t.Fatalf("SendTaskSuccess: %v", err)
		}
		wantStatus(t, waitDone(t, c, aws.ToString(run.ExecutionArn)), types.ExecutionStatusSucceeded)
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		run := start(t, c, "callback", "", input("t-timeout", "ok", 2, 1))
		token := lambda.waitToken(t, "t-timeout", 1)
		// Heartbeats do not extend TimeoutSeconds, the task's maximum duration.
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
					_, _ = c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)})
				}
			}
		}()
		d := waitDone(t, c, aws.ToString(run.ExecutionArn))
		close(stop)
		wantStatus(t, d, types.ExecutionStatusFailed)
		if aws.ToString(d.Error) != "TimedOut" {
			t.Errorf("error %s, want the TimedOut Fail state (States.Timeout caught)", aws.ToString(d.Error))
		}
		events := history(t, c, aws.ToString(run.ExecutionArn), 0, false)
		to := eventOf(events, types.HistoryEventTypeTaskTimedOut)
		if to == nil || aws.ToString(to.TaskTimedOutEventDetails.Error) != "States.Timeout" {
			t.Fatalf("no TaskTimedOut States.Timeout in %v", eventTypes(events))
		}
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(`{}`)}); apiErrorCode(err) != "TaskTimedOut" {
			t.Errorf("answer after the timeout: %v, want TaskTimedOut", err)
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		t.Parallel()
		begin := time.Now()
		run := start(t, c, "callback", "", input("t-heartbeat", "ok", 30, 1))
		token := lambda.waitToken(t, "t-heartbeat", 1)
		// Heartbeats every 300 ms keep the task alive past its 1 s heartbeat...
		for time.Since(begin) < 1800*time.Millisecond {
			if _, err := c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)}); err != nil {
				t.Fatalf("SendTaskHeartbeat: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		// ...and when they stop, States.HeartbeatTimeout ends it.
		d := waitDone(t, c, aws.ToString(run.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusFailed)
		if aws.ToString(d.Error) != "HeartbeatLost" || time.Since(begin) < 2*time.Second {
			t.Errorf("error %s after %v, want HeartbeatLost after the heartbeats stopped", aws.ToString(d.Error), time.Since(begin))
		}
		to := eventOf(history(t, c, aws.ToString(run.ExecutionArn), 0, false), types.HistoryEventTypeTaskTimedOut)
		if to == nil || aws.ToString(to.TaskTimedOutEventDetails.Error) != "States.HeartbeatTimeout" {
			t.Errorf("TaskTimedOut: %+v", to)
		}
	})

	t.Run("stopped execution", func(t *testing.T) {
		t.Parallel()
		run := start(t, c, "callback", "", input("t-stop", "ok", 30, 20))
		token := lambda.waitToken(t, "t-stop", 1)
		if _, err := c.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: run.ExecutionArn}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(`{}`)}); apiErrorCode(err) != "TaskTimedOut" {
			t.Errorf("answer to a stopped execution: %v, want TaskTimedOut", err)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		t.Parallel()
		if _, err := c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String("not-a-token"), Output: aws.String(`{}`)}); apiErrorCode(err) != "InvalidToken" {
			t.Errorf("malformed token: %v, want InvalidToken", err)
		}
		unknown := "AQB" + base64.RawURLEncoding.EncodeToString([]byte("arn:aws:states:us-east-1:123456789012:execution:callback:x#"+strings.Repeat("ab", 24)))
		if _, err := c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(unknown)}); apiErrorCode(err) != "TaskDoesNotExist" {
			t.Errorf("unknown token: %v, want TaskDoesNotExist", err)
		}
		if _, err := c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(unknown), Error: aws.String(strings.Repeat("e", 257))}); err == nil {
			t.Error("an error name over 256 characters was accepted")
		}
	})
}

// TestCallbackNeedsTheToken: like AWS, a .waitForTaskToken Task that does not pass
// $$.Task.Token on is refused when the state machine is created.
func TestCallbackNeedsTheToken(t *testing.T) {
	dir := t.TempDir()
	def := `{"StartAt":"W","States":{"W":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",` +
		`"Parameters":{"FunctionName":"f","Payload":{"x.$":"$"}},"End":true}}}`
	path := dir + "/w.asl.json"
	if err := os.WriteFile(path, []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "http://127.0.0.1:1", &syncBuffer{})
	cfg.StateMachines = []StateMachine{{Name: "w", DefinitionPath: path}}
	svc, err := Start(context.Background(), cfg)
	if err == nil {
		svc.Close()
		t.Fatal("started a machine whose callback Task does not pass the token")
	}
	if !strings.Contains(err.Error(), "$$.Task.Token") {
		t.Errorf("error does not say why: %v", err)
	}
}
