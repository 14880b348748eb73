package tenant

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file is the lifecycle policy: who may do what to a tenant, from which states,
// and under which conditions. Every entry point asks it (the API's starters, the
// Stripe webhook, the sweeps, the operator retry) and the first step of every flow asks
// it again when it claims the tenant, so a request and its flow cannot disagree, and a
// rule is written once. docs/policy.md is rendered from Rules (go run ./cmd/policydoc).

// Actor is the class of caller the policy decides for. A request's actor comes from
// its credentials (the API's JWT), never from its body.
type Actor string

// The actors.
const (
	// ActorOperator is a token with the admin scope, or an execution started by hand
	// (only operators can start one).
	ActorOperator Actor = "operator"
	// ActorTenant is a token bound to the tenant it acts on (its tenant_id claim).
	ActorTenant Actor = "tenant"
	// ActorMetering is the metering service (usage scope): it reports usage only.
	ActorMetering Actor = "metering"
	// ActorStripe is the Stripe webhook, acting on billing events.
	ActorStripe Actor = "stripe"
	// ActorSchedule is a scheduled sweep (period-end changes, purges).
	ActorSchedule Actor = "schedule"
)

// Actors lists every actor in the order the docs show them.
var Actors = []Actor{ActorOperator, ActorTenant, ActorMetering, ActorStripe, ActorSchedule}

// Valid reports whether a is one of the actors.
func (a Actor) Valid() bool { return slices.Contains(Actors, a) }

// Action is something an actor asks of a tenant.
type Action string

// The actions of the policy.
const (
	ActCreate               Action = "create"
	ActUpgrade              Action = "upgrade"
	ActDowngrade            Action = "downgrade"
	ActDowngradeAtPeriodEnd Action = "downgrade_at_period_end"
	// ActRunScheduledDowngrade is the sweep starting a period-end downgrade that is due.
	ActRunScheduledDowngrade Action = "run_scheduled_downgrade"
	ActSuspend               Action = "suspend"
	// ActReactivate lifts a suspension.
	ActReactivate Action = "reactivate"
	// ActWinBack brings a DELETED tenant back inside its retention.
	ActWinBack     Action = "win_back"
	ActDelete      Action = "delete"
	ActExport      Action = "export"
	ActPurge       Action = "purge"
	ActUsageReport Action = "usage_report"
	// ActOverride sets or removes a tenant's overrides of its plan's limits and
	// features.
	ActOverride Action = "override"
	// ActRetry and ActResolve finish an operation whose compensation is incomplete.
	ActRetry   Action = "retry"
	ActResolve Action = "resolve"
	// The Stripe webhook's intents.
	ActStripeSuspendNonpayment Action = "stripe_suspend_nonpayment"
	ActStripeSuspendCanceled   Action = "stripe_suspend_canceled"
	ActStripeLiftNonpayment    Action = "stripe_lift_nonpayment"
	// ActStripeCureNonpayment removes the nonpayment cause a DELETED tenant kept from
	// its suspension, without touching anything else (the tenant stays DELETED).
	ActStripeCureNonpayment Action = "stripe_cure_nonpayment"
)

// Suspension causes (Tenant.SuspendCause): why a tenant is SUSPENDED, which decides
// who may lift it. The free-text reason is Tenant.SuspendReason.
const (
	CauseOperator   = "operator"
	CauseNonpayment = "nonpayment"
	CauseCanceled   = "canceled"
)

// Causes lists the suspension causes.
var Causes = []string{CauseOperator, CauseNonpayment, CauseCanceled}

