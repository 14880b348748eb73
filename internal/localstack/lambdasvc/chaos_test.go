package lambdasvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// chaosPattern invokes EchoFunction n times one after another (each appending its tag
// to fx when its handler runs) and returns what each got: "ok", "before:<type>" or
// "after:<type>".
func chaosPattern(t *testing.T, s *Service, fx sideEffects, tag string, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range n {
		res := invoke(t, s, "EchoFunction", fx.event(fmt.Sprintf("%s%d", tag, i), 0))
		var fe *FunctionError
		switch err := res.Err(); {
		case err == nil:
			out[i] = "ok"
		case errors.As(err, &fe) && fe.Type == ChaosBeforeError:
			out[i] = "before:" + fe.Type
		case errors.As(err, &fe) && fe.Type == ChaosAfterError:
			out[i] = "after:" + fe.Type
		default:
			t.Fatalf("invoke %d: %v", i, err)
		}
	}
	return out
}

func countPrefix(pattern []string, prefix string) int {
	n := 0
	for _, p := range pattern {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

// TestChaosSeeded: under one seed the n-th invocation is faulted the same way every
// time; faults before the handler leave no side effect, faults after it do; the rate
// and the after share are what was asked for, and the counts add up.
func TestChaosSeeded(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	const n = 400
	spec := Chaos{Rate: 0.25, AfterShare: 0.5, Seed: 42}
	if err := s.SetChaos(spec); err != nil {
		t.Fatal(err)
	}
	fx := newSideEffects(t)
	first := chaosPattern(t, s, fx, "a", n)
	before, after := countPrefix(first, "before:"), countPrefix(first, "after:")
	// 100 faults expected; a binomial(400, 0.25) is within 60..140 all but never.
	if f := before + after; f < 60 || f > 140 {
		t.Errorf("%d faults in %d invocations at rate 0.25", f, n)
	}
	if before < 25 || after < 25 {
		t.Errorf("before %d, after %d: want about half each", before, after)
	}
	// A handler ran for every invocation but the ones faulted before it.
	lines := fx.lines(t)
	if len(lines) != n-before {
		t.Errorf("%d handler runs, want %d", len(lines), n-before)
	}
	for i, p := range first {
		ran := slices.Contains(lines, fmt.Sprintf("a%d", i))
		if ran == strings.HasPrefix(p, "before:") {
			t.Errorf("invocation %d (%s): handler ran %v", i, p, ran)
		}
	}
	total, by := s.ChaosStats()
	want := ChaosStats{Invocations: n, Before: before, After: after}
	if total != want || by["EchoFunction"] != want || len(by) != 2 {
		t.Errorf("ChaosStats() = %+v %+v, want %+v for EchoFunction (and zero for RawRuntimeFunction)", total, by, want)
	}
	if st := s.Stats()["EchoFunction"]; st.Invocations != n || st.Faults != before+after || st.Errors != before+after {
		t.Errorf("stats %+v", st)
	}

	// The same seed again restarts the streams: the same pattern, counts from zero.
	if err := s.SetChaos(spec); err != nil {
		t.Fatal(err)
	}
	if again := chaosPattern(t, s, newSideEffects(t), "b", n); !reflect.DeepEqual(again, first) {
		t.Errorf("seed 42 twice gave different patterns:\n%v\n%v", first, again)
	}
	if total, _ := s.ChaosStats(); total != want {
		t.Errorf("after the restart ChaosStats() = %+v, want %+v", total, want)
	}
	// Another seed, another pattern.
	spec.Seed = 43
	if err := s.SetChaos(spec); err != nil {
		t.Fatal(err)
	}
	if other := chaosPattern(t, s, newSideEffects(t), "c", n); reflect.DeepEqual(other, first) {
		t.Error("seeds 42 and 43 gave the same pattern")
	}
	// Off: nothing faulted; the last counts stay readable.
	s.ClearChaos()
	if p := chaosPattern(t, s, newSideEffects(t), "d", 20); countPrefix(p, "ok") != 20 {
		t.Errorf("after ClearChaos: %v", p)
	}
	if total, _ := s.ChaosStats(); total.Invocations != n {
		t.Errorf("after ClearChaos ChaosStats() = %+v", total)
	}
}

// TestChaosSelection: Functions and Except choose what is faulted; an armed
// FaultSpec decides its invocations before Chaos; ClearFaults turns Chaos off; bad
// specs are refused.
func TestChaosSelection(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	for _, bad := range []Chaos{{Rate: 0}, {Rate: 1.5}, {Rate: 0.5, AfterShare: -0.1}, {Rate: 0.5, AfterShare: 2}} {
		if err := s.SetChaos(bad); err == nil {
			t.Errorf("SetChaos(%+v) accepted", bad)
		}
	}
	if err := s.SetChaos(Chaos{Rate: 1, Except: []string{"Nope"}}); !errors.Is(err, ErrUnknownFunction) {
		t.Errorf("unknown function: %v", err)
	}
	if fns := s.ChaosFunctions(); len(fns) != 0 {
		t.Fatalf("refused specs armed chaos on %v", fns)
	}

	// Rate 1, everything but EchoFunction, all after the handler.
	if err := s.SetChaos(Chaos{Rate: 1, AfterShare: 1, Except: []string{"arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"}}); err != nil {
		t.Fatal(err)
	}
	if fns := s.ChaosFunctions(); !slices.Equal(fns, []string{"RawRuntimeFunction"}) {
		t.Errorf("ChaosFunctions() = %v", fns)
	}
	if res := invoke(t, s, "EchoFunction", `{}`); res.Err() != nil {
		t.Errorf("excepted function faulted: %v", res.Err())
	}
	mustFunctionError(t, invoke(t, s, "RawRuntimeFunction", `{}`), ChaosAfterError)

	// Only EchoFunction, before the handler, with its own error type.
	if err := s.SetChaos(Chaos{Rate: 1, Functions: []string{"EchoFunction"}, BeforeError: "Lambda.TooManyRequestsException", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if fe := mustFunctionError(t, invoke(t, s, "EchoFunction", `{}`), "Lambda.TooManyRequestsException"); fe.Message != "m" {
		t.Errorf("message %q", fe.Message)
	}
	if res := invoke(t, s, "RawRuntimeFunction", `{}`); res.Err() != nil {
		t.Errorf("unselected function faulted: %v", res.Err())
	}
	// An armed fault takes the invocation; Chaos draws nothing for it.
	mustInject(t, s, FaultSpec{Function: "EchoFunction", Count: 1, ErrorType: "Armed"})
	mustFunctionError(t, invoke(t, s, "EchoFunction", `{}`), "Armed")
	mustFunctionError(t, invoke(t, s, "EchoFunction", `{}`), "Lambda.TooManyRequestsException")
	if total, by := s.ChaosStats(); total != (ChaosStats{Invocations: 2, Before: 2}) || len(by) != 1 {
		t.Errorf("ChaosStats() = %+v %+v", total, by)
	}
	s.ClearFaults()
	if res := invoke(t, s, "EchoFunction", `{}`); res.Err() != nil {
		t.Errorf("after ClearFaults: %v", res.Err())
	}
}

// TestChaosConcurrent: concurrent invocations draw from the stream exactly once
// each, so the counts are exact and handler runs = invocations - faults before.
func TestChaosConcurrent(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	if err := s.SetChaos(Chaos{Rate: 0.3, AfterShare: 0.5, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	fx := newSideEffects(t)
	const n = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := invoke(t, s, "EchoFunction", fx.event(fmt.Sprint(i), 5))
			kind := "ok"
			var fe *FunctionError
			if errors.As(res.Err(), &fe) {
				kind = fe.Type
			}
			mu.Lock()
			got[kind]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	total, _ := s.ChaosStats()
	if total.Invocations != n || total.Before != got[ChaosBeforeError] || total.After != got[ChaosAfterError] || got["ok"]+total.Faults() != n {
		t.Errorf("ChaosStats %+v, results %v", total, got)
	}
	if lines := len(fx.lines(t)); lines != n-total.Before {
		t.Errorf("%d handler runs, want %d", lines, n-total.Before)
	}
}

// TestChaosHTTPAndObserve: the control endpoints arm, list and clear Chaos, and an
// observer sees every invocation with the fault that decided it.
func TestChaosHTTPAndObserve(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	var mu sync.Mutex
	var seen []Invocation
	stop := s.Observe(func(inv Invocation) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, inv)
	})
	chaos := s.URL() + "/_devstack/chaos"
	if r := post(t, chaos, `{"rate":1,"afterShare":0,"functions":["EchoFunction"],"bogus":1}`, nil); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
	if r := post(t, chaos, `{"rate":1,"functions":["Nope"]}`, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown function: %d %s", r.status, r.body)
	}
	if r := post(t, chaos, `{"rate":1,"afterShare":0,"seed":3,"functions":["EchoFunction"]}`, nil); r.status != http.StatusNoContent {
		t.Fatalf("POST chaos: %d %s", r.status, r.body)
	}
	mustFunctionError(t, invoke(t, s, "EchoFunction", `{"n":1}`), ChaosBeforeError)
	if res := invoke(t, s, "RawRuntimeFunction", `{"n":2}`); res.Err() != nil {
		t.Fatal(res.Err())
	}
	req, _ := http.NewRequest(http.MethodGet, chaos, nil)
	var listed struct {
		Functions  []string              `json:"functions"`
		Total      ChaosStats            `json:"total"`
		ByFunction map[string]ChaosStats `json:"byFunction"`
	}
	if r := do(t, req); json.Unmarshal(r.body, &listed) != nil || !slices.Equal(listed.Functions, []string{"EchoFunction"}) ||
		listed.Total != (ChaosStats{Invocations: 1, Before: 1}) {
		t.Errorf("GET chaos: %s", r.body)
	}
	del, _ := http.NewRequest(http.MethodDelete, chaos, nil)
	if r := do(t, del); r.status != http.StatusNoContent {
		t.Errorf("DELETE chaos: %d", r.status)
	}
	if res := invoke(t, s, "EchoFunction", `{"n":3}`); res.Err() != nil {
		t.Errorf("after DELETE: %v", res.Err())
	}
	stop()
	invoke(t, s, "EchoFunction", `{"n":4}`)
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, inv := range seen {
		got = append(got, inv.Function+" "+string(inv.Payload)+" "+inv.Fault+" "+inv.Result.FunctionError)
	}
	want := []string{"EchoFunction {\"n\":1} before Unhandled", "RawRuntimeFunction {\"n\":2}  ", "EchoFunction {\"n\":3}  "}
	if !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}
