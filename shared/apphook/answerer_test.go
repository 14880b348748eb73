package apphook_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// memStore keeps requests in memory with the version conditions of shared/store.
type memStore struct {
	mu sync.Mutex
	m  map[string]apphook.Request
}

func (s *memStore) GetProvisioning(_ context.Context, tenantID, id string) (*apphook.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[tenantID+"/"+id]
	if !ok {
		return nil, &tenant.NotFoundError{Kind: "provisioning request", ID: id}
	}
	return &r, nil
}

func (s *memStore) PutProvisioning(_ context.Context, r *apphook.Request, expected int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]apphook.Request{}
	}
	if s.m[r.TenantID+"/"+r.ID].Version != expected {
		return &tenant.ConflictError{TenantID: r.TenantID}
	}
	r.Version = expected + 1
	s.m[r.TenantID+"/"+r.ID] = *r
	return nil
}

// sfnTasks plays Step Functions' side of the tokens: open ones take one answer, any
// other is closed (the Task attempt it belonged to has ended).
type sfnTasks struct {
	open map[string]bool
	got  map[string]string // token → "success <output>" or "failure <error>"
}

func (f *sfnTasks) send(token, what string) error {
	if !f.open[token] {
		return fmt.Errorf("%w: TaskTimedOut", apphook.ErrTaskClosed)
	}
	delete(f.open, token)
	f.got[token] = what
	return nil
}
func (f *sfnTasks) SendTaskSuccess(_ context.Context, token, output string) error {
	return f.send(token, "success "+output)
}
func (f *sfnTasks) SendTaskFailure(_ context.Context, token, errName, _ string) error {
	return f.send(token, "failure "+errName)
}
func (f *sfnTasks) SendTaskHeartbeat(_ context.Context, token string) error {
	if !f.open[token] {
		return fmt.Errorf("%w: TaskTimedOut", apphook.ErrTaskClosed)
	}
	return nil
}

// ops answers the status of every operation.
type ops tenant.OperationStatus

func (o ops) GetOperation(_ context.Context, id string) (*tenant.Operation, error) {
	return &tenant.Operation{ID: id, Status: tenant.OperationStatus(o)}, nil
}

type nopEvents struct{ n int }

func (p *nopEvents) Publish(context.Context, string, any) error { p.n++; return nil }

