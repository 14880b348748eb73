package lambdasvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

const fixtureRoot = "testdata/repo"

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureFns  []samtemplate.Function
	fixtureErr  error
)

// fixture builds the testdata functions once per test binary, through the same
// samtemplate + Makefile path devstack uses.
func fixture(t *testing.T) (string, []samtemplate.Function) {
	t.Helper()
	fixtureOnce.Do(func() {
		tpl, err := samtemplate.Load(filepath.Join(fixtureRoot, "template.yaml"), samtemplate.Options{})
		if err != nil {
			fixtureErr = err
			return
		}
		if fixtureFns, fixtureErr = tpl.Functions(); fixtureErr != nil {
			return
		}
		if fixtureDir, fixtureErr = os.MkdirTemp("", "lambdasvc-test-"); fixtureErr != nil {
			return
		}
		// Generous: the first build on a cold Go cache of a busy machine is slow.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		fixtureErr = BuildAll(ctx, fixtureRoot, fixtureFns, fixtureDir)
	})
	if fixtureErr != nil {
		t.Fatalf("fixture build: %v", fixtureErr)
	}
	fns := make([]samtemplate.Function, len(fixtureFns))
	copy(fns, fixtureFns)
	return fixtureDir, fns
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// syncBuffer is a log writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs a Service over the fixture; mutate adjusts the config. Cleanup closes
// it and checks that no function process survived.
func start(t *testing.T, mutate func(*Config)) (*Service, *syncBuffer) {
	t.Helper()
	dir, fns := fixture(t)
	logs := &syncBuffer{}
	cfg := Config{
		Functions: fns,
		BuildDir:  dir,
		Log:       logs,
		Env: map[string]string{
			"OVERRIDDEN":            "extra",
			"EXTRA":                 "x",
			"AWS_ACCESS_KEY_ID":     "test",
			"AWS_SECRET_ACCESS_KEY": "test",
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		pids := s.PIDs()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("process %d survived Close", pid)
			}
		}
		if t.Failed() {
			out := logs.String()
			if len(out) > 4000 {
				out = "…" + out[len(out)-4000:]
			}
			t.Logf("service log:\n%s", out)
		}
	})
	return s, logs
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces, so cut at the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, rawURL string, body string, header map[string]string) httpResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) httpResult {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpResult{resp.StatusCode, resp.Header, b}
}

func invokeURL(s *Service, name string) string {
	return s.URL() + "/2015-03-31/functions/" + name + "/invocations"
}

func invoke(t *testing.T, s *Service, name, payload string) Result {
	t.Helper()
	res, err := s.Invoke(context.Background(), name, []byte(payload))
	if err != nil {
		t.Fatalf("Invoke %s: %v", name, err)
	}
	return res
}

func mustFunctionError(t *testing.T, res Result, wantType string) *FunctionError {
	t.Helper()
	var fe *FunctionError
	if !errors.As(res.Err(), &fe) || fe.Type != wantType {
		t.Fatalf("result %s (%q): want function error %s", res.Payload, res.FunctionError, wantType)
	}
	return fe
}

func TestEchoByNameAndARN(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	arn := "arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"
	names := []string{
		"EchoFunction",
		url.PathEscape(arn),                  // how aws-local-stepfunctions sends it
		strings.ReplaceAll(arn, ":", "%3A"),  // the SDK escapes ':'
		arn + ":$LATEST",                     // qualified ARN
		"123456789012:function:EchoFunction", // partial ARN
		"EchoFunction:live",                  // name with alias
	}
	for _, name := range names {
		payload := `{"mode":"echo","n":` + strconv.Quote(name) + `}`
		r := post(t, invokeURL(s, name), payload, nil)
		if r.status != http.StatusOK || string(r.body) != payload || r.header.Get("X-Amz-Function-Error") != "" {
			t.Errorf("%s: %d %q %v", name, r.status, r.body, r.header)
		}
		if r.header.Get("X-Amzn-Requestid") == "" || r.header.Get("X-Amz-Executed-Version") != "$LATEST" {
			t.Errorf("%s: headers %v", name, r.header)
		}
	}
	// An empty payload reaches the function as {}.
	if r := post(t, invokeURL(s, "EchoFunction"), "", nil); r.status != 200 || string(r.body) != "{}" {
		t.Errorf("empty payload: %d %s", r.status, r.body)
	}
	if st := s.Stats()["EchoFunction"]; st.Invocations != len(names)+1 || st.ColdStarts != 1 {
		t.Errorf("stats %+v: sequential invokes must reuse one warm process", st)
	}
}

