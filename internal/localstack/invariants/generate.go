package invariants

import (
	"math/rand/v2"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// The classes of action a Mix weighs. A candidate action belongs to one class; the
// generator multiplies its base weight by the Mix's weight of its class (1 when the
// Mix does not name it).
const (
	ClassUpgrade    = "upgrade"
	ClassDowngrade  = "downgrade"
	ClassSuspend    = "suspend"
	ClassReactivate = "reactivate" // an operator's reactivation onto the plan it had or a higher one
	ClassWinBack    = "winback"    // the tenant's own reactivation onto the plan it had or a higher one
	ClassLower      = "lower"      // a reactivation (either) onto a lower plan
	ClassDelete     = "delete"
	ClassExport     = "export"
	ClassAttention  = "attention" // an operator's retry or resolve
	ClassUsage      = "usage"
	ClassUnpaid     = "stripe-unpaid"
	ClassPaid       = "stripe-paid"
	ClassCanceled   = "stripe-deleted"
	ClassRace       = "stripe-race" // two events of one subscription delivered at once
	ClassSweep      = "sweep"
	ClassReconcile  = "reconcile"
	ClassOverride   = "override" // an operator's override of the users limit
)

// Mix weighs the classes of action (see the Class constants).
type Mix map[string]float64

// Focuses are mixes that make one kind of interleaving frequent, for runs that hunt
// a known class of defect (Config.Focus).
var Focuses = map[string]Mix{
	// A suspension, the tenant's own deletion, its win-back.
	"suspension": {ClassSuspend: 4, ClassDelete: 3, ClassWinBack: 5, ClassLower: 0, ClassUsage: 0.3, ClassUnpaid: 0.3, ClassPaid: 0.3, ClassCanceled: 0.2, ClassRace: 0.2, ClassExport: 0.2},
	// Usage above lower plans, deletions and win-backs onto lower plans.
	"winback": {ClassUsage: 3, ClassDelete: 3, ClassLower: 6, ClassDowngrade: 2, ClassSuspend: 0, ClassUnpaid: 0.2, ClassPaid: 0.2, ClassCanceled: 0.2, ClassRace: 0.2},
	// Stripe canceling subscriptions, operators reactivating.
	"canceled": {ClassCanceled: 8, ClassReactivate: 5, ClassLower: 0, ClassUsage: 0.3, ClassSuspend: 0.3, ClassDelete: 0.3, ClassUnpaid: 0.3, ClassRace: 0.2},
	// Operators' overrides of the users limit around the usage, and plan changes and
	// reactivations that must respect them.
	"overrides": {ClassOverride: 6, ClassDowngrade: 4, ClassLower: 4, ClassUsage: 2, ClassDelete: 1, ClassSuspend: 1, ClassUnpaid: 0.3, ClassPaid: 0.3, ClassCanceled: 0.2, ClassRace: 0.2},
	// Concurrent deliveries of an unpaid and a paid event.
	"race": {ClassRace: 12, ClassPaid: 2, ClassSuspend: 0.2, ClassDelete: 0.2, ClassCanceled: 0.2, ClassWinBack: 0.3, ClassLower: 0, ClassUsage: 0.3},
}

// generator makes the steps of one sequence from its seed. It looks at what the
// tenants look like now (state, plan, usage), so that most actions are ones their
// actors would try at that point; it predicts nothing about what they will do.
type generator struct {
	rng     *rand.Rand
	cfg     Config
	mix     Mix
	catalog *tenant.Catalog
	// event numbers the next Stripe event; clock is the Stripe clock (seconds).
	event int
	clock int64
	sent  []Action // Stripe events made so far, for redeliveries
}

func newGenerator(seed int64, cfg Config) *generator {
	mix := Mix{}
	for k, v := range Focuses[cfg.Focus] {
		mix[k] = v
	}
	for k, v := range cfg.Mix {
		mix[k] = v
	}
	return &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0x1d3a)), cfg: cfg, mix: mix, catalog: tenant.DefaultCatalog()}
}

