package sfnsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

const (
	region  = "us-east-1"
	account = "123456789012"
)

func functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, name)
}

func stateMachineARN(name string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", region, account, name)
}

// fakeLambda implements the Lambda Invoke API for the test functions. What a function
// does depends on the "mode" in its payload; calls are counted per function and tenant.
type fakeLambda struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls map[string]int
	gates map[string]chan struct{}
}

func newFakeLambda(t *testing.T) *fakeLambda {
	l := &fakeLambda{calls: map[string]int{}, gates: map[string]chan struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{fn}/invocations", l.invoke)
	l.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		l.mu.Lock()
		for _, ch := range l.gates {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		l.mu.Unlock()
		l.srv.Close()
	})
	return l
}

func (l *fakeLambda) invoke(w http.ResponseWriter, r *http.Request) {
	arn := r.PathValue("fn")
	fn := arn[strings.LastIndex(arn, ":")+1:]
	body, _ := io.ReadAll(r.Body)
	var payload any
	if err := json.Unmarshal(body, &payload); err != nil {
		fnError(w, "BadPayload", err.Error())
		return
	}
	obj, _ := payload.(map[string]any)
	tenant, _ := obj["tenant_id"].(string)
	mode, _ := obj["mode"].(string)
	n := l.count(fn, tenant)

	switch fn {
	case "validate":
		switch mode {
		case "ok":
			ok(w, map[string]any{"approved": true})
		case "deny":
			ok(w, map[string]any{"approved": false})
		case "flaky": // a Lambda service error on the first call only
			if n == 1 {
				serviceError(w)
				return
			}
			ok(w, map[string]any{"approved": true})
		case "down":
			serviceError(w)
		case "over_limit":
			fnError(w, "UsageExceedsLimitError", "users: 45 > limit 10")
		case "boom":
			fnError(w, "DatabaseUnavailableError", "connection refused")
		case "slow":
			select {
			case <-l.gate(tenant):
			case <-r.Context().Done():
				return
			}
			ok(w, map[string]any{"approved": true})
		default:
			ok(w, map[string]any{"approved": true})
		}
	case "commit":
		if obj["fail_commit"] == true {
			fnError(w, "UsageExceedsLimitError", "storage_gb: 80 > limit 10")
			return
		}
		ok(w, map[string]any{"committed": true, "tenant_id": tenant})
	case "rollback":
		ok(w, map[string]any{})
	case "echo":
		ok(w, payload)
	case "double":
		num, _ := payload.(float64)
		ok(w, num*2)
	default:
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"Type":"User","message":"Function not found: %s"}`, arn)
	}
}

func ok(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fnError answers like Lambda does when the handler returned an error.
func fnError(w http.ResponseWriter, errorType, message string) {
	w.Header().Set("X-Amz-Function-Error", "Unhandled")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"errorType": errorType, "errorMessage": message})
}

// serviceError answers like the Lambda service itself failing (HTTP 500).
func serviceError(w http.ResponseWriter) {
	w.Header().Set("X-Amzn-ErrorType", "ServiceException")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, `{"Type":"Service","message":"Lambda had a bad moment"}`)
}

func (l *fakeLambda) count(fn, tenant string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[fn+"/"+tenant]++
	return l.calls[fn+"/"+tenant]
}

func (l *fakeLambda) Calls(fn, tenant string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[fn+"/"+tenant]
}

func (l *fakeLambda) gate(tenant string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.gates[tenant]
	if !ok {
		ch = make(chan struct{})
		l.gates[tenant] = ch
	}
	return ch
}

// Release lets the "slow" calls of tenant return.
func (l *fakeLambda) Release(tenant string) { close(l.gate(tenant)) }

func (l *fakeLambda) WaitCalls(t *testing.T, fn, tenant string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Calls(fn, tenant) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s was called %d times for %s, want %d", fn, l.Calls(fn, tenant), tenant, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer collects the service log from two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func repoPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pipelineSubstitutions() map[string]string {
	return map[string]string{
		"ValidateFunctionArn": functionARN("validate"),
		"CommitFunctionArn":   functionARN("commit"),
		"RollbackFunctionArn": functionARN("rollback"),
	}
}

func testConfig(t *testing.T, lambdaEndpoint string, log io.Writer) Config {
	t.Helper()
	return Config{
		Server: repoPath(t, "tools/sfn-local/server.mjs"),
		StateMachines: []StateMachine{
			{Name: "pipeline", DefinitionPath: "testdata/pipeline.asl.json", Substitutions: pipelineSubstitutions()},
			{Name: "pipeline-list", DefinitionPath: "testdata/pipeline.asl.json", Substitutions: pipelineSubstitutions()},
			{Name: "integrations", DefinitionPath: "testdata/integrations.asl.json", Substitutions: map[string]string{
				"EchoFunctionArn":   functionARN("echo"),
				"DoubleFunctionArn": functionARN("double"),
			}},
		},
		LambdaEndpoint:     lambdaEndpoint,
		RetryIntervalsZero: true,
		Region:             region,
		AccountID:          account,
		Log:                log,
	}
}

func startService(t *testing.T, cfg Config) *Service {
	t.Helper()
	begin := time.Now()
	svc, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("service up at %s in %v", svc.Endpoint(), time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return svc
}

func newClient(endpoint string) *sfn.Client {
	return sfn.New(sfn.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func start(t *testing.T, c *sfn.Client, machine, name string, input any) *sfn.StartExecutionOutput {
	t.Helper()
	in := &sfn.StartExecutionInput{StateMachineArn: aws.String(stateMachineARN(machine)), Input: aws.String(mustJSON(t, input))}
	if name != "" {
		in.Name = aws.String(name)
	}
	out, err := c.StartExecution(context.Background(), in)
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	return out
}

func waitDone(t *testing.T, c *sfn.Client, arn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := c.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("DescribeExecution: %v", err)
		}
		if d.Status != types.ExecutionStatusRunning {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still RUNNING", arn)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// history reads every page, maxResults at a time.
func history(t *testing.T, c *sfn.Client, arn string, maxResults int32, reverse bool) []types.HistoryEvent {
	t.Helper()
	var events []types.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(c, &sfn.GetExecutionHistoryInput{
		ExecutionArn: aws.String(arn), MaxResults: maxResults, ReverseOrder: reverse,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("GetExecutionHistory: %v", err)
		}
		events = append(events, page.Events...)
	}
	return events
}

func eventTypes(events []types.HistoryEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = string(e.Type)
	}
	return out
}

func checkBookends(t *testing.T, events []types.HistoryEvent, last types.HistoryEventType) {
	t.Helper()
	if len(events) < 2 {
		t.Fatalf("history has %d events", len(events))
	}
	if events[0].Type != types.HistoryEventTypeExecutionStarted {
		t.Errorf("first event %s, want ExecutionStarted", events[0].Type)
	}
	if got := events[len(events)-1].Type; got != last {
		t.Errorf("last event %s, want %s; history %v", got, last, eventTypes(events))
	}
	for i, e := range events {
		if e.Id != int64(i+1) || e.PreviousEventId != int64(i) || e.Timestamp == nil {
			t.Errorf("event %d: id %d previous %d timestamp %v", i, e.Id, e.PreviousEventId, e.Timestamp)
		}
	}
}

func wantStatus(t *testing.T, d *sfn.DescribeExecutionOutput, status types.ExecutionStatus) {
	t.Helper()
	if d.Status != status {
		t.Fatalf("status %s, want %s (error %q cause %q)", d.Status, status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
}

func decode(t *testing.T, s *string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(s)), &m); err != nil {
		t.Fatalf("not a JSON object: %q: %v", aws.ToString(s), err)
	}
	return m
}

// lambdaCause is AWS's Cause for a Lambda function error: the error payload as JSON.
func lambdaCause(t *testing.T, cause string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(cause), &m); err != nil {
		t.Fatalf("cause is not the Lambda error payload: %q", cause)
	}
	return m
}

func TestStepFunctions(t *testing.T) {
	lambda := newFakeLambda(t)
	logs := &syncBuffer{}
	svc := startService(t, testConfig(t, lambda.srv.URL, logs))
	c := newClient(svc.Endpoint())
	ctx := context.Background()

	t.Run("success with output and AWS-shaped history", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-ok", "mode": "ok"})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusSucceeded)
		if d.StartDate == nil || d.StopDate == nil || d.StopDate.Before(*d.StartDate) {
			t.Errorf("dates %v .. %v", d.StartDate, d.StopDate)
		}
		if !strings.HasSuffix(aws.ToString(out.ExecutionArn), ":execution:pipeline:"+aws.ToString(d.Name)) || len(aws.ToString(d.Name)) != 36 {
			t.Errorf("generated name %q / arn %q", aws.ToString(d.Name), aws.ToString(out.ExecutionArn))
		}
		got := decode(t, d.Output)
		want := map[string]any{
			"tenant_id":      "t-ok",
			"status":         "committed",
			"commit":         map[string]any{"committed": true, "tenant_id": "t-ok"},
			"execution_id":   aws.ToString(out.ExecutionArn),
			"execution_name": aws.ToString(d.Name),
		}
		if mustJSON(t, got) != mustJSON(t, want) {
			t.Errorf("output %s\nwant   %s", mustJSON(t, got), mustJSON(t, want))
		}

		events := history(t, c, aws.ToString(out.ExecutionArn), 5, false)
		checkBookends(t, events, types.HistoryEventTypeExecutionSucceeded)
		wantTypes := []string{
			"ExecutionStarted",
			"TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded", "TaskStateExited",
			"ChoiceStateEntered", "ChoiceStateExited",
			"TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded", "TaskStateExited",
			"PassStateEntered", "PassStateExited",
			"ExecutionSucceeded",
		}
		if !slices.Equal(eventTypes(events), wantTypes) {
			t.Errorf("history %v\nwant    %v", eventTypes(events), wantTypes)
		}
		if e := events[1].StateEnteredEventDetails; e == nil || aws.ToString(e.Name) != "Validate" {
			t.Errorf("TaskStateEntered details %+v", e)
		}
		if e := events[2].LambdaFunctionScheduledEventDetails; e == nil || aws.ToString(e.Resource) != functionARN("validate") {
			t.Errorf("LambdaFunctionScheduled details %+v", e)
		}
		if e := events[len(events)-1].ExecutionSucceededEventDetails; e == nil || aws.ToString(e.Output) != aws.ToString(d.Output) {
			t.Errorf("ExecutionSucceeded details %+v", e)
		}
		reversed := history(t, c, aws.ToString(out.ExecutionArn), 0, true)
		if len(reversed) != len(events) || reversed[0].Type != types.HistoryEventTypeExecutionSucceeded {
			t.Errorf("reverseOrder: %v", eventTypes(reversed))
		}
	})

	t.Run("Lambda.ServiceException is retried", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-flaky", "mode": "flaky"})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusSucceeded)
		if n := lambda.Calls("validate", "t-flaky"); n != 2 {
			t.Errorf("validate called %d times, want 2", n)
		}
		// IntervalSeconds 2 with FULL jitter would wait up to 2 s; RetryIntervalsZero makes it 0.
		if took := d.StopDate.Sub(*d.StartDate); took > time.Second {
			t.Errorf("execution took %v; retry pause not overridden?", took)
		}
		events := history(t, c, aws.ToString(out.ExecutionArn), 0, false)
		checkBookends(t, events, types.HistoryEventTypeExecutionSucceeded)
		wantPrefix := []string{"ExecutionStarted", "TaskStateEntered",
			"LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionFailed",
			"LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded", "TaskStateExited"}
		if got := eventTypes(events); len(got) < len(wantPrefix) || !slices.Equal(got[:len(wantPrefix)], wantPrefix) {
			t.Errorf("history %v\nwant prefix %v", got, wantPrefix)
		}
		if f := events[4].LambdaFunctionFailedEventDetails; f == nil || aws.ToString(f.Error) != "Lambda.ServiceException" || !strings.Contains(aws.ToString(f.Cause), "bad moment") {
			t.Errorf("LambdaFunctionFailed details %+v", f)
		}
	})

	t.Run("MaxAttempts bounds the retries, then Catch States.ALL", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-down", "mode": "down"})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusFailed)
		if n := lambda.Calls("validate", "t-down"); n != 4 {
			t.Errorf("validate called %d times, want 1 + MaxAttempts(3)", n)
		}
		if n := lambda.Calls("rollback", "t-down"); n != 1 {
			t.Errorf("rollback called %d times, want 1", n)
		}
	})

	t.Run("Catch routes on the typed error name", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-limit", "mode": "over_limit"})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusSucceeded)
		got := decode(t, d.Output)
		if got["status"] != "rejected" {
			t.Fatalf("output %v: want the Rejected branch", got)
		}
		caught, _ := got["error"].(map[string]any)
		if caught["Error"] != "UsageExceedsLimitError" {
			t.Errorf("$.error.Error = %v", caught["Error"])
		}
		cause, _ := caught["Cause"].(string)
		payload := lambdaCause(t, cause)
		if payload["errorType"] != "UsageExceedsLimitError" || payload["errorMessage"] != "users: 45 > limit 10" {
			t.Errorf("$.error.Cause = %q", cause)
		}
		if n := lambda.Calls("validate", "t-limit"); n != 1 {
			t.Errorf("validate called %d times; a function error must not match Lambda.ServiceException", n)
		}
		if n := lambda.Calls("rollback", "t-limit"); n != 0 {
			t.Errorf("rollback called %d times; States.ALL must not win over the typed catcher", n)
		}
	})

	t.Run("Catch States.ALL, compensate, Fail state", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-boom", "mode": "boom"})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusFailed)
		if aws.ToString(d.Error) != "OperationFailed" || aws.ToString(d.Cause) != "rolled back after an unexpected error" {
			t.Errorf("error %q cause %q", aws.ToString(d.Error), aws.ToString(d.Cause))
		}
		if n := lambda.Calls("rollback", "t-boom"); n != 1 {
			t.Errorf("rollback called %d times", n)
		}
		events := history(t, c, aws.ToString(out.ExecutionArn), 0, false)
		checkBookends(t, events, types.HistoryEventTypeExecutionFailed)
		last := events[len(events)-1].ExecutionFailedEventDetails
		if last == nil || aws.ToString(last.Error) != "OperationFailed" || aws.ToString(last.Cause) != aws.ToString(d.Cause) {
			t.Errorf("ExecutionFailed details %+v", last)
		}
		got := eventTypes(events)
		if !slices.Contains(got, "FailStateEntered") {
			t.Errorf("no FailStateEntered in %v", got)
		}
		i := slices.Index(got, "LambdaFunctionFailed")
		if i < 0 || aws.ToString(events[i].LambdaFunctionFailedEventDetails.Error) != "DatabaseUnavailableError" {
			t.Errorf("LambdaFunctionFailed missing or misnamed in %v", got)
		}
	})

	t.Run("an uncaught Lambda error keeps its errorType and payload", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-commit", "mode": "ok", "fail_commit": true})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusFailed)
		if aws.ToString(d.Error) != "UsageExceedsLimitError" {
			t.Errorf("error %q", aws.ToString(d.Error))
		}
		if p := lambdaCause(t, aws.ToString(d.Cause)); p["errorMessage"] != "storage_gb: 80 > limit 10" {
			t.Errorf("cause %q", aws.ToString(d.Cause))
		}
		events := history(t, c, aws.ToString(out.ExecutionArn), 0, false)
		checkBookends(t, events, types.HistoryEventTypeExecutionFailed)
		last := events[len(events)-1].ExecutionFailedEventDetails
		if last == nil || aws.ToString(last.Error) != "UsageExceedsLimitError" || aws.ToString(last.Cause) != aws.ToString(d.Cause) {
			t.Errorf("ExecutionFailed details %+v", last)
		}
	})

	t.Run("Choice to a Fail state", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-deny", "mode": "deny"})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusFailed)
		if aws.ToString(d.Error) != "NotApproved" || aws.ToString(d.Cause) != "the validator did not approve the change" {
			t.Errorf("error %q cause %q", aws.ToString(d.Error), aws.ToString(d.Cause))
		}
		if d.Output != nil {
			t.Errorf("a failed execution has output %q", aws.ToString(d.Output))
		}
	})

	// The steps the API folds from these histories (steps_test.go).
	stepsFromHistory(t, c)

	t.Run("StartExecution name idempotency", func(t *testing.T) {
		t.Parallel()
		name := "idem-op-1"
		input := map[string]any{"tenant_id": "t-idem", "mode": "slow"}
		first := start(t, c, "pipeline", name, input)
		lambda.WaitCalls(t, "validate", "t-idem", 1)

		second := start(t, c, "pipeline", name, input)
		if aws.ToString(second.ExecutionArn) != aws.ToString(first.ExecutionArn) || !second.StartDate.Equal(*first.StartDate) {
			t.Errorf("second start %v %v, want %v %v", aws.ToString(second.ExecutionArn), second.StartDate, aws.ToString(first.ExecutionArn), first.StartDate)
		}

		_, err := c.StartExecution(ctx, &sfn.StartExecutionInput{
			StateMachineArn: aws.String(stateMachineARN("pipeline")), Name: aws.String(name),
			Input: aws.String(`{"tenant_id":"t-idem","mode":"slow","other":true}`),
		})
		var exists *types.ExecutionAlreadyExists
		if !errors.As(err, &exists) {
			t.Errorf("same name, other input while running: %v, want ExecutionAlreadyExists", err)
		}

		lambda.Release("t-idem")
		wantStatus(t, waitDone(t, c, aws.ToString(first.ExecutionArn)), types.ExecutionStatusSucceeded)
		if n := lambda.Calls("validate", "t-idem"); n != 1 {
			t.Errorf("validate ran %d times, want 1", n)
		}

		_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{
			StateMachineArn: aws.String(stateMachineARN("pipeline")), Name: aws.String(name), Input: aws.String(mustJSON(t, input)),
		})
		if !errors.As(err, &exists) {
			t.Errorf("same name and input after it closed: %v, want ExecutionAlreadyExists", err)
		}
	})

	t.Run("ListExecutions filters by status and pages", func(t *testing.T) {
		t.Parallel()
		var arns []string
		for i, mode := range []string{"ok", "ok", "deny"} {
			out := start(t, c, "pipeline-list", fmt.Sprintf("list-%d", i), map[string]any{"tenant_id": fmt.Sprintf("t-list-%d", i), "mode": mode})
			arns = append(arns, aws.ToString(out.ExecutionArn))
		}
		slow := start(t, c, "pipeline-list", "list-slow", map[string]any{"tenant_id": "t-list-slow", "mode": "slow"})
		for _, arn := range arns {
			waitDone(t, c, arn)
		}
		list := func(status types.ExecutionStatus, max int32) []string {
			t.Helper()
			var names []string
			p := sfn.NewListExecutionsPaginator(c, &sfn.ListExecutionsInput{
				StateMachineArn: aws.String(stateMachineARN("pipeline-list")), StatusFilter: status, MaxResults: max,
			})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatalf("ListExecutions: %v", err)
				}
				if max > 0 && len(page.Executions) > int(max) {
					t.Errorf("page of %d, maxResults %d", len(page.Executions), max)
				}
				for _, e := range page.Executions {
					if status != "" && e.Status != status {
						t.Errorf("%s has status %s in a %s list", aws.ToString(e.Name), e.Status, status)
					}
					names = append(names, aws.ToString(e.Name))
				}
			}
			return names
		}
		if got := list(types.ExecutionStatusSucceeded, 0); !slices.Equal(got, []string{"list-1", "list-0"}) {
			t.Errorf("SUCCEEDED: %v", got)
		}
		if got := list(types.ExecutionStatusFailed, 0); !slices.Equal(got, []string{"list-2"}) {
			t.Errorf("FAILED: %v", got)
		}
		if got := list(types.ExecutionStatusRunning, 0); !slices.Equal(got, []string{"list-slow"}) {
			t.Errorf("RUNNING: %v", got)
		}
		if got := list("", 3); !slices.Equal(got, []string{"list-slow", "list-2", "list-1", "list-0"}) {
			t.Errorf("all, newest first, pages of 3: %v", got)
		}
		lambda.Release("t-list-slow")
		waitDone(t, c, aws.ToString(slow.ExecutionArn))
		if got := list(types.ExecutionStatusRunning, 0); len(got) != 0 {
			t.Errorf("RUNNING after release: %v", got)
		}
	})

	t.Run("StopExecution aborts", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "stop-me", map[string]any{"tenant_id": "t-stop", "mode": "slow"})
		lambda.WaitCalls(t, "validate", "t-stop", 1)
		if _, err := c.StopExecution(ctx, &sfn.StopExecutionInput{
			ExecutionArn: out.ExecutionArn, Error: aws.String("Operator.Cancelled"), Cause: aws.String("stopped by the test"),
		}); err != nil {
			t.Fatalf("StopExecution: %v", err)
		}
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusAborted)
		if aws.ToString(d.Error) != "Operator.Cancelled" || aws.ToString(d.Cause) != "stopped by the test" {
			t.Errorf("error %q cause %q", aws.ToString(d.Error), aws.ToString(d.Cause))
		}
		lambda.Release("t-stop")
		time.Sleep(100 * time.Millisecond) // the late Lambda answer must not reach the history
		events := history(t, c, aws.ToString(out.ExecutionArn), 0, false)
		checkBookends(t, events, types.HistoryEventTypeExecutionAborted)
		if a := events[len(events)-1].ExecutionAbortedEventDetails; a == nil || aws.ToString(a.Error) != "Operator.Cancelled" {
			t.Errorf("ExecutionAborted details %+v", a)
		}
		if n := lambda.Calls("commit", "t-stop"); n != 0 {
			t.Errorf("commit ran after the abort")
		}
	})

	t.Run("lambda:invoke, Parallel and Map", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "integrations", "fan-1", map[string]any{"tenant_id": "t-fan", "items": []int{1, 2, 3}})
		d := waitDone(t, c, aws.ToString(out.ExecutionArn))
		wantStatus(t, d, types.ExecutionStatusSucceeded)
		want := `{"doubled":[2,4,6],"echo":{"echo":{"execution":"fan-1","tenant_id":"t-fan"},"status":200}}`
		if got := mustJSON(t, decode(t, d.Output)); got != want {
			t.Errorf("output %s\nwant   %s", got, want)
		}
		events := history(t, c, aws.ToString(out.ExecutionArn), 0, false)
		checkBookends(t, events, types.HistoryEventTypeExecutionSucceeded)
		got := eventTypes(events)
		for _, want := range []string{"ParallelStateEntered", "ParallelStateStarted", "TaskScheduled", "TaskSucceeded", "MapStateEntered", "MapIterationStarted", "MapIterationSucceeded", "MapStateSucceeded", "ParallelStateSucceeded", "ParallelStateExited"} {
			if !slices.Contains(got, want) {
				t.Errorf("no %s in %v", want, got)
			}
		}
		i := slices.Index(got, "TaskScheduled")
		if s := events[i].TaskScheduledEventDetails; s == nil || aws.ToString(s.ResourceType) != "lambda" || aws.ToString(s.Resource) != "invoke" || !strings.Contains(aws.ToString(s.Parameters), functionARN("echo")) {
			t.Errorf("TaskScheduled details %+v", s)
		}
	})

	t.Run("API errors", func(t *testing.T) {
		t.Parallel()
		_, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String("arn:aws:states:us-east-1:123456789012:execution:pipeline:nope")})
		var noExec *types.ExecutionDoesNotExist
		if !errors.As(err, &noExec) {
			t.Errorf("DescribeExecution unknown: %v", err)
		}
		_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(stateMachineARN("nope"))})
		var noMachine *types.StateMachineDoesNotExist
		if !errors.As(err, &noMachine) {
			t.Errorf("StartExecution unknown machine: %v", err)
		}
		_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(stateMachineARN("pipeline")), Input: aws.String("{not json")})
		var badInput *types.InvalidExecutionInput
		if !errors.As(err, &badInput) {
			t.Errorf("StartExecution bad input: %v", err)
		}
		_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(stateMachineARN("pipeline")), Name: aws.String("has space")})
		var badName *types.InvalidName
		if !errors.As(err, &badName) {
			t.Errorf("StartExecution bad name: %v", err)
		}
	})

	t.Run("state machines are described with their substitutions applied", func(t *testing.T) {
		t.Parallel()
		d, err := c.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(stateMachineARN("pipeline"))})
		if err != nil {
			t.Fatal(err)
		}
		if def := aws.ToString(d.Definition); !strings.Contains(def, functionARN("validate")) || strings.Contains(def, "${") {
			t.Errorf("definition not substituted: %.200s", def)
		}
		l, err := c.ListStateMachines(ctx, &sfn.ListStateMachinesInput{})
		if err != nil || len(l.StateMachines) != 3 {
			t.Errorf("ListStateMachines: %v %+v", err, l)
		}
	})

	t.Cleanup(func() {
		// Subtests are done (Cleanup runs after parallel subtests); check the log once.
		out := logs.String()
		for _, want := range []string{"[stepfunctions] listening on http://127.0.0.1:", "[stepfunctions] execution started pipeline/idem-op-1", "[stepfunctions] execution FAILED pipeline/"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
	})
}

func TestStartFailsOnBadDefinitions(t *testing.T) {
	dir := t.TempDir()
	writeDef := func(name, def string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		machine StateMachine
		want    []string
	}{
		{
			name: "unresolved substitution",
			machine: StateMachine{Name: "pipeline", DefinitionPath: "testdata/pipeline.asl.json", Substitutions: map[string]string{
				"ValidateFunctionArn": functionARN("validate"),
			}},
			want: []string{"unresolved DefinitionSubstitutions", "${CommitFunctionArn}", "${RollbackFunctionArn}"},
		},
		{
			name: "unsupported service integration",
			machine: StateMachine{Name: "ddb", DefinitionPath: writeDef("ddb.asl.json",
				`{"StartAt":"Put","States":{"Put":{"Type":"Task","Resource":"arn:aws:states:::dynamodb:putItem","End":true}}}`)},
			want: []string{`Task state "Put"`, "arn:aws:states:::dynamodb:putItem"},
		},
		{
			name: "misspelt JitterStrategy",
			machine: StateMachine{Name: "jitter", DefinitionPath: writeDef("jitter.asl.json",
				`{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"`+functionARN("x")+`","Retry":[{"ErrorEquals":["States.ALL"],"JitterStrategy":"FUL"}],"End":true}}}`)},
			want: []string{"JitterStrategy must be FULL or NONE"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, "http://127.0.0.1:9", nil)
			cfg.StateMachines = []StateMachine{tc.machine}
			svc, err := Start(context.Background(), cfg)
			if err == nil {
				svc.Close()
				t.Fatal("Start succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

// The test definitions are what the pinned asl-validator accepts (JitterStrategy included),
// before substitution, like statemachines/*.asl.json.
func TestTestdataPassesASLValidator(t *testing.T) {
	validator := filepath.Join(DefaultNodeModules(), "asl-validator", "dist", "bin", "asl-validator.js")
	if _, err := os.Stat(validator); err != nil {
		t.Fatalf("asl-validator is not installed (make tools): %v", err)
	}
	out, err := exec.Command("node", validator, "--json-path", "testdata/pipeline.asl.json", "--json-path", "testdata/integrations.asl.json").CombinedOutput()
	if err != nil {
		t.Fatalf("asl-validator: %v\n%s", err, out)
	}
}
