package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Store is the persistence the kit needs (shared/store implements it).
type Store interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	Change(ctx context.Context, id string, by store.Actor, decide store.Decide) (*tenant.Tenant, error)
	CreateOperation(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
	UpdateOperation(ctx context.Context, u store.OpUpdate) error
	Mark(ctx context.Context, id, m string) error
}

var _ Store = (*store.Store)(nil)

// Definition is what the kit, the reconciler and the operator routes need to know of
// one flow.
type Definition struct {
	// Kind is the operation kind (tenant.KindUpgrade, ...).
	Kind string
	// Busy is the state the tenant is in while the flow owns it.
	Busy tenant.State
	// StateMachineARN runs the flow; executions are named by Operation.ExecutionName.
	StateMachineARN string
	// Settle says how a failed operation releases its tenant: read from the records
	// (never from the path the execution took), so the release step, the reconciler
	// and an operator retry all decide the same way.
	Settle func(ctx context.Context, t *tenant.Tenant, op *tenant.Operation) (Settlement, error)
	// RetryInput is the execution input of an operator retry: the flow's input with
	// resume set, so the state machine goes straight to its compensation chain.
	RetryInput func(op *tenant.Operation) any
	// RetryMutate, when set, writes in the operator retry's claim what the flow's own
	// claim writes besides the state: the retry may be the first claim of an
	// operation whose claim step never succeeded (a suspension's cause and reason).
	RetryMutate func(op *tenant.Operation, x *tenant.Tenant)
}

// Settlement is how a failed operation leaves its tenant.
type Settlement struct {
	// To is the state the tenant is released to (e.g. ACTIVE, or where it came from).
	To tenant.State
	// Mutate puts back the fields the flow changed (e.g. the previous plan).
	Mutate func(*tenant.Tenant)
	// Detach, when the operation never claimed the tenant (it failed validation),
	// removes what still points at the operation (a pending change) and reports
	// whether it changed anything.
	Detach func(*tenant.Tenant) bool
	// Incomplete names what compensation could not undo; non-empty means the
	// operation needs attention.
	Incomplete []string
}

// Kit carries the flow steps' shared dependencies.
type Kit struct {
	Store Store
	Log   *slog.Logger
	// Metrics receives the operating metrics of Finish and Release (nil: none), so
	// every flow reports its commits, failures and needs_attention the same way.
	Metrics Metrics
}

// actor is the audit identity of a flow's writes.
func actor(ref Ref, reason string) store.Actor {
	return store.Actor{Who: "system:" + ref.Kind, OperationID: ref.OperationID, Reason: reason}
}

// Logger returns the step logger with the fields every step line carries.
func (k *Kit) Logger(ref Ref, step string) *slog.Logger {
	return k.Log.With("tenant_id", ref.TenantID, "operation_id", ref.OperationID, "kind", ref.Kind, "step", step)
}

// Ensure returns the operation, creating it as op when the execution was started
// without one (by hand from the console, or by a caller other than the API), so every
// flow reports through GET /operations/{id}.
func (k *Kit) Ensure(ctx context.Context, op *tenant.Operation) (*tenant.Operation, error) {
	got, err := k.Store.GetOperation(ctx, op.ID)
	var nf *tenant.NotFoundError
	if !errors.As(err, &nf) {
		return got, err
	}
	created, err := k.Store.CreateOperation(ctx, op)
	var ce *tenant.ConflictError
	if errors.As(err, &ce) {
		return k.Store.GetOperation(ctx, op.ID) // created concurrently by a retry
	}
	return created, err
}

// Claim is what a flow's first step asks for.
type Claim struct {
	// From are the states the flow may start from.
	From []tenant.State
	// Busy is the flow's state while it owns the tenant.
	Busy tenant.State
	// Check refuses a tenant the flow cannot work on (plan direction, usage), with a
	// typed error. It runs on every read of the tenant.
	Check func(*tenant.Tenant) error
	// Mutate sets flow fields in the claiming write (e.g. clears a pending change).
	Mutate func(*tenant.Tenant)
	// Reason is the audit line of the claim.
	Reason string
}