// starts draws the tenants of a sequence: a plan each, and a first usage that fits it.
func (g *generator) starts(n int) []Start {
	out := make([]Start, n)
	plans := []tenant.Plan{tenant.Free, tenant.Starter, tenant.Starter, tenant.Professional, tenant.Professional, tenant.Enterprise}
	for i := range out {
		p := plans[g.rng.IntN(len(plans))]
		out[i] = Start{Plan: p, Usage: g.usageWithin(p)}
	}
	return out
}

// usageWithin draws a usage that fits plan p, often one that does not fit the plans
// below it.
func (g *generator) usageWithin(p tenant.Plan) tenant.Usage {
	l, _ := g.catalog.Limits(p)
	if l.Users < 0 {
		l = tenant.Limits{Users: 200, StorageGB: 500, APICallsPerMonth: 5_000_000}
	}
	return tenant.Usage{
		Users:            1 + g.rng.Int64N(l.Users),
		StorageGB:        float64(g.rng.IntN(int(l.StorageGB*10)+1)) / 10,
		APICallsPerMonth: g.rng.Int64N(l.APICallsPerMonth + 1),
	}
}

// usage draws a usage report: mostly within a plan (the tenant's own, or any), now
// and then a little above it, as metering reports what is used, not what is allowed.
func (g *generator) usage(cur tenant.Plan) tenant.Usage {
	p := cur
	if g.rng.IntN(5) < 2 || p == "" {
		p = g.plan()
	}
	u := g.usageWithin(p)
	if g.rng.IntN(6) == 0 {
		if l, _ := g.catalog.Limits(p); l.Users >= 0 {
			u.Users = l.Users + 1 + g.rng.Int64N(5)
		}
	}
	return u
}

// override draws an operator's override of the users limit around the tenant's
// usage: below it (a plan change must then be refused), at or above it (a smaller
// plan then fits), or none.
func (g *generator) override(i int, v view) Action {
	a := Action{Actor: Operator, Kind: Override, Tenant: i}
	if g.rng.IntN(4) == 0 {
		return a
	}
	n := v.Usage.Users + g.rng.Int64N(4)
	if g.rng.IntN(3) == 0 {
		n = max(v.Usage.Users-1-g.rng.Int64N(3), 0)
	}
	a.Users = &n
	return a
}

func (g *generator) plan() tenant.Plan {
	ps := g.catalog.Plans()
	return ps[g.rng.IntN(len(ps))]
}