func TestTypedErrorPassesThrough(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	r := post(t, invokeURL(s, "EchoFunction"), `{"mode":"boom"}`, nil)
	if r.status != http.StatusOK || r.header.Get("X-Amz-Function-Error") != "Unhandled" {
		t.Fatalf("status %d headers %v", r.status, r.header)
	}
	// Exactly what aws-lambda-go posted to /error.
	if want := `{"errorMessage":"boom: the handler failed on purpose","errorType":"BoomError"}`; string(r.body) != want {
		t.Errorf("body %s, want %s", r.body, want)
	}
	// The process survives a returned error and serves the next invoke.
	if res := invoke(t, s, "EchoFunction", `{"mode":"echo"}`); res.Err() != nil {
		t.Fatal(res.Err())
	}
	if st := s.Stats()["EchoFunction"]; st.ColdStarts != 1 || st.Errors != 1 || st.Invocations != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestConcurrentInvokes is not parallel: it measures wall time.
func TestConcurrentInvokes(t *testing.T) {
	s, _ := start(t, nil)
	const n, sleep = 8, 300
	pids := map[int]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := post(t, invokeURL(s, "EchoFunction"), fmt.Sprintf(`{"mode":"sleep","ms":%d}`, sleep), nil)
			var out struct{ Slept, PID int }
			if r.status != 200 || json.Unmarshal(r.body, &out) != nil || out.Slept != sleep {
				t.Errorf("invoke: %d %s", r.status, r.body)
				return
			}
			mu.Lock()
			pids[out.PID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	t.Logf("%d concurrent invokes of %d ms took %s on %d processes", n, sleep, elapsed, len(pids))
	if len(pids) < 2 {
		t.Errorf("ran on %d process(es): invokes were not parallel", len(pids))
	}
	// Sequential runs would take n*sleep; anything less proves overlap (the bound is
	// loose because cold starts on a loaded CI machine are slow).
	if elapsed >= time.Duration(n*sleep)*time.Millisecond {
		t.Errorf("took %s: not parallel", elapsed)
	}
	st := s.Stats()["EchoFunction"]
	if st.ColdStarts != len(pids) || st.ColdStarts > n {
		t.Errorf("stats %+v vs %d pids", st, len(pids))
	}

	// A later invoke reuses a warm process.
	r := invoke(t, s, "EchoFunction", `{"mode":"sleep","ms":1}`)
	var out struct{ PID int }
	_ = json.Unmarshal(r.Payload, &out)
	if !pids[out.PID] || s.Stats()["EchoFunction"].ColdStarts != st.ColdStarts {
		t.Errorf("later invoke ran on pid %d (warm: %v), cold starts %d → %d", out.PID, pids, st.ColdStarts, s.Stats()["EchoFunction"].ColdStarts)
	}
}

func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	s, _ := start(t, func(c *Config) { c.MaxConcurrency = 2 })
	const n, sleep = 6, 150
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Invoke(context.Background(), "EchoFunction", []byte(fmt.Sprintf(`{"mode":"sleep","ms":%d}`, sleep)))
			if err != nil || res.Err() != nil {
				t.Errorf("invoke: %v %v", err, res.Err())
			}
		}()
	}
	wg.Wait()
	if elapsed := time.Since(begin); elapsed < time.Duration(n/2*sleep)*time.Millisecond {
		t.Errorf("6 invokes on 2 processes took only %s", elapsed)
	}
	if st := s.Stats()["EchoFunction"]; st.ColdStarts != 2 || st.Processes != 2 || st.Invocations != n {
		t.Errorf("stats %+v, want 2 processes", st)
	}
}

