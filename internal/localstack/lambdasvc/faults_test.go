package lambdasvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// sideEffects is a file the echo function's "append" mode writes one line to per
// handler run: the test's stand-in for a DynamoDB write.
type sideEffects string

func newSideEffects(t *testing.T) sideEffects {
	t.Helper()
	return sideEffects(filepath.Join(t.TempDir(), "effects"))
}

// event is an "append" invocation writing tag, then sleeping ms.
func (p sideEffects) event(tag string, ms int) string {
	b, _ := json.Marshal(map[string]any{"mode": "append", "path": string(p), "tag": tag, "ms": ms})
	return string(b)
}

// lines are the tags written so far, in order.
func (p sideEffects) lines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(string(p))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

func mustInject(t *testing.T, s *Service, spec FaultSpec) {
	t.Helper()
	if err := s.Inject(spec); err != nil {
		t.Fatalf("Inject(%+v): %v", spec, err)
	}
}

func TestFaultAfterHandler(t *testing.T) {
	t.Parallel()
	s, logs := start(t, func(c *Config) { c.Verbose = true })
	fx := newSideEffects(t)
	mustInject(t, s, FaultSpec{Function: "EchoFunction", After: true, Count: 1, ErrorType: "Sandbox.Timedout", Message: "answer lost"})

	res := invoke(t, s, "EchoFunction", fx.event("one", 0))
	// The shape of a failed function, so Retry/Catch on the errorType match.
	if want := `{"errorMessage":"answer lost","errorType":"Sandbox.Timedout"}`; res.FunctionError != "Unhandled" || string(res.Payload) != want {
		t.Fatalf("got %q %s, want Unhandled %s", res.FunctionError, res.Payload, want)
	}
	// ...but the handler ran: its side effect happened.
	if got := fx.lines(t); !reflect.DeepEqual(got, []string{"one"}) {
		t.Errorf("side effects %q, want [one]", got)
	}
	if st := s.Stats()["EchoFunction"]; st.Invocations != 1 || st.ColdStarts != 1 || st.Faults != 1 || st.Errors != 1 {
		t.Errorf("stats %+v", st)
	}
	// The real answer is logged, then dropped.
	if want := `fault injected after the invocation; its result is dropped: ok {"appended":"one"}`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
	if f := s.Faults(); len(f) != 0 {
		t.Errorf("fault still armed: %+v", f)
	}
	if res := invoke(t, s, "EchoFunction", fx.event("two", 0)); res.Err() != nil {
		t.Fatalf("second invoke: %v", res.Err())
	}
	if got := fx.lines(t); len(got) != 2 {
		t.Errorf("side effects %q", got)
	}
}

func TestFaultAfterAlways(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	fx := newSideEffects(t)
	mustInject(t, s, FaultSpec{Function: "EchoFunction", After: true, Count: -1, ErrorType: "Lost"})
	for i := 0; i < 3; i++ {
		if fe := mustFunctionError(t, invoke(t, s, "EchoFunction", fx.event(fmt.Sprint(i), 0)), "Lost"); fe.Message != "fault injected by devstack" {
			t.Errorf("default message %q", fe.Message)
		}
		if got := len(fx.lines(t)); got != i+1 {
			t.Fatalf("after invoke %d: %d side effects", i, got)
		}
	}
	// The function's own error is dropped too: the caller sees the injected one.
	mustFunctionError(t, invoke(t, s, "EchoFunction", `{"mode":"boom"}`), "Lost")
	want := []Fault{{Function: "EchoFunction", Count: -1, Remaining: -1, After: true, ErrorType: "Lost", ErrorMessage: "fault injected by devstack"}}
	if got := s.Faults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Faults() = %+v, want %+v", got, want)
	}
	if st := s.Stats()["EchoFunction"]; st.Invocations != 4 || st.Faults != 4 || st.Errors != 4 || st.ColdStarts != 1 {
		t.Errorf("stats %+v", st)
	}
	s.ClearFaults()
	if res := invoke(t, s, "EchoFunction", fx.event("ok", 0)); res.Err() != nil {
		t.Errorf("after ClearFaults: %v", res.Err())
	}
}

