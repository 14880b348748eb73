package lambdasvc

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestFaultDelay: a delayed fault holds the invocation before it fails it, without
// running the handler; the next invocation runs at once.
func TestFaultDelay(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	fx := newSideEffects(t)
	mustInject(t, s, FaultSpec{Function: "EchoFunction", Count: 1, Delay: 400 * time.Millisecond, ErrorType: "Lambda.ServiceException", Message: "slow"})
	began := time.Now()
	res := invoke(t, s, "EchoFunction", fx.event("held", 0))
	if took := time.Since(began); took < 400*time.Millisecond {
		t.Fatalf("the delayed fault answered after %s", took)
	}
	mustFunctionError(t, res, "Lambda.ServiceException")
	if got := fx.lines(t); len(got) != 0 {
		t.Fatalf("the handler ran under a before-fault: %v", got)
	}
	invoke(t, s, "EchoFunction", fx.event("next", 0))
	if got := fx.lines(t); !slices.Equal(got, []string{"next"}) {
		t.Fatalf("after the fault: %v", got)
	}
}

// TestKillEndsAnInvocationInFlight: Kill crashes the function's processes; the
// invocation in flight ends with Runtime.ExitError before its work is done, and the
// next invocation starts a new process.
func TestKillEndsAnInvocationInFlight(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	fx := newSideEffects(t)
	invoke(t, s, "EchoFunction", fx.event("warm", 0))
	done := make(chan Result, 1)
	go func() {
		res, _ := s.Invoke(context.Background(), "EchoFunction", []byte(fx.event("slow", 5000)))
		done <- res
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(fx.lines(t)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the slow invocation has written, now sleeps
	}
	n, err := s.Kill("EchoFunction")
	if err != nil || n == 0 {
		t.Fatalf("Kill: %d processes, %v", n, err)
	}
	select {
	case res := <-done:
		mustFunctionError(t, res, "Runtime.ExitError")
	case <-time.After(3 * time.Second):
		t.Fatal("the killed invocation did not end")
	}
	invoke(t, s, "EchoFunction", fx.event("after", 0))
	if got := fx.lines(t); !slices.Equal(got, []string{"warm", "slow", "after"}) {
		t.Fatalf("effects %v", got)
	}
}
