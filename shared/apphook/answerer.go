package apphook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Answer is what the app plane sends back.
type Answer struct {
	Status string // StatusSucceeded, StatusFailed or StatusInProgress (a heartbeat)
	Error  string
	Cause  string
	Output []byte // JSON object, succeeded only
}

// Answerer is the API's side.
type Answerer struct {
	Store Store
	Tasks Tasks
	// Ops tells whether the request's operation still runs, when Step Functions
	// refuses the stored token (see closed).
	Ops OperationReader
	Now func() time.Time
}

// OperationReader reads an operation (shared/store implements it).
type OperationReader interface {
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
}

// Answer records a and hands it to the waiting Task. The first answer wins; the same
// answer again returns the request unchanged; a different one is *AnsweredError; an
// answer the flow no longer waits for is *ExpiredError and changes nothing but the
// request's status (expired). The answer is recorded before Step Functions gets it,
// with a write conditioned on the version read, so of two concurrent answers one is
// handed on. If Step Functions then refuses the token, see closed.
func (a *Answerer) Answer(ctx context.Context, tenantID, id string, ans Answer) (*Request, error) {
	for range maxRaces {
		cur, err := a.Store.GetProvisioning(ctx, tenantID, id)
		if err != nil {
			return nil, err
		}
		switch cur.Status {
		case StatusExpired:
			return nil, &ExpiredError{RequestID: id}
		case StatusSucceeded, StatusFailed:
			if ans.Status == cur.Status && ans.Error == cur.Error && ans.Cause == cur.Cause && sameJSON(ans.Output, cur.Output) {
				return cur, nil // a duplicate: harmless
			}
			return nil, &AnsweredError{RequestID: id, Status: cur.Status}
		}
		if ans.Status == StatusInProgress {
			err := a.Tasks.SendTaskHeartbeat(ctx, cur.Token)
			if errors.Is(err, ErrTaskClosed) {
				return a.closed(ctx, cur)
			}
			return cur, err
		}
		n := *cur
		n.Status, n.Error, n.Cause, n.Output = ans.Status, ans.Error, ans.Cause, ans.Output
		at := a.now()
		n.AnsweredAt = &at
		if err := a.Store.PutProvisioning(ctx, &n, cur.Version); conflict(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		if ans.Status == StatusSucceeded {
			err = a.Tasks.SendTaskSuccess(ctx, n.Token, output(&n))
		} else {
			err = a.Tasks.SendTaskFailure(ctx, n.Token, ErrorFailed, failureCause(&n))
		}
		switch {
		case errors.Is(err, ErrTaskClosed):
			return a.closed(ctx, &n)
		case err != nil:
			// Step Functions did not take it: put the request back to pending, so the
			// app plane's retry of the same answer is handed on again.
			back := *cur
			if rerr := a.Store.PutProvisioning(ctx, &back, n.Version); rerr != nil {
				return nil, fmt.Errorf("%w (and putting the request back: %v)", err, rerr)
			}
			return nil, err
		}
		return &n, nil
	}
	return nil, fmt.Errorf("provisioning request %s: kept losing races", id)
}

// closed decides what a refused token means. The token is the one of the Task attempt
// that last ran the step; it is closed after that attempt ended, which is either the
// end of the wait (timeout, the flow compensating or done) or a Task attempt that
// failed after its step ran and is about to be retried, with a new token. While the
// operation runs, the answer recorded stays for the flow: a retried Task gets it at
// once (Requester.Request replays it), and a flow that compensates asks for the undo
// anyway, since the apply was requested; the undo step expires what is still pending.
// Once the operation has ended nobody will read the answer: the request expires and
// the caller is told so.
func (a *Answerer) closed(ctx context.Context, cur *Request) (*Request, error) {
	if a.Ops != nil {
		op, err := a.Ops.GetOperation(ctx, cur.OperationID)
		if err != nil && !notFound(err) {
			return nil, err
		}
		if err == nil && op.Status == tenant.OpRunning {
			return cur, nil
		}
	}
	return nil, a.expire(ctx, cur)
}

// expire records that nobody waits for the request any more and returns the refusal.
func (a *Answerer) expire(ctx context.Context, cur *Request) error {
	n := *cur
	n.Status, n.Error, n.Cause, n.Output, n.AnsweredAt = StatusExpired, "", "", nil, nil
	if err := a.Store.PutProvisioning(ctx, &n, cur.Version); err != nil && !conflict(err) {
		return err
	}
	return &ExpiredError{RequestID: cur.ID}
}

func (a *Answerer) now() time.Time {
	if a.Now == nil {
		return time.Now().UTC()
	}
	return a.Now().UTC()
}

func sameJSON(a, b []byte) bool {
	return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b))
}