func TestTimeoutKillsProcess(t *testing.T) {
	t.Parallel()
	s, logs := start(t, func(c *Config) {
		for i := range c.Functions {
			c.Functions[i].Timeout = 1
		}
	})
	invoke(t, s, "EchoFunction", `{}`) // warm up: the timeout covers the invocation only
	pids := s.PIDs()
	begin := time.Now()
	res := invoke(t, s, "EchoFunction", `{"mode":"sleep","ms":5000}`)
	elapsed := time.Since(begin)
	fe := mustFunctionError(t, res, "Sandbox.Timedout")
	if !strings.Contains(fe.Message, "Task timed out after 1.00 seconds") || !strings.Contains(fe.Message, res.RequestID) {
		t.Errorf("message %q", fe.Message)
	}
	if elapsed < time.Second || elapsed > 4*time.Second {
		t.Errorf("timed out after %s, want ~1s", elapsed)
	}
	waitFor(t, "killed process reaped", func() bool { return len(s.PIDs()) == 0 })
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("timed-out process %d still alive", pid)
		}
	}
	// The next invoke gets a fresh process.
	if res := invoke(t, s, "EchoFunction", `{"mode":"echo"}`); res.Err() != nil {
		t.Fatal(res.Err())
	}
	if st := s.Stats()["EchoFunction"]; st.Timeouts != 1 || st.ColdStarts != 2 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "[EchoFunction] devstack: RequestId "+res.RequestID) && !strings.Contains(logs.String(), "timed out after 1.00 seconds") {
		t.Errorf("no timeout log line:\n%s", logs)
	}
}

func TestCrashMidInvoke(t *testing.T) {
	t.Parallel()
	s, logs := start(t, nil)
	res := invoke(t, s, "EchoFunction", `{"mode":"exit","code":3}`)
	fe := mustFunctionError(t, res, "Runtime.ExitError")
	if !strings.Contains(fe.Message, "exit status 3") {
		t.Errorf("message %q", fe.Message)
	}
	if !strings.Contains(logs.String(), "[EchoFunction] exiting with 3\n") {
		t.Errorf("function output missing:\n%s", logs)
	}
	if res := invoke(t, s, "EchoFunction", `{"mode":"echo"}`); res.Err() != nil {
		t.Fatal(res.Err())
	}
}

func TestPanicThenRecover(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	res := invoke(t, s, "EchoFunction", `{"mode":"panic"}`)
	fe := mustFunctionError(t, res, "string") // aws-lambda-go names the panic value's type
	if fe.Message != "kaboom" {
		t.Errorf("message %q", fe.Message)
	}
	// aws-lambda-go exits after reporting a panic; whether or not the exit wins the
	// race with the next invoke, that invoke must succeed on a live process.
	for i := 0; i < 5; i++ {
		if res := invoke(t, s, "EchoFunction", `{"mode":"echo"}`); res.Err() != nil {
			t.Fatalf("invoke %d after panic: %v", i, res.Err())
		}
	}
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	faults := s.URL() + "/_devstack/faults"
	r := post(t, faults, `{"function":"EchoFunction","count":2,"errorType":"States.TaskFailed","errorMessage":"injected"}`, nil)
	if r.status != http.StatusNoContent {
		t.Fatalf("POST faults: %d %s", r.status, r.body)
	}
	for i := 0; i < 2; i++ {
		r := post(t, invokeURL(s, url.PathEscape("arn:aws:lambda:us-east-1:123456789012:function:EchoFunction")), `{"mode":"echo"}`, nil)
		if r.status != 200 || r.header.Get("X-Amz-Function-Error") != "Unhandled" ||
			string(r.body) != `{"errorMessage":"injected","errorType":"States.TaskFailed"}` {
			t.Fatalf("faulted invoke %d: %d %v %s", i, r.status, r.header, r.body)
		}
	}
	// A faulted invoke does not run the function: no process has started yet.
	if st := s.Stats()["EchoFunction"]; st.ColdStarts != 0 || st.Faults != 2 {
		t.Errorf("stats after faults %+v", st)
	}
	if r := post(t, invokeURL(s, "EchoFunction"), `{"mode":"echo"}`, nil); r.status != 200 || r.header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("third invoke should succeed: %v %s", r.header, r.body)
	}

	// count -1 is permanent until DELETE.
	post(t, faults, `{"function":"EchoFunction","count":-1,"errorType":"Always"}`, nil)
	for i := 0; i < 3; i++ {
		mustFunctionError(t, invoke(t, s, "EchoFunction", `{}`), "Always")
	}
	req, _ := http.NewRequest(http.MethodGet, faults, nil)
	if r := do(t, req); !strings.Contains(string(r.body), `"count":-1`) {
		t.Errorf("GET faults: %s", r.body)
	}
	req, _ = http.NewRequest(http.MethodDelete, faults, nil)
	if r := do(t, req); r.status != http.StatusNoContent {
		t.Errorf("DELETE faults: %d", r.status)
	}
	if res := invoke(t, s, "EchoFunction", `{}`); res.Err() != nil {
		t.Errorf("after DELETE: %v", res.Err())
	}

	// Counters over HTTP, and reset.
	req, _ = http.NewRequest(http.MethodGet, s.URL()+"/_devstack/invocations", nil)
	var stats map[string]Stats
	if r := do(t, req); json.Unmarshal(r.body, &stats) != nil || stats["EchoFunction"].Invocations != 7 || stats["EchoFunction"].Faults != 5 {
		t.Errorf("GET invocations: %s", r.body)
	}
	req, _ = http.NewRequest(http.MethodDelete, s.URL()+"/_devstack/invocations", nil)
	do(t, req)
	if st := s.Stats()["EchoFunction"]; st.Invocations != 0 || st.Processes != 1 {
		t.Errorf("after reset %+v", st)
	}

	// Go API and bad requests.
	if err := s.InjectFault("EchoFunction", 1, "", ""); err != nil {
		t.Fatal(err)
	}
	if fe := mustFunctionError(t, invoke(t, s, "EchoFunction", `{}`), "InjectedFault"); fe.Message == "" {
		t.Error("default message empty")
	}
	if r := post(t, faults, `{"function":"Nope","count":1}`, nil); r.status != 404 {
		t.Errorf("fault on unknown function: %d", r.status)
	}
	if r := post(t, faults, `{"function":"EchoFunction","count":0}`, nil); r.status != 400 {
		t.Errorf("count 0: %d", r.status)
	}
	if r := post(t, faults, `not json`, nil); r.status != 400 {
		t.Errorf("bad body: %d", r.status)
	}
}