// Rule is one row of the policy: an action, who may ask for it, from which states,
// and what must hold besides.
type Rule struct {
	Action Action
	// What names the action in messages and in the docs.
	What string
	// Actors may ask for the action; anyone else is refused (*ForbiddenError).
	Actors []Actor
	// From are the states the action starts from; nil means any state (or no tenant
	// yet: create).
	From []State
	// Via is the state the action's flow holds the tenant in, named by the
	// *InvalidTransitionError of a tenant outside From; empty when the action moves
	// no state (export, usage report).
	Via State
	// Ends is where the tenant is when the action has succeeded ("" = where it was).
	Ends State
	// Cause is the suspension cause the action records (suspensions only).
	Cause string
	// Lifts says, per actor, which suspension causes the action lifts: "*" is every
	// cause. An actor absent here lifts none.
	Lifts map[Actor][]string
	// Pre are the preconditions, checked in order after the actor and the state
	// (those marked early before the state).
	Pre []*Precondition
	// Why is the decision behind the row, in one sentence, for the docs.
	Why string
}

// Precondition is a named condition of a rule.
type Precondition struct {
	Name string
	// Doc says what it requires and how it refuses.
	Doc string
	// early preconditions are checked before the tenant's state: their refusal tells
	// more than "invalid transition" (a purged tenant's retention is over).
	early bool
	check func(q *Query, r *Rule, v *Verdict) error
}

// Query is what an entry point asks the policy.
type Query struct {
	Action Action
	Actor  Actor
	// Tenant is the tenant as just read; nil only for create, retry and resolve.
	Tenant *Tenant
	// Plan is the plan the action puts the tenant on (create, upgrade, downgrade,
	// reactivate, win-back).
	Plan Plan
	// Catalog knows the plans and their limits (plan actions).
	Catalog *Catalog
	// Now judges retention (win-back, purge); zero means the wall clock.
	Now time.Time
	// OperationID is the operation asking, when it already exists: its own hold on the
	// tenant (its reservation or its claim) and its own pending change are no
	// refusal.
	OperationID string
	// Operation is the operation a retry or resolve is about.
	Operation *Operation
}

// Verdict is the policy's answer to an allowed query.
type Verdict struct {
	Rule *Rule
	// Ends is the state the tenant is in once the action has succeeded: for a
	// win-back ACTIVE, or SUSPENDED when the tenant's suspension survives it.
	Ends State
	// Cause is the suspension cause the tenant has once the action has succeeded
	// (recorded by a suspension, kept by a win-back into SUSPENDED).
	Cause string
}

// ForbiddenError is an actor asking for what the policy does not let it do (the API
// answers 403).
type ForbiddenError struct {
	Action Action
	Actor  Actor
	// Allowed are the actors the rule allows (empty when the refusal is about the
	// tenant's suspension rather than the rule).
	Allowed []Actor
	Reason  string
}

func (e *ForbiddenError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s may not %s: %s", e.Actor.noun(), what(e.Action), e.Reason)
	}
	return fmt.Sprintf("%s may not %s; allowed: %s", e.Actor.noun(), what(e.Action), joinActors(e.Allowed))
}

// ExportRefusedError is an export the tenant can no longer have: it is purged, its
// retention is over (the purge may run at any time), or a purge holds it. The API
// answers 409 export-refused.
type ExportRefusedError struct {
	TenantID string
	Reason   string
}

func (e *ExportRefusedError) Error() string {
	return "export of " + e.TenantID + " refused: " + e.Reason
}

// DataHeld refuses, with *ExportRefusedError, an export of a tenant whose data is gone
// (PURGED) or may be erased at any moment (DELETED at or after purge_after at now).
// The policy's data_held precondition and the export service share it.
func DataHeld(t *Tenant, now time.Time) error {
	switch {
	case t.State == Purged:
		return &ExportRefusedError{TenantID: t.ID, Reason: "the tenant is purged; it has no data left to export"}
	case t.State == Deleted && t.PurgeAfter != nil && !now.Before(*t.PurgeAfter):
		return &ExportRefusedError{TenantID: t.ID, Reason: "the retention period ended at " + t.PurgeAfter.UTC().Format(time.RFC3339) + "; the tenant's data is being erased"}
	}
	return nil
}

// RetentionNotOverError refuses to purge a tenant whose retention window is still
// open: a purge cannot be undone, so it never runs early, whoever started it.
type RetentionNotOverError struct {
	TenantID   string
	PurgeAfter string
}

