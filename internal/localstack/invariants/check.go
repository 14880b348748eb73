package invariants

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The invariants. Each is written from what the lifecycle promises (README,
// docs/api.md, docs/flows.md), never from how a flow does it: the sequence tracks what
// it asked for and what Stripe said, and judges what the system shows against that.
const (
	// I1: a suspension is lifted (SUSPENDED → ACTIVE, directly or through a deletion
	// and a win-back) only by an actor allowed for its cause: an operator lifts any,
	// Stripe's paid/active only a suspension for nonpayment, the tenant's own token none.
	I1 = "I1"
	// I2: after a downgrade or a reactivation (operator's or the tenant's) succeeded,
	// the tenant's usage as metering last reported it fits the plan it entered.
	I2 = "I2"
	// I3: with billing on, an ACTIVE tenant has exactly one live subscription (not
	// canceled, not canceling at period end) at its plan's price; and a tenant
	// suspended only for nonpayment whose subscription Stripe last reported paid does
	// not stay suspended — unless an operation of the tenant needs attention (a
	// failed flow of a Stripe event: an operator is told and must act).
	I3 = "I3"
	// I4: the audit trail replays to the tenant's state (each transition starts where
	// the last one ended), and every transition is in the lifecycle's state table and
	// made by an actor allowed to make it.
	I4 = "I4"
	// I5: one operation holds a tenant at a time: no operation's transitions fall
	// between another one's claim and its end, and no operation the API accepted (202)
	// fails because another one held the tenant (the API promises 409 at once).
	I5 = "I5"
	// I6: no subscription still bills (live, not canceling at period end) for a
	// DELETED or PURGED tenant, unless an operation of the tenant needs attention.
	I6 = "I6"
	// I7: a downgrade or reactivation is never refused for usage that fits the target
	// plan's limits as the operator's override left them (overrides are respected by
	// every usage check, in both directions).
	I7 = "I7"
	// I8: once no operation holds a tenant, the entitlements document the app plane
	// reads (GET /tenants/{id}/entitlements) names the tenant's plan and its users
	// limit is the plan's, or the operator's override when one is set.
	I8 = "I8"
)

// Invariants lists them with one line each, for reports.
var Invariants = map[string]string{
	I1:  "a suspension is lifted only by an actor allowed for its cause",
	I2:  "usage fits the plan after any plan-entering action",
	I3:  "ACTIVE ⇔ a live subscription at the plan's price",
	I4:  "the audit trail replays to the state; every transition is allowed, and by whom",
	I5:  "at most one operation holds a tenant",
	I6:  "no subscription bills a DELETED/PURGED tenant without needs_attention",
	I7:  "a plan change is not refused for usage that fits the limits with the override",
	I8:  "the entitlements document shows the plan and the override once the tenant is settled",
	"Q": "the tenant becomes quiescent (no operation left RUNNING)",
}

// check judges every tenant after a step.
func (q *seqRun) check() {
	for i, t := range q.tenants {
		q.checkTrail(i, t)
		q.checkPlans(t)
		q.checkBilling(t)
		q.checkHolds(t)
		q.noteStatuses(t)
	}
}

// actorOf says who started an operation: the API's 202s name their caller; an
// operation the API did not start is a purge (the purge sweep) or the webhook's
// (Stripe), the only other starters. The period-end downgrade the downgrade sweep
// starts keeps the id its caller got.
func (q *seqRun) actorOf(t *tstate, id string) Actor {
	if op := q.ops[id]; op != nil {
		return op.Actor
	}
	if op := t.ops[id]; op != nil && op.Kind == tenant.KindPurge {
		return Schedule
	}
	if id == "" {
		return ""
	}
	return Stripe
}

// mayStart is who may make the transition that starts each kind of change (the
// promises of docs/api.md and the webhook's table in docs/flows.md).
func mayStart(from, to tenant.State) []Actor {
	switch {
	case to == tenant.Upgrading, to == tenant.Downgrading:
		return []Actor{Operator, Own}
	case from == tenant.Active && to == tenant.Suspended:
		return []Actor{Operator, Stripe}
	case to == tenant.Deleting:
		return []Actor{Operator, Own}
	case from == tenant.Suspended && to == tenant.Reactivating:
		return []Actor{Operator, Stripe}
	case from == tenant.Deleted && to == tenant.Reactivating:
		return []Actor{Operator, Own}
	case from == tenant.Deleted && to == tenant.Purged:
		return []Actor{Schedule}
	}
	return nil // the end of a change: made by the operation that started it
}

// busy reports the states a flow holds a tenant in between its claim and its end.
func busy(s tenant.State) bool {
	return s == tenant.Upgrading || s == tenant.Downgrading || s == tenant.Deleting || s == tenant.Reactivating
}

// checkTrail replays the audit trail (I4, I5's interleaving) and follows the
// suspensions through the new entries (I1).
func (q *seqRun) checkTrail(i int, t *tstate) {
	var changes []store.AuditEntry
	for _, e := range t.trail {
		if e.From != e.To && e.From != "" {
			changes = append(changes, e)
		}
	}
	// I4: a chain from creation to the state shown, every link in the state table and
	// made by someone allowed to.
	prev := tenant.Provisioning
	var holder string // the operation that holds the tenant in a busy state
	for _, e := range changes {
		key := fmt.Sprintf("v%d", e.Version)
		if e.From != prev {
			q.violate(I4, t, key, "audit v%d %s→%s by %s does not start where the trail was (%s)", e.Version, e.From, e.To, e.OperationID, prev)
		}
		if !tenant.CanTransition(e.From, e.To) {
			q.violate(I4, t, key, "audit v%d %s→%s (%s) is not in the lifecycle's state table", e.Version, e.From, e.To, e.OperationID)
		}
		if may := mayStart(e.From, e.To); may != nil {
			if who := q.actorOf(t, e.OperationID); e.OperationID != "" && !slices.Contains(may, who) {
				q.violate(I4, t, key, "audit v%d %s→%s made by %s (%s); only %v may", e.Version, e.From, e.To, who, e.OperationID, may)
			}
		}
		// I5: inside a busy state only its holder moves the tenant.
		if busy(e.From) && holder != "" && e.OperationID != holder {
			q.violate(I5, t, key, "audit v%d %s→%s by %s while %s held the tenant since its claim", e.Version, e.From, e.To, e.OperationID, holder)
		}
		switch {
		case busy(e.To):
			holder = e.OperationID
		case busy(e.From):
			holder = ""
		}
		prev = e.To
	}
	if t.view != nil && len(changes) > 0 && prev != t.view.State {
		q.violate(I4, t, "end", "the audit trail ends in %s, the tenant is %s", prev, t.view.State)
	}

	// I1 over the entries not yet judged: the transitions, and the audited writes of
	// Stripe's webhook that clear a DELETED tenant's cause without moving it.
	for _, e := range t.trail[min(t.audit, len(t.trail)):] {
		switch {
		case e.From != e.To && e.From != "":
			q.followSuspension(i, t, e)
		case e.From == tenant.Deleted && e.To == tenant.Deleted && e.Who == stripeWebhook:
			q.followCure(t, e)
		}
	}
	t.audit = len(t.trail)
	// Stripe canceling the subscription of a suspended tenant makes the suspension
	// one Stripe can no longer lift. Only the subscription the tenant is on counts: a
	// reactivation that replaced a canceled subscription by a new one leaves the old
	// one's deletion behind it.
	if len(t.causes) > 0 {
		current := ""
		if t.view != nil {
			current = t.view.Billing.SubscriptionID
		}
		for _, e := range q.events {
			if e.Tenant == i && e.Kind == SubDeleted && e.accepted() && (current == "" || e.Sub == current) {
				t.causes[causeCanceled] = true
			}
		}
	}
}

// followSuspension updates the causes in force from one audited transition and
// judges a lift (I1).
func (q *seqRun) followSuspension(i int, t *tstate, e store.AuditEntry) {
	switch {
	case e.From == tenant.Active && e.To == tenant.Suspended:
		t.causes = q.causesOf(i, t, e.OperationID)
	case e.From == tenant.Reactivating && e.To == tenant.Active && len(t.causes) > 0:
		who := q.actorOf(t, e.OperationID)
		causes := slices.Sorted(maps.Keys(t.causes))
		allowed := who == Operator || who == Stripe && len(causes) == 1 && causes[0] == causeNonpayment
		if !allowed {
			q.violate(I1, t, fmt.Sprintf("v%d", e.Version), "suspended (cause %s), now ACTIVE through %s made by %s (audit v%d %s→%s)",
				strings.Join(causes, "+"), e.OperationID, describeActor(who), e.Version, e.From, e.To)
		}
		t.causes = map[string]bool{}
	case e.To == tenant.Purged:
		t.causes = map[string]bool{}
	}
}

// stripeWebhook is the audit identity of the Stripe webhook's own writes.
const stripeWebhook = "system:stripe-webhook"

// followCure judges a payment that cleared the cause of a DELETED tenant (I1): Stripe
// may clear a suspension whose only cause is nonpayment, nothing else. A cleared
// suspension is no longer in force: the tenant's own win-back may then end ACTIVE.
func (q *seqRun) followCure(t *tstate, e store.AuditEntry) {
	if len(t.causes) == 0 {
		return // nothing in force (a record the model did not see suspended)
	}
	causes := slices.Sorted(maps.Keys(t.causes))
	if len(causes) != 1 || causes[0] != causeNonpayment {
		q.violate(I1, t, fmt.Sprintf("v%d", e.Version), "suspended (cause %s), its cause cleared while DELETED by %s (audit v%d: %s)",
			strings.Join(causes, "+"), e.Who, e.Version, e.Reason)
	}
	t.causes = map[string]bool{}
}

func describeActor(a Actor) string {
	if a == Own {
		return "the tenant's own token"
	}
	return string(a)
}

// causesOf says why operation id suspended tenant i: an operator's suspension, or
// the Stripe deliveries that said they started one (all suspending deliveries of the
// tenant when none said so).
func (q *seqRun) causesOf(i int, t *tstate, id string) map[string]bool {
	if op := q.ops[id]; op != nil {
		if op.Kind == Suspend {
			return map[string]bool{causeOperator: true}
		}
		return map[string]bool{causeUnknown: true}
	}
	causes := map[string]bool{}
	fallback := map[string]bool{}
	for _, e := range q.events {
		if e.Tenant != i || !e.accepted() {
			continue
		}
		c := ""
		switch e.Kind {
		case SubUnpaid:
			c = causeNonpayment
		case SubDeleted:
			c = causeCanceled
		default:
			continue
		}
		fallback[c] = true
		if e.outcome() == "suspension_started" && !t.counted[e.ID] {
			causes[c] = true
			t.counted[e.ID] = true
		}
	}
	switch {
	case len(causes) > 0:
		return causes
	case len(fallback) > 0:
		return fallback
	}
	return map[string]bool{causeUnknown: true}
}

// checkPlans is I2: an operation entering a plan that succeeded since the last check
// left the tenant on a plan its usage fits (as metering last reported it before the
// step, or during it), with the users limit the operator's override set when the
// operation was accepted or since.
func (q *seqRun) checkPlans(t *tstate) {
	for id, op := range t.ops {
		if op.Status != tenant.OpSucceeded || t.status[id] == tenant.OpSucceeded {
			continue
		}
		a := q.ops[id]
		if a == nil || a.Kind != Downgrade && a.Kind != Reactivate {
			continue
		}
		fits := false
		var after []tenant.Violation
		for _, o := range []*int64{a.Override, t.override} {
			limits, ok := q.r.catalog.Limits(a.Plan)
			if !ok {
				fits = true
				break
			}
			limits = withUsers(limits, o)
			before := tenant.CheckUsage(t.before, limits)
			after = tenant.CheckUsage(t.usage, limits)
			fits = fits || len(before) == 0 || len(after) == 0
		}
		if !fits {
			q.violate(I2, t, id, "%s %s onto %s succeeded (%s) with usage users=%d storage_gb=%g api_calls=%d (users override %s): %v",
				describeActor(a.Actor), a.Kind, a.Plan, id, t.usage.Users, t.usage.StorageGB, t.usage.APICallsPerMonth, describeOverride(t.override), after)
		}
	}
}

// withUsers is l with the users limit an operator's override set (nil: none).
func withUsers(l tenant.Limits, users *int64) tenant.Limits {
	if users != nil {
		l.Users = *users
	}
	return l
}

func describeOverride(users *int64) string {
	if users == nil {
		return "none"
	}
	return fmt.Sprint(*users)
}

// checkRefusal is I7: the API refused a downgrade or reactivation with
// usage-exceeds-limit although the usage metering last reported fits the target
// plan with the override in force. Usage reported in the same step (a race) may
// explain a refusal, so only a step without a usage report is judged.
func (q *seqRun) checkRefusal(a Action, t *tstate, ans answer) {
	if a.Kind != Downgrade && a.Kind != Reactivate || ans.Status != http.StatusUnprocessableEntity ||
		ans.field("type") != "urn:tenantflow:problem:usage-exceeds-limit" {
		return
	}
	q.mu.Lock()
	usage, before, override := t.usage, t.before, t.override
	q.mu.Unlock()
	limits, ok := q.r.catalog.Limits(a.Plan)
	if !ok || usage != before {
		return
	}
	if v := tenant.CheckUsage(usage, withUsers(limits, override)); len(v) == 0 {
		q.violate(I7, t, "", "%s: refused (%s) although usage users=%d storage_gb=%g api_calls=%d fits %s with users override %s",
			a, ans, usage.Users, usage.StorageGB, usage.APICallsPerMonth, a.Plan, describeOverride(override))
	}
}

// checkEntitlements is I8, as docs/api.md promises the document: a settled tenant's
// entitlements document names its state and plan; an ACTIVE tenant's users limit is
// its plan's, or the operator's override when one is set (null: unlimited), and any
// other state's is 0. A tenant held by an operation, waiting for an operator, or
// PURGED is not judged.
func (q *seqRun) checkEntitlements(t *tstate) {
	v := t.view
	if v == nil || v.Operation != "" || exempt(t) || v.State != tenant.Active && v.State != tenant.Suspended && v.State != tenant.Deleted {
		return
	}
	ans, err := q.r.api.call(q.ctx, http.MethodGet, "/tenants/"+t.id+"/entitlements", q.r.operator, nil, nil)
	if err != nil || ans.Status != http.StatusOK {
		q.violate(I8, t, "read", "GET entitlements of a %s tenant: %v %s", v.State, err, ans)
		return
	}
	var doc struct {
		State  tenant.State `json:"state"`
		Plan   tenant.Plan  `json:"plan"`
		Limits struct {
			Users *int64 `json:"users"`
		} `json:"limits"`
	}
	if err := json.Unmarshal(ans.Body, &doc); err != nil {
		q.violate(I8, t, "read", "entitlements document: %v", err)
		return
	}
	limits, ok := q.r.catalog.Limits(v.Plan)
	if !ok {
		return
	}
	want := int64(0)
	if v.State == tenant.Active {
		want = withUsers(limits, t.override).Users
	}
	got := int64(tenant.Unlimited)
	if doc.Limits.Users != nil {
		got = *doc.Limits.Users
	}
	if doc.State != v.State || doc.Plan != v.Plan || got != want {
		q.violate(I8, t, fmt.Sprintf("%s|%s|%d|%d", v.State, v.Plan, want, v.Version),
			"%s on %s (users override %s): the entitlements document says %s on %s, users %d; want users %d",
			v.State, v.Plan, describeOverride(t.override), doc.State, doc.Plan, got, want)
	}
}

// exempt reports whether billing is out of the sequence's sight: an operation of the
// tenant needs attention (the promise is then that someone is told), or an operator
// resolved one by hand.
func exempt(t *tstate) bool {
	if t.resolved || t.view != nil && t.view.Attention != "" {
		return true
	}
	for _, op := range t.ops {
		if op.NeedsAttention {
			return true
		}
	}
	return false
}

// checkBilling is I3 and I6, at quiescence, from Stripe's side.
func (q *seqRun) checkBilling(t *tstate) {
	if t.view == nil || exempt(t) {
		return
	}
	subs := q.ledger.of(t.id)
	var live []*subscription
	for _, s := range subs {
		if s.billing() {
			live = append(live, s)
		}
	}
	switch t.view.State {
	case tenant.Active:
		if q.pendingFor(t) {
			return // Stripe has not yet told the system what it knows
		}
		want := q.r.prices[t.view.Plan]
		switch {
		case len(live) == 0:
			q.violate(I3, t, "", "ACTIVE on %s, but no subscription bills it (Stripe: %s)", t.view.Plan, describeSubs(subs))
		case len(live) > 1:
			q.violate(I3, t, "", "ACTIVE on %s, billed by %d subscriptions: %s", t.view.Plan, len(live), describeSubs(live))
		case live[0].Price != want:
			q.violate(I3, t, "", "ACTIVE on %s (%s), its subscription bills %s", t.view.Plan, want, live[0])
		}
	case tenant.Suspended:
		if len(t.causes) != 1 || !t.causes[causeNonpayment] || q.pendingFor(t) {
			return
		}
		cur := q.ledger.current(t.id)
		if cur == nil || cur.Dead {
			return
		}
		if w := lastWord(q.eventList(), cur.ID); w != nil && (w.Kind == InvoicePaid || w.Kind == SubActive) {
			q.violate(I3, t, "paid:"+w.ID, "SUSPENDED for nonpayment, but Stripe's last word on %s is %s (event %d, created +%ds): paid, and nothing will lift it",
				cur.ID, w.Kind, w.Number, int(w.Created.Sub(q.stripeBase).Seconds()))
		}
	case tenant.Deleted, tenant.Purged:
		if len(live) > 0 {
			q.violate(I6, t, "", "%s, yet still billed by %s", t.view.State, describeSubs(live))
		}
	}
}

// pendingFor reports whether Stripe still has to deliver an event of the tenant.
func (q *seqRun) pendingFor(t *tstate) bool {
	for _, e := range q.events {
		if e.Pending && q.tenants[e.Tenant] == t {
			return true
		}
	}
	return false
}

func (q *seqRun) eventList() []*sentEvent {
	out := make([]*sentEvent, 0, len(q.events))
	for _, e := range q.events {
		out = append(out, e)
	}
	return out
}

func describeSubs(subs []*subscription) string {
	if len(subs) == 0 {
		return "none"
	}
	parts := make([]string, len(subs))
	for i, s := range subs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// checkHolds is I5's promise of a 409 at once: an operation the API accepted as
// RUNNING never fails because another operation held the tenant.
func (q *seqRun) checkHolds(t *tstate) {
	for id, op := range t.ops {
		a := q.ops[id]
		if a == nil || a.Status != string(tenant.OpRunning) || op.Status != tenant.OpFailed || op.Error != "ConflictError" {
			continue
		}
		q.violate(I5, t, id, "%s %s was accepted (202) and then failed with ConflictError: %s", describeActor(a.Actor), a.Kind, op.Cause)
	}
}

// noteStatuses remembers each operation's status, so a success is judged once.
func (q *seqRun) noteStatuses(t *tstate) {
	for id, op := range t.ops {
		t.status[id] = op.Status
	}
}
