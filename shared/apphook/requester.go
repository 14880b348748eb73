package apphook

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Requester is the flows' side: it asks and hands recorded answers to Step Functions.
type Requester struct {
	Store  Store
	Tasks  Tasks
	Events Publisher
	Log    *slog.Logger
	Now    func() time.Time
}

func (q *Requester) now() time.Time {
	if q.Now == nil {
		return time.Now().UTC()
	}
	return q.Now().UTC()
}

// Request asks for r (its ID, tenant, operation and what to do set) on behalf of the
// Task waiting with token, and returns once the request is recorded and announced;
// the Task then waits for the answer. A request answered already (the Task's earlier
// attempt got it) is answered to this token at once.
func (q *Requester) Request(ctx context.Context, r Request, token string) error {
	for range maxRaces {
		cur, err := q.Store.GetProvisioning(ctx, r.TenantID, r.ID)
		switch {
		case notFound(err):
			n := r
			n.Status, n.Token, n.RequestedAt, n.Published = StatusPending, token, q.now(), false
			if err := q.Store.PutProvisioning(ctx, &n, 0); conflict(err) {
				continue
			} else if err != nil {
				return err
			}
			cur = &n
		case err != nil:
			return err
		case cur.Status == StatusPending && cur.Token != token:
			n := *cur
			n.Token = token
			if err := q.Store.PutProvisioning(ctx, &n, cur.Version); conflict(err) {
				continue
			} else if err != nil {
				return err
			}
			cur = &n
		case cur.Status != StatusPending:
			return q.replay(ctx, cur, token)
		}
		return q.publish(ctx, cur)
	}
	return fmt.Errorf("provisioning request %s: kept losing races", r.ID)
}

// replay hands the recorded answer to the Task's current attempt.
func (q *Requester) replay(ctx context.Context, cur *Request, token string) error {
	q.Log.Info("provisioning request answered already; replaying the answer", "tenant_id", cur.TenantID,
		"operation_id", cur.OperationID, "request_id", cur.ID, "status", cur.Status)
	switch cur.Status {
	case StatusSucceeded:
		return q.Tasks.SendTaskSuccess(ctx, token, output(cur))
	case StatusFailed:
		return q.Tasks.SendTaskFailure(ctx, token, ErrorFailed, failureCause(cur))
	default:
		return q.Tasks.SendTaskFailure(ctx, token, ErrorExpired, "the app plane did not answer in time")
	}
}

// publish announces a pending request once: the flag is written after the event, so
// a crash between the two announces it again (consumers dedupe on request_id).
func (q *Requester) publish(ctx context.Context, cur *Request) error {
	if cur.Published {
		return nil
	}
	ev := Event{RequestID: cur.ID, TenantID: cur.TenantID, OperationID: cur.OperationID, Kind: cur.Kind, Action: cur.Action,
		Attempt: cur.Attempt, FromPlan: cur.FromPlan, ToPlan: cur.ToPlan, Limits: cur.Limits, AnswerPath: AnswerPath(cur.TenantID, cur.ID),
		TimeoutSeconds: cur.TimeoutSeconds, HeartbeatSeconds: cur.HeartbeatSeconds, RequestedAt: cur.RequestedAt}
	if err := q.Events.Publish(ctx, DetailType, ev); err != nil {
		return err
	}
	for range maxRaces {
		n := *cur
		n.Published = true
		err := q.Store.PutProvisioning(ctx, &n, cur.Version)
		if !conflict(err) {
			if err == nil {
				q.Log.Info("provisioning requested", "tenant_id", cur.TenantID, "operation_id", cur.OperationID,
					"request_id", cur.ID, "action", cur.Action)
			}
			return err
		}
		if cur, err = q.Store.GetProvisioning(ctx, cur.TenantID, cur.ID); err != nil {
			return err
		}
		if cur.Published {
			return nil
		}
	}
	return fmt.Errorf("provisioning request %s: kept losing races", cur.ID)
}

// Expire records that the flow stopped waiting for a request that is still pending;
// a request answered or expired already is left as it is. It returns the request
// (nil when there is none).
func (q *Requester) Expire(ctx context.Context, tenantID, id string) (*Request, error) {
	for range maxRaces {
		cur, err := q.Store.GetProvisioning(ctx, tenantID, id)
		if notFound(err) {
			return nil, nil
		}
		if err != nil || cur.Status != StatusPending {
			return cur, err
		}
		n := *cur
		n.Status = StatusExpired
		if err := q.Store.PutProvisioning(ctx, &n, cur.Version); !conflict(err) {
			return &n, err
		}
	}
	return nil, fmt.Errorf("provisioning request %s: kept losing races", id)
}

// Skip answers a Task that has nothing to ask (an undo of an apply never requested).
func (q *Requester) Skip(ctx context.Context, token, why string) error {
	return q.Tasks.SendTaskSuccess(ctx, token, fmt.Sprintf(`{"skipped":%q}`, why))
}

func output(r *Request) string {
	if len(r.Output) == 0 {
		return `{}`
	}
	return string(r.Output)
}

func failureCause(r *Request) string {
	if r.Cause == "" {
		return r.Error
	}
	return r.Error + ": " + r.Cause
}

// Undo is the compensation's ask, shared by the flows: a still pending apply of the
// operation is expired first (its late answer then changes nothing), and the undo r
// is asked only if the apply was requested; otherwise the Task is answered at once.
func (q *Requester) Undo(ctx context.Context, operationID string, r Request, token string) error {
	apply, err := q.Expire(ctx, r.TenantID, RequestID(operationID, 0, ActionApply))
	if err != nil {
		return err
	}
	if apply == nil {
		return q.Skip(ctx, token, "the app plane was not asked to provision")
	}
	return q.Request(ctx, r, token)
}