// TestAnswerBetweenAttemptsReachesTheRetry: the hook's Task attempt 1 recorded the
// request and then failed (its invoke's answer was lost); the app plane answers while
// Step Functions waits to retry, so the token it finds is closed. The answer must be
// kept for the retried Task, which gets it at once, instead of expiring the request
// and failing the retry with AppProvisioningExpired.
func TestAnswerBetweenAttemptsReachesTheRetry(t *testing.T) {
	for _, status := range []string{apphook.StatusSucceeded, apphook.StatusFailed, apphook.StatusInProgress} {
		t.Run(status, func(t *testing.T) {
			ctx := context.Background()
			store := &memStore{}
			tasks := &sfnTasks{open: map[string]bool{"t1": true}, got: map[string]string{}}
			events := &nopEvents{}
			q := &apphook.Requester{Store: store, Tasks: tasks, Events: events, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			a := &apphook.Answerer{Store: store, Tasks: tasks, Ops: ops(tenant.OpRunning)}
			req := apphook.Request{ID: apphook.RequestID("op_1", 0, apphook.ActionApply), TenantID: "t", OperationID: "op_1",
				Kind: tenant.KindUpgrade, Action: apphook.ActionApply}

			if err := q.Request(ctx, req, "t1"); err != nil {
				t.Fatal(err)
			}
			delete(tasks.open, "t1") // attempt 1 fails after its step ran; the retry has not started yet

			ans := apphook.Answer{Status: status}
			if status == apphook.StatusFailed {
				ans.Error = "QuotaExceeded"
			}
			got, err := a.Answer(ctx, "t", req.ID, ans)
			if err != nil {
				t.Fatalf("answer between attempts: %v", err)
			}
			if want := map[string]string{apphook.StatusInProgress: apphook.StatusPending}[status]; want != "" && got.Status != want || want == "" && got.Status != status {
				t.Errorf("answer recorded as %s", got.Status)
			}

			tasks.open["t2"] = true // the retry
			if err := q.Request(ctx, req, "t2"); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{apphook.StatusSucceeded: "success {}", apphook.StatusFailed: "failure " + apphook.ErrorFailed, apphook.StatusInProgress: ""}[status]
			if tasks.got["t2"] != want {
				t.Errorf("the retried Task got %q, want %q", tasks.got["t2"], want)
			}
			if events.n != 1 {
				t.Errorf("%d events, want the request announced once", events.n)
			}
			if status == apphook.StatusInProgress {
				// The request still waits: the real answer reaches the retry's token.
				if _, err := a.Answer(ctx, "t", req.ID, apphook.Answer{Status: apphook.StatusSucceeded}); err != nil || tasks.got["t2"] != "success {}" {
					t.Errorf("answer after the heartbeat: %v, the Task got %q", err, tasks.got["t2"])
				}
			}
		})
	}
}

// TestAnswerAfterTheFlowStoppedWaiting: once the flow recorded that it stopped
// waiting (the undo step expires the apply), an answer is refused and changes nothing.
func TestAnswerAfterTheFlowStoppedWaiting(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	tasks := &sfnTasks{open: map[string]bool{"t1": true}, got: map[string]string{}}
	q := &apphook.Requester{Store: store, Tasks: tasks, Events: &nopEvents{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a := &apphook.Answerer{Store: store, Tasks: tasks, Ops: ops(tenant.OpRunning)}
	req := apphook.Request{ID: apphook.RequestID("op_2", 0, apphook.ActionApply), TenantID: "t", OperationID: "op_2", Action: apphook.ActionApply}
	if err := q.Request(ctx, req, "t1"); err != nil {
		t.Fatal(err)
	}
	delete(tasks.open, "t1") // the wait timed out
	if r, err := q.Expire(ctx, "t", req.ID); err != nil || r.Status != apphook.StatusExpired {
		t.Fatalf("expire: %v %+v", err, r)
	}
	for _, s := range []string{apphook.StatusSucceeded, apphook.StatusInProgress} {
		var ee *apphook.ExpiredError
		if _, err := a.Answer(ctx, "t", req.ID, apphook.Answer{Status: s}); !asExpired(err, &ee) {
			t.Errorf("%s after expiry: %v, want ExpiredError", s, err)
		}
	}
	if r, _ := store.GetProvisioning(ctx, "t", req.ID); r.Status != apphook.StatusExpired {
		t.Errorf("request %s", r.Status)
	}
}

func asExpired(err error, ee **apphook.ExpiredError) bool {
	e, ok := err.(*apphook.ExpiredError)
	*ee = e
	return ok
}

// TestAnswerAfterTheOperationEnded: the token is closed and the operation is over
// (the undo's wait ended and the flow released the tenant): nobody will read the
// answer, so it is refused and the request expires.
func TestAnswerAfterTheOperationEnded(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	tasks := &sfnTasks{open: map[string]bool{"t1": true}, got: map[string]string{}}
	q := &apphook.Requester{Store: store, Tasks: tasks, Events: &nopEvents{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a := &apphook.Answerer{Store: store, Tasks: tasks, Ops: ops(tenant.OpFailed)}
	req := apphook.Request{ID: apphook.RequestID("op_3", 0, apphook.ActionUndo), TenantID: "t", OperationID: "op_3", Action: apphook.ActionUndo}
	if err := q.Request(ctx, req, "t1"); err != nil {
		t.Fatal(err)
	}
	delete(tasks.open, "t1")
	var ee *apphook.ExpiredError
	if _, err := a.Answer(ctx, "t", req.ID, apphook.Answer{Status: apphook.StatusSucceeded}); !asExpired(err, &ee) {
		t.Errorf("answer after the operation ended: %v, want ExpiredError", err)
	}
	if r, _ := store.GetProvisioning(ctx, "t", req.ID); r.Status != apphook.StatusExpired {
		t.Errorf("request %s, want expired", r.Status)
	}
}