// Error says until when the tenant is kept.
func (e *RetentionNotOverError) Error() string {
	return fmt.Sprintf("tenant %s is retained until %s; it cannot be purged before", e.TenantID, e.PurgeAfter)
}

// The preconditions. Each is a variable so that the table below reads as a list of
// names; their order in a rule is the order they are checked in.
var (
	// PreFree is flow-kit's availability: one operation at a time.
	PreFree = &Precondition{Name: "free",
		Doc: "no other operation holds the tenant and none waits for an operator (needs attention); 409 `conflict` naming that operation",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			return q.Tenant.Free(q.OperationID)
		}}
	PreNoPendingChange = &Precondition{Name: "no_pending_change",
		Doc: "no period-end change is scheduled (other than the asking operation's own); 409 `conflict`",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			if pc := q.Tenant.PendingChange; pc != nil && pc.OperationID != q.OperationID {
				return &ConflictError{TenantID: q.Tenant.ID, Reason: "operation " + pc.OperationID + " is already scheduled for this tenant"}
			}
			return nil
		}}
	PrePendingIsThis = &Precondition{Name: "pending_change_is_this",
		Doc: "the tenant's pending change is the operation being started; 409 `conflict`",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			if pc := q.Tenant.PendingChange; pc == nil || pc.OperationID != q.OperationID {
				return &ConflictError{TenantID: q.Tenant.ID, Reason: "operation " + q.OperationID + " is not the tenant's pending change"}
			}
			return nil
		}}
	PrePlanKnown = &Precondition{Name: "plan_known",
		Doc: "the target plan is in the catalog; 422 `validation-failed` listing the plans",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			_, err := q.Catalog.Parse(string(q.Plan))
			return err
		}}
	PreHigherPlan = &Precondition{Name: "higher_plan",
		Doc: "the target plan is above the current one; 422 `validation-failed`",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			if q.Catalog.Compare(q.Plan, q.Tenant.Plan) <= 0 {
				return &ValidationError{Field: "plan", Reason: fmt.Sprintf("%s is not higher than the current plan %s", q.Plan, q.Tenant.Plan)}
			}
			return nil
		}}
	PreLowerPlan = &Precondition{Name: "lower_plan",
		Doc: "the target plan is below the current one; 422 `validation-failed`",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			if q.Catalog.Compare(q.Plan, q.Tenant.Plan) >= 0 {
				return &ValidationError{Field: "plan", Reason: fmt.Sprintf("%s is not lower than the current plan %s", q.Plan, q.Tenant.Plan)}
			}
			return nil
		}}
	PreUsageFits = &Precondition{Name: "usage_fits",
		Doc: "the tenant's reported usage fits every limit of the target plan, with the tenant's overrides in place of the plan's; 422 `usage-exceeds-limit` with every violation",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			return q.Catalog.FitsPlanWith(q.Tenant.Usage, q.Plan, q.Tenant.Overrides)
		}}
	PreRetentionNotOver = &Precondition{Name: "retention_not_over", early: true,
		Doc: "the tenant is not purged and the time is before `purge_after`; 409 `retention-expired` (checked before the state)",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			t := q.Tenant
			if t.State == Purged {
				return &RetentionExpiredError{TenantID: t.ID, PurgeAfter: formatTime(t.PurgeAfter)}
			}
			return t.CanReactivate(q.now())
		}}
	PreDataHeld = &Precondition{Name: "data_held", early: true,
		Doc:   "the tenant's data is still held: not PURGED, and not DELETED at or after `purge_after` (the purge may erase it at any moment); 409 `export-refused` (checked before the state). A purge holding the tenant is refused the same way by the export service, which reads the holding operation",
		check: func(q *Query, _ *Rule, _ *Verdict) error { return DataHeld(q.Tenant, q.now()) }}
	PreRetentionOver = &Precondition{Name: "retention_over",
		Doc: "the time is at or after `purge_after`; `RetentionNotOverError`",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			t := q.Tenant
			if t.PurgeAfter == nil {
				return &ValidationError{Field: "purge_after", Reason: "tenant " + t.ID + " has no retention end"}
			}
			if q.now().Before(*t.PurgeAfter) {
				return &RetentionNotOverError{TenantID: t.ID, PurgeAfter: t.PurgeAfter.UTC().Format(time.RFC3339)}
			}
			return nil
		}}
	// PreCauseLiftable and PreSuspensionKept name the actors that lift a cause, which
	// are read from Rules: their checks are set in init, after Rules exists.
	PreCauseLiftable = &Precondition{Name: "cause_liftable",
		Doc: "the tenant's suspension cause is one this actor lifts (column lifts); 403 `forbidden` otherwise"}
	PreSuspensionKept = &Precondition{Name: "suspension_kept",
		Doc: "a DELETED tenant that was suspended when it was deleted comes back SUSPENDED, cause kept, unless this actor lifts that cause; " +
			"it then comes back on the plan it had (another plan: 422 `validation-failed`)"}
	PreNeedsAttention = &Precondition{Name: "needs_attention",
		Doc: "the operation is FAILED with an incomplete compensation and nobody retried or resolved it; 409 `conflict`",
		check: func(q *Query, _ *Rule, _ *Verdict) error {
			op := q.Operation
			if op == nil || !op.NeedsAttention {
				id, status := "", ""
				if op != nil {
					id, status = op.ID, string(op.Status)
				}
				return &ConflictError{TenantID: opTenant(op), Reason: "operation " + id + " does not need attention (status " + status + ")"}
			}
			return nil
		}}
)