func TestUnknownFunction(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	r := post(t, invokeURL(s, "NopeFunction"), `{}`, nil)
	if r.status != http.StatusNotFound || r.header.Get("x-amzn-ErrorType") != "ResourceNotFoundException" {
		t.Fatalf("%d %v", r.status, r.header)
	}
	var body struct{ Message string }
	if err := json.Unmarshal(r.body, &body); err != nil || !strings.Contains(body.Message, "function:NopeFunction") {
		t.Errorf("body %s", r.body)
	}
	if _, err := s.Invoke(context.Background(), "NopeFunction", nil); !errors.Is(err, ErrUnknownFunction) {
		t.Errorf("Invoke: %v", err)
	}
}

func TestInvocationTypesAndBadRequests(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	if r := post(t, invokeURL(s, "EchoFunction"), `{}`, map[string]string{"X-Amz-Invocation-Type": "DryRun"}); r.status != http.StatusNoContent {
		t.Errorf("DryRun: %d", r.status)
	}
	if s.Stats()["EchoFunction"].Invocations != 0 {
		t.Error("DryRun invoked the function")
	}
	if r := post(t, invokeURL(s, "EchoFunction"), `{"mode":"sleep","ms":200}`, map[string]string{"X-Amz-Invocation-Type": "Event"}); r.status != http.StatusAccepted || len(r.body) != 0 {
		t.Errorf("Event: %d %s", r.status, r.body)
	}
	waitFor(t, "the Event invocation to run", func() bool {
		st := s.Stats()["EchoFunction"]
		return st.Invocations == 1 && st.ColdStarts == 1
	})
	if r := post(t, invokeURL(s, "EchoFunction"), `{not json`, nil); r.status != 400 || r.header.Get("x-amzn-ErrorType") != "InvalidRequestContentException" {
		t.Errorf("bad json: %d %v", r.status, r.header)
	}
	if r := post(t, invokeURL(s, "EchoFunction"), `{}`, map[string]string{"X-Amz-Invocation-Type": "Sometimes"}); r.status != 400 {
		t.Errorf("bad type: %d", r.status)
	}
	big := `"` + strings.Repeat("x", maxAsyncPayload) + `"`
	if r := post(t, invokeURL(s, "EchoFunction"), big, map[string]string{"X-Amz-Invocation-Type": "Event"}); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized Event: %d", r.status)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/_devstack/functions", nil)
	if r := do(t, req); !strings.Contains(string(r.body), `"arn":"arn:aws:lambda:us-east-1:123456789012:function:RawRuntimeFunction"`) {
		t.Errorf("functions: %s", r.body)
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	dir, _ := fixture(t)
	s, _ := start(t, func(c *Config) { c.Region = "eu-west-1" })
	res := invoke(t, s, "EchoFunction", `{"mode":"env"}`)
	var env map[string]string
	if err := json.Unmarshal(res.Payload, &env); err != nil {
		t.Fatalf("%v: %s", err, res.Payload)
	}
	absDir, _ := filepath.Abs(filepath.Join(dir, "EchoFunction"))
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "EchoFunction",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                absDir,
		"FROM_GLOBALS":                    "g",     // template, via Globals
		"OVERRIDDEN":                      "extra", // extra env wins over the template
		"EXTRA":                           "x",
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_EC2_METADATA_DISABLED":       "true",
		"BUS_ARN":                         "arn:aws:events:us-east-1:123456789012:event-bus/x", // resolved by samtemplate with its own region
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if !strings.HasPrefix(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", env["AWS_LAMBDA_RUNTIME_API"])
	}
	for _, k := range []string{"HOME", "AWS_PROFILE", "GOFLAGS"} {
		if _, ok := env[k]; ok {
			t.Errorf("host variable %s leaked into the function", k)
		}
	}
	if ms, _ := strconv.Atoi(env["ctx-deadline-in-ms"]); ms <= 3000 || ms > 5000 {
		t.Errorf("context deadline in %d ms, want ≈ Timeout 5 s", ms)
	}
}

