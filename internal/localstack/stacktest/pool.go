package stacktest

import (
	"context"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// Pool is a fixed set of stacks that parallel subtests borrow one at a time, each
// freshly reset to the seeded example tenants. It exists for fixture tables whose
// entries are independent: with `sam local invoke` an invocation takes seconds (a
// sam process and a container each), so the table plays on several stacks at once.
type Pool struct {
	free    chan *stack.Stack
	timeout time.Duration
}

// NewPool starts n stacks with o (they stop when testenv.Run's TestMain ends) and
// returns them as a pool.
func NewPool(t *testing.T, n int, o Options) *Pool {
	t.Helper()
	if n < 1 {
		n = 1
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// One after another: starting several stacks at once on a busy 2-core machine
	// made the Step Functions server miss its start deadline.
	p := &Pool{free: make(chan *stack.Stack, n), timeout: timeout}
	for range n {
		s, err := stack.Start(ctx, stack.Options{RetryIntervalsZero: true, Log: quietLog{env: o.LogEnv}, Params: o.Params})
		if err != nil {
			t.Fatalf("start stack %d of %d: %v", len(p.free)+1, n, err)
		}
		testenv.OnStop(s.Close)
		p.free <- s
	}
	return p
}

// Get waits for a free stack, resets it and lends it to t until t ends.
func (p *Pool) Get(t *testing.T) *stack.Stack {
	t.Helper()
	var s *stack.Stack
	select {
	case s = <-p.free:
	case <-time.After(p.timeout):
		t.Fatal("no stack of the pool became free in time")
	}
	t.Cleanup(func() { p.free <- s })
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if err := s.Reset(ctx, false); err != nil {
		t.Fatalf("reset stack: %v", err)
	}
	return s
}