func init() {
	PreCauseLiftable.check = func(q *Query, r *Rule, v *Verdict) error {
		cause := q.Tenant.Cause()
		if r.lifts(q.Actor, cause) {
			v.Cause = ""
			return nil
		}
		return &ForbiddenError{Action: r.Action, Actor: q.Actor,
			Reason: fmt.Sprintf("the tenant is suspended (cause %q); %s", cause, liftersOf(cause))}
	}
	PreSuspensionKept.check = func(q *Query, r *Rule, v *Verdict) error {
		cause := q.Tenant.Cause()
		if cause == "" || r.lifts(q.Actor, cause) {
			return nil
		}
		v.Ends, v.Cause = Suspended, cause
		if q.Plan != q.Tenant.Plan {
			return &ValidationError{Field: "plan", Reason: fmt.Sprintf(
				"the tenant was suspended (cause %s) when it was deleted: it comes back SUSPENDED on its plan %s, so only %q may be asked; %s",
				cause, q.Tenant.Plan, q.Tenant.Plan, liftersOf(cause))}
		}
		return nil
	}
}

// every is the Lifts value for "any cause".
var every = []string{"*"}

// allButPurged are the states in which a tenant still has data.
var allButPurged = []State{Provisioning, Active, Upgrading, Downgrading, Suspended, Deleting, Deleted, Reactivating}