// Claim moves the tenant into c.Busy for this operation and the operation to RUNNING,
// in one transaction. The API's reservation of the tenant for this same operation is
// what the claim expects to find (it takes it over); a repeat after a lost answer
// finds the claim in place and succeeds; a tenant held by another operation, or
// waiting for attention, is a *tenant.ConflictError; a state outside c.From an
// *tenant.InvalidTransitionError.
func (k *Kit) Claim(ctx context.Context, ref Ref, c Claim) (*tenant.Tenant, error) {
	return k.Store.Change(ctx, ref.TenantID, actor(ref, c.Reason), func(cur *tenant.Tenant) (store.Write, error) {
		if owns(cur, ref, c.Busy) {
			return store.Write{}, store.ErrUnchanged
		}
		if !reserved(cur, ref) {
			if err := Available(cur); err != nil {
				return store.Write{}, err
			}
		}
		if !slices.Contains(c.From, cur.State) {
			if err := tenant.CheckTransition(cur.State, c.Busy); err != nil {
				return store.Write{}, err
			}
			return store.Write{}, &tenant.InvalidTransitionError{From: cur.State, To: c.Busy, Allowed: cur.State.Allowed()}
		}
		if c.Check != nil {
			if err := c.Check(cur); err != nil {
				return store.Write{}, err
			}
		}
		return store.Write{To: c.Busy, Reason: c.Reason, Mutate: func(x *tenant.Tenant) {
			x.Operation, x.PreviousState = ref.OperationID, cur.State
			if c.Mutate != nil {
				c.Mutate(x)
			}
		}, Op: &store.OpUpdate{ID: ref.OperationID, Status: tenant.OpRunning, PreviousState: cur.State}}, nil
	})
}

// Available refuses a tenant that an operation holds (reserved or claimed) or that
// waits for an operator, naming that operation: the API's pre-checks, its reservation
// and Claim use the same rule.
func Available(t *tenant.Tenant) error {
	return t.Free("") // the policy's "free" precondition
}

// Owned returns the tenant when this operation holds it in busy, else a
// *tenant.ConflictError: a step never touches a tenant another operation owns.
func (k *Kit) Owned(ctx context.Context, ref Ref, busy tenant.State) (*tenant.Tenant, error) {
	t, err := k.Store.GetTenant(ctx, ref.TenantID)
	if err != nil {
		return nil, err
	}
	if !owns(t, ref, busy) {
		return nil, notOwned(t, ref, busy)
	}
	return t, nil
}

// owns reports whether ref's operation holds t by its claim: in busy, with the state
// it came from recorded (a claim always records it).
func owns(t *tenant.Tenant, ref Ref, busy tenant.State) bool {
	return t.State == busy && t.Operation == ref.OperationID && t.PreviousState != ""
}

// reserved reports whether ref's operation holds t only by the reservation the API (or
// the downgrade sweep) wrote before starting its execution: the operation id is set,
// the state is unchanged and nothing is recorded of where it came from. A purge's
// busy state is the state it starts from, so the recorded state is what tells a
// reservation from a claim.
func reserved(t *tenant.Tenant, ref Ref) bool {
	return t.Operation == ref.OperationID && t.PreviousState == ""
}

func notOwned(t *tenant.Tenant, ref Ref, busy tenant.State) error {
	return &tenant.ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("tenant is %s for operation %q, not %s for %s", t.State, t.Operation, busy, ref.OperationID)}
}

// Mark records, before a side effect, that this operation may have caused it.
func (k *Kit) Mark(ctx context.Context, ref Ref, m string) error {
	return k.Store.Mark(ctx, ref.OperationID, m)
}

// Finish is the last forward step: the tenant moves from busy to `to` with mutate
// applied and the operation becomes SUCCEEDED, in one transaction. A repeat after the
// write (its answer lost) sees SUCCEEDED and succeeds without writing, and without
// counting the commit again in the metrics.
func (k *Kit) Finish(ctx context.Context, ref Ref, busy, to tenant.State, mutate func(*tenant.Tenant), reason string) error {
	op, err := k.Store.GetOperation(ctx, ref.OperationID)
	if err != nil {
		return err
	}
	switch op.Status {
	case tenant.OpSucceeded:
		return nil
	case tenant.OpFailed:
		return &tenant.ConflictError{TenantID: ref.TenantID, Reason: "operation " + ref.OperationID + " has already failed"}
	}
	var plan tenant.Plan
	_, err = k.Store.Change(ctx, ref.TenantID, actor(ref, reason), func(cur *tenant.Tenant) (store.Write, error) {
		if !owns(cur, ref, busy) {
			return store.Write{}, notOwned(cur, ref, busy)
		}
		return store.Write{To: to, Reason: reason, Mutate: func(x *tenant.Tenant) {
			if mutate != nil {
				mutate(x)
			}
			x.Operation, x.PreviousState = "", ""
			plan = x.Plan
		}, Op: &store.OpUpdate{ID: ref.OperationID, Status: tenant.OpSucceeded}}, nil
	})
	if err != nil {
		return err
	}
	k.committed(ref, op, plan)
	return nil
}