func TestRuntimeAPIHeaders(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	for i := 0; i < 3; i++ {
		before := time.Now()
		res := invoke(t, s, "RawRuntimeFunction", `{"n":1}`)
		if res.Err() != nil {
			t.Fatal(res.Err())
		}
		var got struct {
			RequestID, DeadlineMs, ARN, TraceID, ContentType string
			Payload                                          json.RawMessage
		}
		if err := json.Unmarshal(res.Payload, &got); err != nil {
			t.Fatalf("%v: %s", err, res.Payload)
		}
		deadline, _ := strconv.ParseInt(got.DeadlineMs, 10, 64)
		wantDeadline := before.Add(5 * time.Second).UnixMilli()
		if got.RequestID != res.RequestID || got.ARN != "arn:aws:lambda:us-east-1:123456789012:function:RawRuntimeFunction" ||
			!strings.HasPrefix(got.TraceID, "Root=1-") || string(got.Payload) != `{"n":1}` ||
			deadline < wantDeadline-100 || deadline > wantDeadline+3000 {
			t.Errorf("runtime saw %+v (deadline want ≈ %d)", got, wantDeadline)
		}
	}
	// A non-JSON error report gets the standard shape, with the header's type.
	res := invoke(t, s, "RawRuntimeFunction", `{"x":"fail"}`)
	if fe := mustFunctionError(t, res, "Custom.PlainError"); fe.Message != "plain failure" {
		t.Errorf("message %q", fe.Message)
	}
	// The runtime exits 3 if a duplicate response were accepted: one process throughout.
	if st := s.Stats()["RawRuntimeFunction"]; st.ColdStarts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestInitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode, errorType, message, log string
	}{
		{"init-error", "Runtime.ConfigError", "STRIPE_KEY is not set", ""},
		{"exit", "Runtime.ExitError", "exit status 1", "[RawRuntimeFunction] fatal: missing configuration\n"},
		{"hang", "Sandbox.Timedout", "init did not finish within 300ms", ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			s, logs := start(t, func(c *Config) {
				c.Env["MODE"] = tt.mode
				if tt.mode == "hang" {
					c.InitTimeout = 300 * time.Millisecond
				}
			})
			r := post(t, invokeURL(s, "RawRuntimeFunction"), `{}`, nil)
			var fe FunctionError
			if r.status != 200 || r.header.Get("X-Amz-Function-Error") != "Unhandled" || json.Unmarshal(r.body, &fe) != nil {
				t.Fatalf("%d %v %s", r.status, r.header, r.body)
			}
			if fe.Type != tt.errorType || !strings.Contains(fe.Message, tt.message) {
				t.Errorf("got %+v, want %s / %s", fe, tt.errorType, tt.message)
			}
			if tt.log != "" && !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, logs)
			}
			waitFor(t, "the failed process to be reaped", func() bool { return len(s.PIDs()) == 0 })
			if st := s.Stats()["RawRuntimeFunction"]; st.Errors != 1 || st.Processes != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