// Rules is the policy table. docs/policy.md is rendered from it; a test keeps the two
// equal.
var Rules = []*Rule{
	{Action: ActCreate, What: "create a tenant", Actors: []Actor{ActorOperator},
		Pre: []*Precondition{PrePlanKnown},
		Why: "Tenants are created by the platform's operators (sign-up runs through them); a tenant's own token cannot exist before its tenant."},
	{Action: ActUpgrade, What: "upgrade", Actors: []Actor{ActorOperator, ActorTenant},
		From: []State{Active}, Via: Upgrading, Ends: Active,
		Pre: []*Precondition{PreFree, PreNoPendingChange, PrePlanKnown, PreHigherPlan, PreUsageFits},
		Why: "Self-service: a tenant may always buy more. Usage fits any higher plan, but the rule is asked like every plan entry."},
	{Action: ActDowngrade, What: "downgrade", Actors: []Actor{ActorOperator, ActorTenant},
		From: []State{Active}, Via: Downgrading, Ends: Active,
		Pre: []*Precondition{PreFree, PreNoPendingChange, PrePlanKnown, PreLowerPlan, PreUsageFits},
		Why: "Self-service, but only onto a plan the tenant's usage fits; checked at the request and again when the flow claims the tenant."},
	{Action: ActDowngradeAtPeriodEnd, What: "schedule a downgrade at the period end", Actors: []Actor{ActorOperator, ActorTenant},
		From: []State{Active}, Via: Downgrading, Ends: Active,
		Pre: []*Precondition{PreFree, PreNoPendingChange, PrePlanKnown, PreLowerPlan, PreUsageFits},
		Why: "As a downgrade; usage is checked again when the change runs, against the usage reported by then."},
	{Action: ActRunScheduledDowngrade, What: "start a scheduled downgrade", Actors: []Actor{ActorSchedule},
		From: []State{Active}, Via: Downgrading, Ends: Active,
		Pre: []*Precondition{PreFree, PrePendingIsThis},
		Why: "The downgrade sweep only starts what was scheduled; the flow then asks the downgrade rule for the tenant who scheduled it. A change that cannot start is cleared."},
	{Action: ActSuspend, What: "suspend", Actors: []Actor{ActorOperator},
		From: []State{Active}, Via: Suspended, Ends: Suspended, Cause: CauseOperator,
		Pre: []*Precondition{PreFree},
		Why: "Abuse, fraud or a contract issue: an operator's decision, which only an operator lifts."},
	{Action: ActStripeSuspendNonpayment, What: "suspend for nonpayment", Actors: []Actor{ActorStripe},
		From: []State{Active}, Via: Suspended, Ends: Suspended, Cause: CauseNonpayment,
		Pre: []*Precondition{PreFree},
		Why: "Stripe gave up collecting (status unpaid). A tenant already SUSPENDED keeps its cause: an operator's suspension is not softened into one a payment lifts."},
	{Action: ActStripeSuspendCanceled, What: "suspend for a canceled subscription", Actors: []Actor{ActorStripe},
		From: []State{Active}, Via: Suspended, Ends: Suspended, Cause: CauseCanceled,
		Pre: []*Precondition{PreFree},
		Why: "The subscription was deleted in Stripe, which is final there: no later payment of it lifts the suspension; an operator does, with a new subscription."},
	{Action: ActReactivate, What: "lift a suspension", Actors: []Actor{ActorOperator},
		From: []State{Suspended}, Via: Reactivating, Ends: Active,
		Lifts: map[Actor][]string{ActorOperator: every},
		Pre:   []*Precondition{PreFree, PrePlanKnown, PreCauseLiftable, PreUsageFits},
		Why:   "An operator lifts any suspension, onto a plan the tenant's usage fits. A tenant's own token never lifts its suspension."},
	{Action: ActStripeLiftNonpayment, What: "lift a nonpayment suspension", Actors: []Actor{ActorStripe},
		From: []State{Suspended}, Via: Reactivating, Ends: Active,
		Lifts: map[Actor][]string{ActorStripe: {CauseNonpayment}},
		Pre:   []*Precondition{PreFree, PreCauseLiftable},
		Why:   "invoice.paid or status active lifts what nonpayment caused, and nothing else; the tenant keeps its plan, so no plan is entered and usage is not checked."},
	{Action: ActStripeCureNonpayment, What: "clear the nonpayment cause of a deleted tenant", Actors: []Actor{ActorStripe},
		From: []State{Deleted}, Ends: Deleted,
		Lifts: map[Actor][]string{ActorStripe: {CauseNonpayment}},
		Pre:   []*Precondition{PreCauseLiftable, PreFree},
		Why: "A payment while the tenant is DELETED settles the debt its suspension was for: the cause is removed in one audited write and nothing else changes, " +
			"so the tenant's own win-back later comes back ACTIVE instead of SUSPENDED for a debt Stripe says is paid."},
	{Action: ActDelete, What: "soft-delete, with retention", Actors: []Actor{ActorOperator, ActorTenant},
		From: []State{Active, Suspended}, Via: Deleting, Ends: Deleted,
		Pre: []*Precondition{PreFree},
		Why: "A tenant may erase itself even while suspended (right to erasure); a suspension survives the deletion (suspend_cause and suspend_reason are kept)."},
	{Action: ActWinBack, What: "win back a deleted tenant", Actors: []Actor{ActorOperator, ActorTenant},
		From: []State{Deleted}, Via: Reactivating, Ends: Active,
		Lifts: map[Actor][]string{ActorOperator: every},
		Pre:   []*Precondition{PreRetentionNotOver, PreFree, PrePlanKnown, PreSuspensionKept, PreUsageFits},
		Why:   "Inside the retention the tenant, or an operator, undoes the deletion onto a plan its usage fits. Deleting does not lift a suspension: a win-back by the tenant comes back SUSPENDED with the cause it had."},
	{Action: ActExport, What: "export its data", Actors: []Actor{ActorOperator, ActorTenant},
		From: allButPurged, Pre: []*Precondition{PreDataHeld},
		Why: "GDPR access and portability: in every state that still holds data, also SUSPENDED and DELETED."},
	{Action: ActUsageReport, What: "report usage", Actors: []Actor{ActorMetering, ActorOperator},
		From: allButPurged,
		Why:  "Usage decides whether a plan fits, so it comes from the metering service, never from the tenant's own token (the store refuses a purged tenant in the same write)."},
	{Action: ActOverride, What: "override limits and features", Actors: []Actor{ActorOperator},
		From: allButPurged,
		Why: "An enterprise deal is an operator's decision: a tenant that could raise its own limits would pass every usage check. Overrides move no state, " +
			"so a running flow does not block them; they count from the next usage check (a flow checks again when it claims the tenant)."},
	{Action: ActPurge, What: "purge", Actors: []Actor{ActorSchedule, ActorOperator},
		From: []State{Deleted}, Via: Deleted, Ends: Purged,
		Pre: []*Precondition{PreFree, PreRetentionOver},
		Why: "Irreversible, so never before purge_after, whoever starts it (the sweep, or an operator starting the execution by hand)."},
	{Action: ActRetry, What: "retry an operation's compensation", Actors: []Actor{ActorOperator},
		Pre: []*Precondition{PreNeedsAttention},
		Why: "Only an operator finishes what a flow could not undo."},
	{Action: ActResolve, What: "resolve an operation by hand", Actors: []Actor{ActorOperator},
		Pre: []*Precondition{PreNeedsAttention},
		Why: "An operator records what was fixed by hand; the tenant is then free again."},
}