// Compensating returns the tenant and operation when compensation of ref should run:
// the operation has not succeeded and still owns the tenant. ok is false otherwise
// (the commit happened and its answer was lost, or someone else holds the tenant):
// compensation then does nothing, because undoing a committed change or another
// operation's work is worse than leaving it.
func (k *Kit) Compensating(ctx context.Context, ref Ref, busy tenant.State) (t *tenant.Tenant, op *tenant.Operation, ok bool, err error) {
	if op, err = k.Store.GetOperation(ctx, ref.OperationID); err != nil {
		return nil, nil, false, err
	}
	if op.Status == tenant.OpSucceeded {
		k.Logger(ref, "compensate").Info("operation committed; nothing to compensate")
		return nil, op, false, nil
	}
	if t, err = k.Store.GetTenant(ctx, ref.TenantID); err != nil {
		return nil, nil, false, err
	}
	if !owns(t, ref, busy) {
		k.Logger(ref, "compensate").Warn("operation does not own the tenant; nothing compensated", "state", t.State, "owner", t.Operation)
		return t, op, false, nil
	}
	return t, op, true, nil
}

// Release ends a failed operation: its tenant goes to the Settlement's state (or, if
// the operation only reserved it or never got it, the reservation is lifted and
// anything else pointing at the operation detached) and the operation becomes FAILED
// with the caught error, the steps that could not be undone, and needs_attention when
// there are any — one transaction. An operation that had succeeded is left alone and
// reported SUCCEEDED. Repeating Release writes the same; only the call that failed the
// operation reports it (Outcome.Released, metrics).
func (k *Kit) Release(ctx context.Context, def *Definition, ref Ref, caught *CaughtError) (Outcome, error) {
	op, err := k.Store.GetOperation(ctx, ref.OperationID)
	if err != nil {
		return Outcome{}, err
	}
	if op.Status == tenant.OpSucceeded {
		return Outcome{Status: tenant.OpSucceeded}, nil
	}
	first := op.Status != tenant.OpFailed
	errName, cause := op.Error, op.Cause
	if caught != nil {
		errName, cause = caught.Error, caught.Message()
	}
	if errName == "" {
		errName, cause = "OperationFailed", "the flow ended without a recorded error"
	}
	t, err := k.Store.GetTenant(ctx, ref.TenantID)
	var nf *tenant.NotFoundError
	if errors.As(err, &nf) {
		// Nothing to release (an execution started by hand for a tenant that does not
		// exist): the operation still ends.
		if err := k.Store.UpdateOperation(ctx, store.OpUpdate{ID: op.ID, Status: tenant.OpFailed, Error: errName, Cause: cause}); err != nil {
			return Outcome{}, err
		}
		return Outcome{Status: tenant.OpFailed, Released: first}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	s, err := def.Settle(ctx, t, op)
	if err != nil {
		return Outcome{}, err
	}
	u := &store.OpUpdate{ID: op.ID, Status: tenant.OpFailed, Error: errName, Cause: cause, Incomplete: s.Incomplete}
	reason := fmt.Sprintf("%s failed: %s: %s", ref.Kind, errName, cause)
	if len(s.Incomplete) > 0 {
		reason += fmt.Sprintf(" (compensation incomplete: %v)", s.Incomplete)
	}
	wrote := false
	var left tenant.State // where the tenant is left: s.To only when the claim is released
	_, err = k.Store.Change(ctx, ref.TenantID, actor(ref, reason), func(cur *tenant.Tenant) (store.Write, error) {
		left = cur.State
		if owns(cur, ref, def.Busy) {
			wrote, left = true, s.To
			return store.Write{To: s.To, Reason: reason, Op: u, Mutate: func(x *tenant.Tenant) {
				if s.Mutate != nil {
					s.Mutate(x)
				}
				x.Operation, x.PreviousState = "", ""
				if len(s.Incomplete) > 0 {
					x.Attention = op.ID
				}
			}}, nil
		}
		probe := *cur
		detach := s.Detach != nil && s.Detach(&probe)
		unreserve := reserved(cur, ref)
		// An operation that never claimed its tenant may still leave something for an
		// operator (a Stripe event whose effect it never made): the tenant waits for
		// them too, unless another operation holds it or waits already.
		attend := len(s.Incomplete) > 0 && (unreserve || first && cur.Operation == "" && cur.Attention == "")
		if !detach && !unreserve && !attend {
			return store.Write{}, store.ErrUnchanged
		}
		wrote = true
		w := store.Write{Op: u, Mutate: func(x *tenant.Tenant) {
			if detach {
				s.Detach(x)
			}
			if unreserve {
				x.Operation = ""
			}
			if attend {
				x.Attention = op.ID
			}
		}}
		if detach || attend {
			// Dropping a pending change and the wait for an operator are audited;
			// lifting a reservation changed nothing a reader of the audit trail
			// would see.
			w.Reason = reason
		}
		return w, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	if !wrote {
		if err := k.Store.UpdateOperation(ctx, *u); err != nil {
			return Outcome{}, err
		}
	}
	k.Logger(ref, "release").Warn("operation failed; tenant released", "error", errName, "cause", cause,
		"released_to", left, "compensation_incomplete", s.Incomplete)
	if first {
		k.failed(ref, errName, s.Incomplete)
	}
	return Outcome{Status: tenant.OpFailed, CompensationIncomplete: s.Incomplete, Released: first}, nil
}