// other draws a plan above (up) or below the current one ("" when there is none).
func (g *generator) other(cur tenant.Plan, up bool) tenant.Plan {
	var out []tenant.Plan
	for _, p := range g.catalog.Plans() {
		if c := g.catalog.Compare(p, cur); up && c > 0 || !up && c < 0 {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return out[g.rng.IntN(len(out))]
}

// notLower draws the current plan (mostly) or a higher one.
func (g *generator) notLower(cur tenant.Plan) tenant.Plan {
	if g.rng.IntN(3) == 0 {
		if p := g.other(cur, true); p != "" {
			return p
		}
	}
	return cur
}

// candidate is one possible step with its weight.
type candidate struct {
	class string
	w     float64
	make  func() []Action
}

func one(a Action) func() []Action { return func() []Action { return []Action{a} } }

// candidates lists what the actors of tenant i might do now.
func (g *generator) candidates(i int, v view) []candidate {
	var c []candidate
	add := func(class string, w float64, f func() []Action) {
		if m, ok := g.mix[class]; ok {
			w *= m
		}
		if w > 0 {
			c = append(c, candidate{class, w, f})
		}
	}
	stripe := func(k Kind) func() []Action { return func() []Action { return []Action{g.stripeEvent(i, k)} } }
	usage := func() []Action {
		return []Action{{Actor: Metering, Kind: ReportUsage, Tenant: i, Usage: g.usage(v.Plan)}}
	}
	if v.State == tenant.Active || v.State == tenant.Suspended || v.State == tenant.Deleted {
		add(ClassOverride, 1.5, func() []Action { return []Action{g.override(i, v)} })
	}
	if v.Attention {
		add(ClassAttention, 4, one(Action{Actor: Operator, Kind: Retry, Tenant: i}))
		add(ClassAttention, 1, one(Action{Actor: Operator, Kind: Resolve, Tenant: i}))
	}
	switch v.State {
	case tenant.Active:
		if up := g.other(v.Plan, true); up != "" {
			add(ClassUpgrade, 3, one(Action{Actor: Operator, Kind: Upgrade, Tenant: i, Plan: up}))
			add(ClassUpgrade, 2, one(Action{Actor: Own, Kind: Upgrade, Tenant: i, Plan: g.other(v.Plan, true)}))
		}
		if down := g.other(v.Plan, false); down != "" {
			add(ClassDowngrade, 3, one(Action{Actor: Operator, Kind: Downgrade, Tenant: i, Plan: down, AtPeriodEnd: g.rng.IntN(10) < 3}))
			add(ClassDowngrade, 3, one(Action{Actor: Own, Kind: Downgrade, Tenant: i, Plan: g.other(v.Plan, false), AtPeriodEnd: g.rng.IntN(10) < 3}))
		}
		add(ClassSuspend, 4, one(Action{Actor: Operator, Kind: Suspend, Tenant: i}))
		add(ClassDelete, 2, one(Action{Actor: Operator, Kind: Delete, Tenant: i}))
		add(ClassDelete, 3, one(Action{Actor: Own, Kind: Delete, Tenant: i}))
		add(ClassUsage, 4, usage)
		add(ClassUnpaid, 3, stripe(SubUnpaid))
		add(ClassPaid, 2, stripe(InvoicePaid))
		add(ClassPaid, 1, stripe(SubActive))
		add(ClassCanceled, 1.5, stripe(SubDeleted))
		add(ClassRace, 1.5, func() []Action { return g.race(i) })
		add(ClassExport, 0.5, one(Action{Actor: Own, Kind: Export, Tenant: i}))
		w := 1.0
		if v.Pending {
			w = 5
		}
		add(ClassSweep, w, func() []Action { return []Action{g.sweep(DowngradeSweep)} })
		add(ClassReconcile, 0.3, one(Action{Actor: Schedule, Kind: Reconcile}))
	case tenant.Suspended:
		add(ClassReactivate, 4, one(Action{Actor: Operator, Kind: Reactivate, Tenant: i, Plan: g.notLower(v.Plan)}))
		add(ClassWinBack, 1.5, one(Action{Actor: Own, Kind: Reactivate, Tenant: i, Plan: g.notLower(v.Plan)}))
		if down := g.other(v.Plan, false); down != "" {
			add(ClassLower, 1.5, one(Action{Actor: Operator, Kind: Reactivate, Tenant: i, Plan: down}))
		}
		add(ClassDelete, 2, one(Action{Actor: Operator, Kind: Delete, Tenant: i}))
		add(ClassDelete, 3, one(Action{Actor: Own, Kind: Delete, Tenant: i}))
		add(ClassPaid, 3, stripe(InvoicePaid))
		add(ClassPaid, 1, stripe(SubActive))
		add(ClassUnpaid, 1, stripe(SubUnpaid))
		add(ClassCanceled, 1.5, stripe(SubDeleted))
		add(ClassRace, 1, func() []Action { return g.race(i) })
		add(ClassUsage, 2, usage)
		add(ClassExport, 0.5, one(Action{Actor: Own, Kind: Export, Tenant: i}))
	case tenant.Deleted:
		add(ClassWinBack, 4, one(Action{Actor: Own, Kind: Reactivate, Tenant: i, Plan: g.notLower(v.Plan)}))
		add(ClassReactivate, 2, one(Action{Actor: Operator, Kind: Reactivate, Tenant: i, Plan: g.notLower(v.Plan)}))
		if down := g.other(v.Plan, false); down != "" {
			add(ClassLower, 2.5, one(Action{Actor: Own, Kind: Reactivate, Tenant: i, Plan: down}))
			add(ClassLower, 0.5, one(Action{Actor: Operator, Kind: Reactivate, Tenant: i, Plan: g.other(v.Plan, false)}))
		}
		add(ClassSweep, 2, func() []Action { return []Action{g.sweep(PurgeSweep)} })
		add(ClassPaid, 0.5, stripe(InvoicePaid))
		add(ClassUnpaid, 0.5, stripe(SubUnpaid))
		add(ClassCanceled, 1, stripe(SubDeleted))
		add(ClassUsage, 1.5, usage)
		add(ClassExport, 0.5, one(Action{Actor: Own, Kind: Export, Tenant: i}))
	default: // PURGED, or a state no step should end in
		add(ClassWinBack, 0.5, one(Action{Actor: Own, Kind: Reactivate, Tenant: i, Plan: g.plan()}))
		add(ClassUsage, 0.5, usage)
		add(ClassSweep, 0.5, func() []Action { return []Action{g.sweep(PurgeSweep)} })
	}
	return c
}

// next draws the next step from the tenants as they are now.
func (g *generator) next(views []view) Step {
	// Tenants that can still do much are picked more often than purged ones.
	weights := make([]float64, len(views))
	total := 0.0
	for i, v := range views {
		weights[i] = 1
		if v.State == tenant.Purged {
			weights[i] = 0.15
		}
		total += weights[i]
	}
	x := g.rng.Float64() * total
	i := 0
	for ; i < len(weights)-1 && x >= weights[i]; i++ {
		x -= weights[i]
	}
	v := views[i]
	if g.rng.Float64() < 0.04 {
		// Now and then an action from another state's list: refusals are promises too.
		states := []tenant.State{tenant.Active, tenant.Suspended, tenant.Deleted}
		v.State = states[g.rng.IntN(len(states))]
	}
	c := g.candidates(i, v)
	actions := g.pick(c)
	if len(actions) == 1 && g.rng.Float64() < g.cfg.ConcurrentRate {
		// Two actors at once on the same tenant (or one request sent twice).
		second := actions[0]
		if g.rng.IntN(3) > 0 || second.Kind.stripeKind() {
			second = g.pick(c)[0]
		}
		actions = append(actions, second)
	}
	for j := range actions {
		if g.rng.Float64() < g.cfg.FaultRate {
			actions[j].Fault = g.fault(actions[j])
		}
	}
	return Step{Actions: actions}
}

func (g *generator) pick(c []candidate) []Action {
	total := 0.0
	for _, x := range c {
		total += x.w
	}
	r := g.rng.Float64() * total
	for _, x := range c {
		if r < x.w {
			return x.make()
		}
		r -= x.w
	}
	return c[len(c)-1].make()
}

// stripeEvent makes a Stripe event about tenant i: a new one, created after the last
// (or, now and then, before it: a late delivery), or a redelivery of an earlier one.
func (g *generator) stripeEvent(i int, k Kind) Action {
	var mine []Action
	for _, a := range g.sent {
		if a.Tenant == i {
			mine = append(mine, a)
		}
	}
	if len(mine) > 0 && g.rng.Float64() < g.cfg.RedeliveryRate {
		a := mine[g.rng.IntN(len(mine))]
		a.Fault = nil
		return a
	}
	g.event++
	a := Action{Actor: Stripe, Kind: k, Tenant: i, Event: g.event}
	if g.clock > 0 && g.rng.Float64() < g.cfg.ReorderRate {
		a.Created = g.clock - 1 - g.rng.Int64N(g.clock)
	} else {
		g.clock += 5 + g.rng.Int64N(55)
		a.Created = g.clock
	}
	g.sent = append(g.sent, a)
	return a
}

// race makes two new events of tenant i's subscription, an unpaid and a later
// paid one (or the reverse), delivered at the same moment.
func (g *generator) race(i int) []Action {
	first, second := SubUnpaid, InvoicePaid
	if g.rng.IntN(4) == 0 {
		first, second = InvoicePaid, SubUnpaid
	}
	a := g.stripeEventNew(i, first)
	b := g.stripeEventNew(i, second)
	if g.rng.IntN(2) == 0 {
		a, b = b, a
	}
	return []Action{a, b}
}

func (g *generator) stripeEventNew(i int, k Kind) Action {
	g.event++
	g.clock += 1 + g.rng.Int64N(30)
	a := Action{Actor: Stripe, Kind: k, Tenant: i, Event: g.event, Created: g.clock}
	g.sent = append(g.sent, a)
	return a
}

// sweep dates a sweep's event: now, soon, after a billing period or a retention, or
// far in the future.
func (g *generator) sweep(k Kind) Action {
	ahead := []time.Duration{0, time.Hour, 20 * 24 * time.Hour, 40 * 24 * time.Hour, 100 * 365 * 24 * time.Hour}
	w := []int{1, 1, 1, 3, 3}
	total := 0
	for _, x := range w {
		total += x
	}
	r := g.rng.IntN(total)
	j := 0
	for ; r >= w[j]; j++ {
		r -= w[j]
	}
	return Action{Actor: Schedule, Kind: k, At: ahead[j]}
}

// fault draws a fault on one of the functions the action goes through.
func (g *generator) fault(a Action) *Fault {
	var fns []string
	switch {
	case a.Kind == Upgrade || a.Kind == Downgrade:
		fns = []string{"PlanValidateFunction", "PlanProvisionFunction", "PlanBillingFunction", "PlanCommitFunction", "PlanRollbackBillingFunction", "PlanRollbackProvisionFunction", "PlanReleaseFunction"}
	case a.Kind == Suspend || a.Kind == Reactivate || a.Kind == Delete || a.Kind == Retry:
		fns = []string{"LifecycleClaimFunction", "LifecycleAccessFunction", "LifecycleBillingFunction", "LifecycleFinishFunction", "LifecycleUndoAccessFunction", "LifecycleUndoBillingFunction", "LifecycleReleaseFunction"}
	case a.Kind.stripeKind():
		fns = []string{"StripeWebhookFunction", "StripeWebhookFunction", "LifecycleClaimFunction", "LifecycleAccessFunction", "LifecycleBillingFunction", "LifecycleFinishFunction", "LifecycleReleaseFunction"}
	case a.Kind == PurgeSweep:
		fns = []string{"PurgeSweepFunction", "PurgeStartFunction", "PurgeDeleteFunction", "PurgeVerifyFunction", "PurgeFinishFunction", "PurgeReleaseFunction"}
	case a.Kind == DowngradeSweep:
		fns = []string{"DowngradeSweepFunction", "PlanValidateFunction", "PlanBillingFunction", "PlanCommitFunction"}
	default:
		return nil
	}
	f := &Fault{Function: fns[g.rng.IntN(len(fns))], After: g.rng.IntN(2) == 0, Count: 1}
	switch r := g.rng.IntN(20); {
	case r < 5:
		f.Count = 2
	case r < 7:
		f.Count = 5 // more than a task's 4 attempts
	}
	switch r := g.rng.IntN(4); r {
	case 0, 1:
		f.ErrorType = "Lambda.ServiceException" // retried by the state machine
	case 2:
		f.ErrorType = "Sandbox.Timedout" // retried too
	default:
		f.ErrorType = "InjectedFault" // caught: the flow compensates
	}
	return f
}