var logLine = regexp.MustCompile(`^\[EchoFunction\] (stdout line \d+ of pid \d+ x{200}|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d stderr line \d+ of pid \d+|partial line without newline)$`)

func TestLogsArePrefixedWholeLines(t *testing.T) {
	t.Parallel()
	s, logs := start(t, nil)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			invoke(t, s, "EchoFunction", `{"mode":"log","lines":50}`)
		}()
	}
	wg.Wait()
	// A line without newline is held until the process prints more or ends.
	invoke(t, s, "EchoFunction", `{"mode":"partial"}`)
	if strings.Contains(logs.String(), "partial line") {
		t.Error("partial line logged before it was complete")
	}
	if err := s.Close(); err != nil { // flushes it
		t.Fatal(err)
	}
	var stdout, stderr, partial int
	for _, line := range strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n") {
		if !logLine.MatchString(line) {
			t.Errorf("mangled line %q", line)
			continue
		}
		switch {
		case strings.Contains(line, "stdout"):
			stdout++
		case strings.Contains(line, "stderr"):
			stderr++
		default:
			partial++
		}
	}
	if stdout != 200 || stderr != 200 || partial != 1 {
		t.Errorf("counted %d stdout, %d stderr, %d partial lines", stdout, stderr, partial)
	}
}

func TestCloseEndsEveryProcess(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	res := invoke(t, s, "EchoFunction", `{"mode":"spawn"}`)
	var spawned struct{ PID, Child int }
	if err := json.Unmarshal(res.Payload, &spawned); err != nil || spawned.Child == 0 {
		t.Fatalf("spawn: %s", res.Payload)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			invoke(t, s, "EchoFunction", `{"mode":"sleep","ms":100}`)
			invoke(t, s, "RawRuntimeFunction", `{}`)
		}()
	}
	wg.Wait()
	pids := append(s.PIDs(), spawned.Child)
	if len(pids) < 3 {
		t.Fatalf("expected several processes, got %v", pids)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d not alive before Close", pid)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d alive after Close", pid)
		}
	}
	if _, err := s.Invoke(context.Background(), "EchoFunction", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Invoke after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestInvokeContextCancel(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Invoke(ctx, "EchoFunction", []byte(`{"mode":"sleep","ms":400}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The abandoned invocation finishes and its process returns to the pool.
	waitFor(t, "the abandoned invocation to finish", func() bool { return s.Stats()["EchoFunction"].Idle == 1 })
	res := invoke(t, s, "EchoFunction", `{"mode":"echo"}`)
	if res.Err() != nil || s.Stats()["EchoFunction"].ColdStarts != 1 {
		t.Errorf("%v %+v", res.Err(), s.Stats()["EchoFunction"])
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	_, fns := fixture(t)
	empty := t.TempDir()
	if _, err := Start(context.Background(), Config{Functions: fns, BuildDir: empty, Log: io.Discard}); err == nil || !strings.Contains(err.Error(), "no bootstrap") {
		t.Errorf("missing bootstrap: %v", err)
	}
}

func TestFunctionNameFromARN(t *testing.T) {
	tests := map[string]string{
		"Fn":       "Fn",
		"Fn:alias": "Fn",
		"arn:aws:lambda:us-east-1:123456789012:function:Fn":             "Fn",
		"arn:aws:lambda:us-east-1:123456789012:function:Fn:$LATEST":     "Fn",
		"arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3AFn": "Fn",
		"123456789012:function:Fn":                                      "Fn",
	}
	for in, want := range tests {
		if got := FunctionNameFromARN(in); got != want {
			t.Errorf("FunctionNameFromARN(%q) = %q, want %q", in, got, want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