func TestFaultSkip(t *testing.T) {
	t.Parallel()
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("after=%v", after), func(t *testing.T) {
			t.Parallel()
			s, _ := start(t, nil)
			fx := newSideEffects(t)
			mustInject(t, s, FaultSpec{Function: "EchoFunction", After: after, Skip: 2, Count: 1, ErrorType: "Third"})
			if f := s.Faults(); len(f) != 1 || f[0].Skip != 2 || f[0].Remaining != 1 || f[0].Count != 1 || f[0].After != after {
				t.Errorf("Faults() = %+v", f)
			}
			for call := 1; call <= 4; call++ {
				res := invoke(t, s, "EchoFunction", fx.event(fmt.Sprint(call), 0))
				if call == 3 {
					mustFunctionError(t, res, "Third")
				} else if res.Err() != nil {
					t.Errorf("call %d: %v", call, res.Err())
				}
				if call == 1 {
					if f := s.Faults(); len(f) != 1 || f[0].Skip != 1 || f[0].Remaining != 1 {
						t.Errorf("after call 1: Faults() = %+v", f)
					}
				}
			}
			want := []string{"1", "2", "4"} // a fault before the handler: call 3 never ran
			if after {
				want = []string{"1", "2", "3", "4"}
			}
			if got := fx.lines(t); !reflect.DeepEqual(got, want) {
				t.Errorf("side effects %q, want %q", got, want)
			}
			if f := s.Faults(); len(f) != 0 {
				t.Errorf("fault still armed: %+v", f)
			}
			if st := s.Stats()["EchoFunction"]; st.Invocations != 4 || st.Faults != 1 || st.Errors != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestInjectValidatesAndReplaces(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	bad := []FaultSpec{
		{Function: "EchoFunction", Count: 0},
		{Function: "EchoFunction", Count: -2},
		{Function: "EchoFunction", Count: 1, Skip: -1},
	}
	for _, spec := range bad {
		if err := s.Inject(spec); err == nil {
			t.Errorf("Inject(%+v) accepted", spec)
		}
	}
	if err := s.Inject(FaultSpec{Function: "Nope", Count: 1}); !errors.Is(err, ErrUnknownFunction) {
		t.Errorf("unknown function: %v", err)
	}
	if f := s.Faults(); len(f) != 0 {
		t.Fatalf("rejected faults armed: %+v", f)
	}

	// Faults of different functions coexist; a new one on a function replaces its old one.
	mustInject(t, s, FaultSpec{Function: "EchoFunction", Skip: 5, Count: 2, ErrorType: "Old"})
	mustInject(t, s, FaultSpec{Function: "arn:aws:lambda:us-east-1:123456789012:function:RawRuntimeFunction", After: true, Count: -1, ErrorType: "Raw"})
	if err := s.InjectFault("EchoFunction", 1, "New", "m"); err != nil {
		t.Fatal(err)
	}
	want := []Fault{
		{Function: "EchoFunction", Count: 1, Remaining: 1, ErrorType: "New", ErrorMessage: "m"},
		{Function: "RawRuntimeFunction", Count: -1, Remaining: -1, After: true, ErrorType: "Raw", ErrorMessage: "fault injected by devstack"},
	}
	if got := s.Faults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Faults() = %+v, want %+v", got, want)
	}
	// The replacement dropped Skip: the very next call fails, before the function runs.
	mustFunctionError(t, invoke(t, s, "EchoFunction", `{}`), "New")
	mustFunctionError(t, invoke(t, s, "RawRuntimeFunction", `{}`), "Raw")
	if st := s.Stats(); st["EchoFunction"].ColdStarts != 0 || st["RawRuntimeFunction"].ColdStarts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultHTTPAfterSkip(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	fx := newSideEffects(t)
	faults := s.URL() + "/_devstack/faults"
	r := post(t, faults, `{"function":"EchoFunction","count":1,"after":true,"skip":1,"errorType":"Lost","errorMessage":"answer lost"}`, nil)
	if r.status != http.StatusNoContent {
		t.Fatalf("POST faults: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, faults, nil)
	r = do(t, req)
	var listed []Fault
	if err := json.Unmarshal(r.body, &listed); err != nil {
		t.Fatalf("GET faults: %v: %s", err, r.body)
	}
	want := []Fault{{Function: "EchoFunction", Count: 1, Remaining: 1, Skip: 1, After: true, ErrorType: "Lost", ErrorMessage: "answer lost"}}
	if !reflect.DeepEqual(listed, want) {
		t.Errorf("GET faults: %s, want %+v", r.body, want)
	}
	for _, field := range []string{`"after":true`, `"skip":1`, `"remaining":1`, `"count":1`} {
		if !strings.Contains(string(r.body), field) {
			t.Errorf("GET faults %s lacks %s", r.body, field)
		}
	}

	if r := post(t, invokeURL(s, "EchoFunction"), fx.event("first", 0), nil); r.status != 200 || r.header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("skipped invoke: %d %v %s", r.status, r.header, r.body)
	}
	r = post(t, invokeURL(s, "EchoFunction"), fx.event("second", 0), nil)
	if r.status != 200 || r.header.Get("X-Amz-Function-Error") != "Unhandled" || string(r.body) != `{"errorMessage":"answer lost","errorType":"Lost"}` {
		t.Fatalf("faulted invoke: %d %v %s", r.status, r.header, r.body)
	}
	if got := fx.lines(t); !reflect.DeepEqual(got, []string{"first", "second"}) {
		t.Errorf("side effects %q", got)
	}
	if r := do(t, req); strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("GET faults after use: %s", r.body)
	}
	if r := post(t, faults, `{"function":"EchoFunction","count":1,"skip":-1}`, nil); r.status != http.StatusBadRequest {
		t.Errorf("skip -1: %d %s", r.status, r.body)
	}
}

func TestFaultConcurrentSkipCount(t *testing.T) {
	t.Parallel()
	const n, skip, count = 16, 3, 4
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("after=%v", after), func(t *testing.T) {
			t.Parallel()
			s, _ := start(t, nil)
			fx := newSideEffects(t)
			mustInject(t, s, FaultSpec{Function: "EchoFunction", After: after, Skip: skip, Count: count, ErrorType: "Concurrent"})
			var wg sync.WaitGroup
			var mu sync.Mutex
			faulted, ok := 0, 0
			begin := make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-begin
					res := invoke(t, s, "EchoFunction", fx.event(fmt.Sprint(i), 30))
					var fe *FunctionError
					mu.Lock()
					defer mu.Unlock()
					switch err := res.Err(); {
					case err == nil:
						ok++
					case errors.As(err, &fe) && fe.Type == "Concurrent":
						faulted++
					default:
						t.Errorf("invoke %d: %v", i, err)
					}
				}()
			}
			close(begin)
			wg.Wait()
			if faulted != count || ok != n-count {
				t.Errorf("%d faulted, %d ok; want %d and %d", faulted, ok, count, n-count)
			}
			ran := n - count // before the handler: faulted calls never ran
			if after {
				ran = n
			}
			if got := len(fx.lines(t)); got != ran {
				t.Errorf("%d handler runs, want %d", got, ran)
			}
			if st := s.Stats()["EchoFunction"]; st.Invocations != n || st.Faults != count || st.Errors != count {
				t.Errorf("stats %+v", st)
			}
			if f := s.Faults(); len(f) != 0 {
				t.Errorf("fault still armed: %+v", f)
			}
		})
	}
}
