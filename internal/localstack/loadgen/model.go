package loadgen

import (
	"fmt"
	"math/rand/v2"
	"net/http"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Kind is what one request of the load asks for.
type Kind string

// The requests of the mix. Every one but Export starts a flow that claims the tenant.
const (
	Upgrade    Kind = "upgrade"
	Downgrade  Kind = "downgrade"
	Suspend    Kind = "suspend"
	Reactivate Kind = "reactivate"
	Delete     Kind = "delete"
	Export     Kind = "export"
)

// Kinds lists the kinds in a fixed order (reports).
var Kinds = []Kind{Upgrade, Downgrade, Suspend, Reactivate, Delete, Export}

// Request is one lifecycle request of the load.
type Request struct {
	Kind Kind
	// Plan is the target of an upgrade, a downgrade or a reactivation.
	Plan tenant.Plan
}

func (r Request) String() string {
	if r.Plan != "" {
		return string(r.Kind) + " " + string(r.Plan)
	}
	return string(r.Kind)
}

// Model is one tenant as the sequential model sees it: docs/flows.md's transitions
// and nothing else. The load generator predicts every answer with it, and the checks
// replay each tenant's accepted operations through it.
type Model struct {
	State tenant.State
	Plan  tenant.Plan
	Usage tenant.Usage
}

// busy is the state a flow holds the tenant in.
func busy(k Kind) tenant.State {
	switch k {
	case Upgrade:
		return tenant.Upgrading
	case Downgrade:
		return tenant.Downgrading
	case Suspend:
		return tenant.Suspended
	case Reactivate:
		return tenant.Reactivating
	case Delete:
		return tenant.Deleting
	}
	return ""
}

// OperationKind is the kind of the operation record a request creates ("" for an
// export, which is an export job, not an operation).
func OperationKind(k Kind) string {
	switch k {
	case Upgrade:
		return tenant.KindUpgrade
	case Downgrade:
		return tenant.KindDowngrade
	case Suspend:
		return tenant.KindSuspension
	case Reactivate:
		return tenant.KindReactivation
	case Delete:
		return tenant.KindDeletion
	}
	return ""
}

// Answer is the HTTP status the API gives req on a tenant at rest in m (held by
// nobody, nothing waiting for an operator): 202 when the flow starts, 409 for a state
// that does not allow it, 422 for a plan in the wrong direction or usage over the
// target's limits (downgrades and reactivations alike) — in the order the API checks them (planchange.Starter,
// lifecycle.Starter).
func (m Model) Answer(c *tenant.Catalog, req Request) int {
	switch req.Kind {
	case Upgrade, Downgrade:
		if m.State != tenant.Active {
			return http.StatusConflict
		}
		cmp := c.Compare(req.Plan, m.Plan)
		if (req.Kind == Upgrade && cmp <= 0) || (req.Kind == Downgrade && cmp >= 0) {
			return http.StatusUnprocessableEntity
		}
		if req.Kind == Downgrade && c.FitsPlan(m.Usage, req.Plan) != nil {
			return http.StatusUnprocessableEntity
		}
	case Suspend:
		if m.State != tenant.Active {
			return http.StatusConflict
		}
	case Reactivate:
		// Inside the retention: the load deletes with the default 30 days.
		if m.State != tenant.Suspended && m.State != tenant.Deleted {
			return http.StatusConflict
		}
		// A plan is entered only when usage fits it (docs/policy.md).
		if c.FitsPlan(m.Usage, req.Plan) != nil {
			return http.StatusUnprocessableEntity
		}
	case Delete:
		if m.State != tenant.Active && m.State != tenant.Suspended {
			return http.StatusConflict
		}
	case Export:
		if m.State == tenant.Purged {
			return http.StatusConflict
		}
	}
	return http.StatusAccepted
}

// After is the tenant once an operation of req ended: succeeded, or failed having
// claimed the tenant or not. A failed flow puts the tenant back where it was, except a
// suspension, which is never undone: once claimed the tenant stays SUSPENDED.
func (m Model) After(req Request, succeeded, claimed bool) Model {
	if !succeeded {
		if req.Kind == Suspend && claimed {
			m.State = tenant.Suspended
		}
		return m
	}
	switch req.Kind {
	case Upgrade, Downgrade:
		m.Plan = req.Plan
	case Suspend:
		m.State = tenant.Suspended
	case Reactivate:
		m.State, m.Plan = tenant.Active, req.Plan
	case Delete:
		m.State = tenant.Deleted
	}
	return m
}

// Transitions are the audit transitions ("FROM->TO", state changes only) that an
// operation of req leaves on a tenant in m when it claimed the tenant, ran attempts
// times (1 + operator retries) and ended succeeded or not. Each attempt claims the
// tenant into the flow's busy state and releases or finishes it; a suspension is held
// in SUSPENDED, so only its first claim changes the state.
func (m Model) Transitions(req Request, succeeded bool, attempts int) []string {
	b := busy(req.Kind)
	if b == "" {
		return nil
	}
	if req.Kind == Suspend {
		return []string{arrow(m.State, b)}
	}
	var out []string
	for i := range attempts {
		end := m.State
		if i == attempts-1 && succeeded {
			end = m.After(req, true, true).State
		}
		out = append(out, arrow(m.State, b), arrow(b, end))
	}
	return out
}

func arrow(from, to tenant.State) string { return string(from) + "->" + string(to) }

// Mix weighs the kinds of request among those the model says start a flow: a kind's
// weight is shared by its requests (every plan an upgrade may go to, ...). A kind
// without a weight is never picked, unless as an invalid request.
type Mix map[Kind]float64

// DefaultMix is the load's mix: plan changes and reactivations (onto any plan) most,
// then suspensions, deletions and exports.
var DefaultMix = Mix{Upgrade: 3, Downgrade: 3, Reactivate: 3, Suspend: 1.5, Delete: 1, Export: 1}

// Pick chooses the next request for a tenant in m: mostly one the model says starts a
// flow, weighted by mix, and with probability invalid any request at all, so
// refusals are exercised too. With nothing in the mix possible it picks an export.
func (m Model) Pick(c *tenant.Catalog, r *rand.Rand, invalid float64, mix Mix) Request {
	plans := c.Plans()
	if r.Float64() < invalid {
		k := Kinds[r.IntN(len(Kinds))]
		req := Request{Kind: k}
		if k == Upgrade || k == Downgrade || k == Reactivate {
			req.Plan = plans[r.IntN(len(plans))]
		}
		return req
	}
	type choice struct {
		req    Request
		weight float64
	}
	var choices []choice
	add := func(reqs ...Request) {
		for _, q := range reqs {
			if w := mix[q.Kind]; w > 0 {
				choices = append(choices, choice{q, w / float64(len(reqs))})
			}
		}
	}
	switch m.State {
	case tenant.Active:
		var ups, downs []Request
		for _, p := range plans {
			switch cmp := c.Compare(p, m.Plan); {
			case cmp > 0:
				ups = append(ups, Request{Kind: Upgrade, Plan: p})
			case cmp < 0 && c.FitsPlan(m.Usage, p) == nil:
				downs = append(downs, Request{Kind: Downgrade, Plan: p})
			}
		}
		add(ups...)
		add(downs...)
		add(Request{Kind: Suspend})
		add(Request{Kind: Delete})
		add(Request{Kind: Export})
	case tenant.Suspended, tenant.Deleted:
		var re []Request
		for _, p := range plans {
			if c.FitsPlan(m.Usage, p) == nil {
				re = append(re, Request{Kind: Reactivate, Plan: p})
			}
		}
		add(re...)
		if m.State == tenant.Suspended {
			add(Request{Kind: Delete})
		}
		add(Request{Kind: Export})
	}
	if len(choices) == 0 {
		return Request{Kind: Export}
	}
	total := 0.0
	for _, ch := range choices {
		total += ch.weight
	}
	x := r.Float64() * total
	for _, ch := range choices {
		if x < ch.weight {
			return ch.req
		}
		x -= ch.weight
	}
	return choices[len(choices)-1].req
}

// usageProfiles are the usages tenants get: fitting free, starter, professional, and
// only enterprise, so some downgrades are refused for usage.
var usageProfiles = []struct {
	usage  tenant.Usage
	weight int
}{
	{tenant.Usage{Users: 2, StorageGB: 0.5, APICallsPerMonth: 5_000}, 4},
	{tenant.Usage{Users: 8, StorageGB: 6, APICallsPerMonth: 60_000}, 3},
	{tenant.Usage{Users: 40, StorageGB: 70, APICallsPerMonth: 500_000}, 2},
	{tenant.Usage{Users: 120, StorageGB: 400, APICallsPerMonth: 3_000_000}, 1},
}

// newModel draws a tenant's usage and a starting plan that fits it, ACTIVE.
func newModel(c *tenant.Catalog, r *rand.Rand) (Model, error) {
	total := 0
	for _, p := range usageProfiles {
		total += p.weight
	}
	x := r.IntN(total)
	var u tenant.Usage
	for _, p := range usageProfiles {
		if x < p.weight {
			u = p.usage
			break
		}
		x -= p.weight
	}
	var fits []tenant.Plan
	for _, p := range c.Plans() {
		if c.FitsPlan(u, p) == nil {
			fits = append(fits, p)
		}
	}
	if len(fits) == 0 {
		return Model{}, fmt.Errorf("no plan of the catalog fits usage %+v", u)
	}
	return Model{State: tenant.Active, Plan: fits[r.IntN(len(fits))], Usage: u}, nil
}