// RuleFor returns the rule of action a (nil if there is none).
func RuleFor(a Action) *Rule {
	for _, r := range Rules {
		if r.Action == a {
			return r
		}
	}
	return nil
}

// Permit checks only the actor column: whether who may ask for a at all. The API
// asks it before reading the body; Decide checks it again with everything else.
func Permit(a Action, who Actor) error {
	r := RuleFor(a)
	if r == nil {
		return &ValidationError{Field: "action", Reason: "unknown action " + quote(string(a))}
	}
	if !slices.Contains(r.Actors, who) {
		return &ForbiddenError{Action: a, Actor: who, Allowed: slices.Clone(r.Actors)}
	}
	return nil
}

// Decide answers q: the verdict when the action is allowed, else the typed error the
// API and the flows already map. The checks run in a fixed order: the actor (403),
// the early preconditions, the tenant's state, then the preconditions in the rule's
// order, so the same tenant always gets the same refusal.
//
// A tenant outside From that another operation holds, in a state from which that
// operation may still bring it into From, is refused as held (*ConflictError) rather
// than as an invalid transition: the refusal is temporary, and the webhook waits for
// it (Stripe retries) instead of dropping the event.
func Decide(q Query) (Verdict, error) {
	r := RuleFor(q.Action)
	if r == nil {
		return Verdict{}, &ValidationError{Field: "action", Reason: "unknown action " + quote(string(q.Action))}
	}
	if err := Permit(q.Action, q.Actor); err != nil {
		return Verdict{}, err
	}
	v := Verdict{Rule: r, Ends: r.Ends, Cause: r.Cause}
	if q.Tenant == nil {
		if r.From != nil {
			return v, &ValidationError{Field: "tenant", Reason: string(q.Action) + " needs the tenant"}
		}
		if err := q.run(r, &v, true); err != nil {
			return v, err
		}
		return v, q.run(r, &v, false)
	}
	if r.Ends == "" {
		v.Ends = q.Tenant.State
	}
	if r.Cause == "" {
		v.Cause = q.Tenant.Cause()
	}
	if err := q.run(r, &v, true); err != nil {
		return v, err
	}
	if err := q.inState(r); err != nil {
		return v, err
	}
	if err := q.run(r, &v, false); err != nil {
		return v, err
	}
	if v.Ends == Active {
		v.Cause = ""
	}
	return v, nil
}

// run checks the rule's early (or other) preconditions in order.
func (q *Query) run(r *Rule, v *Verdict, early bool) error {
	for _, p := range r.Pre {
		if p.early != early {
			continue
		}
		if err := p.check(q, r, v); err != nil {
			return err
		}
	}
	return nil
}

func (q *Query) inState(r *Rule) error {
	t := q.Tenant
	if r.From == nil || slices.Contains(r.From, t.State) {
		return nil
	}
	if t.Operation != "" && t.Operation != q.OperationID && slices.ContainsFunc(t.State.Allowed(), func(s State) bool { return slices.Contains(r.From, s) }) {
		return t.Free(q.OperationID)
	}
	if r.Via != "" {
		return &InvalidTransitionError{From: t.State, To: r.Via, Allowed: t.State.Allowed()}
	}
	return &ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("cannot %s while the tenant is %s", r.What, t.State)}
}

func (q *Query) now() time.Time {
	if q.Now.IsZero() {
		return time.Now()
	}
	return q.Now
}

// lifts reports whether the rule lets actor a lift a suspension of cause.
func (r *Rule) lifts(a Actor, cause string) bool {
	causes := r.Lifts[a]
	return slices.Contains(causes, "*") || slices.Contains(causes, cause)
}

// Lifters returns the actors that may lift a suspension of cause, through any rule.
func Lifters(cause string) []Actor {
	var out []Actor
	for _, a := range Actors {
		for _, r := range Rules {
			if r.lifts(a, cause) && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func liftersOf(cause string) string {
	return "that cause is lifted only by: " + joinActors(Lifters(cause))
}

// Free refuses a tenant another operation holds, or one that waits for an operator
// to retry or resolve a failed operation. opID's own hold is no refusal.
func (t *Tenant) Free(opID string) error {
	switch {
	case t.Operation != "" && t.Operation != opID:
		return &ConflictError{TenantID: t.ID, Reason: "operation " + t.Operation + " is already in progress for this tenant"}
	case t.Attention != "":
		return &ConflictError{TenantID: t.ID, Reason: "operation " + t.Attention + " needs attention (compensation incomplete); an operator must retry or resolve it first"}
	}
	return nil
}

// Cause is the cause of the tenant's suspension, "" when it has none. Records written
// before causes existed have only a reason: the webhook's reasons were the cause names
// and any other reason was an operator's.
func (t *Tenant) Cause() string {
	switch {
	case t.SuspendCause != "":
		return t.SuspendCause
	case t.SuspendReason == "":
		return ""
	case t.SuspendReason == CauseNonpayment || t.SuspendReason == CauseCanceled:
		return t.SuspendReason
	}
	return CauseOperator
}

func (a Actor) noun() string {
	switch a {
	case ActorOperator:
		return "an operator"
	case ActorTenant:
		return "the tenant's own token"
	case ActorMetering:
		return "the metering service"
	case ActorStripe:
		return "Stripe"
	case ActorSchedule:
		return "a scheduled sweep"
	case "":
		return "an unidentified caller"
	}
	return "actor " + quote(string(a))
}

func what(a Action) string {
	if r := RuleFor(a); r != nil {
		return r.What
	}
	return string(a)
}

func joinActors(as []Actor) string {
	if len(as) == 0 {
		return "nobody"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = string(a)
	}
	return strings.Join(parts, ", ")
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

func opTenant(op *Operation) string {
	if op == nil {
		return ""
	}
	return op.TenantID
}
