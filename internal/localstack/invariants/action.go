package invariants

import (
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Actor is who sends an action: the same five callers the lifecycle knows.
type Actor string

// The actors.
const (
	// Operator holds an operator token (scope tenants/admin).
	Operator Actor = "operator"
	// Own is the tenant's own token (claim tenant_id).
	Own Actor = "tenant"
	// Metering holds the metering service's token (scope tenants/usage).
	Metering Actor = "metering"
	// Stripe signs webhook events with the endpoint's secret.
	Stripe Actor = "stripe"
	// Schedule is EventBridge firing a scheduled function.
	Schedule Actor = "schedule"
)

// Kind is what an action does.
type Kind string

// The kinds of action.
const (
	Upgrade    Kind = "upgrade"
	Downgrade  Kind = "downgrade"
	Suspend    Kind = "suspend"
	Reactivate Kind = "reactivate"
	Delete     Kind = "delete"
	Export     Kind = "export"
	// Retry and Resolve act on the operation the tenant waits on (needs attention).
	Retry   Kind = "retry"
	Resolve Kind = "resolve"
	// ReportUsage is a usage report.
	ReportUsage Kind = "usage"
	// Override is an operator's per-tenant override of the users limit (or its removal).
	Override Kind = "override"
	// The Stripe events, about the tenant's current subscription.
	SubUnpaid   Kind = "customer.subscription.updated unpaid"
	SubActive   Kind = "customer.subscription.updated active"
	SubDeleted  Kind = "customer.subscription.deleted"
	InvoicePaid Kind = "invoice.paid"
	// The schedules.
	DowngradeSweep Kind = "downgrade sweep"
	PurgeSweep     Kind = "purge sweep"
	Reconcile      Kind = "reconciler"
)

// stripeKind reports whether k is a Stripe event.
func (k Kind) stripeKind() bool {
	return k == SubUnpaid || k == SubActive || k == SubDeleted || k == InvoicePaid
}

// Action is one thing one actor does. Actions are concrete (plans, figures, event
// numbers and times are chosen when the sequence is generated), so a sequence printed
// by a failure can be run again, and any part of it still means the same.
type Action struct {
	Actor  Actor
	Kind   Kind
	Tenant int // index of the tenant in the sequence (schedules act on every tenant)
	// Plan is the plan an upgrade, downgrade or reactivation asks for.
	Plan tenant.Plan
	// AtPeriodEnd makes a downgrade a scheduled one.
	AtPeriodEnd bool
	// Usage is what a usage report says.
	Usage tenant.Usage
	// Users is an override's users limit; nil removes the tenant's overrides.
	Users *int64
	// Event numbers a Stripe event within the sequence (its id is derived from it): an
	// action repeating an earlier one's number is a redelivery of that event.
	Event int
	// Created is the event's created time, in seconds after the sequence's Stripe
	// clock started; an event created before one already sent arrives out of order.
	Created int64
	// At is how far after now a sweep's scheduled event is dated.
	At time.Duration
	// Fault, when set, is armed on the local Lambda service just before the action.
	Fault *Fault
}

// Fault is a lambdasvc fault: Count invocations of Function fail with ErrorType,
// before the handler runs or, with After, once it has run (its answer is lost).
type Fault struct {
	Function  string
	After     bool
	Count     int
	ErrorType string
}

func (f *Fault) String() string {
	when := "before"
	if f.After {
		when = "after"
	}
	return fmt.Sprintf("fault %s x%d %s the handler (%s)", f.Function, f.Count, when, f.ErrorType)
}

// String renders the action on one line, e.g. "t0 tenant: reactivate onto free".
func (a Action) String() string {
	var b strings.Builder
	if a.Actor != Schedule {
		fmt.Fprintf(&b, "t%d ", a.Tenant)
	}
	fmt.Fprintf(&b, "%s: %s", a.Actor, a.Kind)
	switch a.Kind {
	case Upgrade, Downgrade:
		fmt.Fprintf(&b, " to %s", a.Plan)
		if a.AtPeriodEnd {
			b.WriteString(" at period end")
		}
	case Reactivate:
		fmt.Fprintf(&b, " onto %s", a.Plan)
	case Override:
		if a.Users == nil {
			b.WriteString(" removed")
		} else {
			fmt.Fprintf(&b, " users=%d", *a.Users)
		}
	case ReportUsage:
		fmt.Fprintf(&b, " users=%d storage_gb=%g api_calls=%d", a.Usage.Users, a.Usage.StorageGB, a.Usage.APICallsPerMonth)
	case SubUnpaid, SubActive, SubDeleted, InvoicePaid:
		fmt.Fprintf(&b, " (event %d, created +%ds)", a.Event, a.Created)
	case DowngradeSweep, PurgeSweep:
		fmt.Fprintf(&b, " at now+%s", formatAhead(a.At))
	}
	if a.Fault != nil {
		fmt.Fprintf(&b, " [%s]", a.Fault)
	}
	return b.String()
}

// formatAhead prints a sweep's offset in days or years when it is that long.
func formatAhead(d time.Duration) string {
	switch {
	case d >= 365*24*time.Hour:
		return fmt.Sprintf("%dy", int(d/(365*24*time.Hour)))
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.String()
}

// Step is what happens at one moment: one action, or several sent at the same time
// (two actors at once, or two deliveries of Stripe events racing).
type Step struct {
	Actions []Action
}

// Sequence is a generated run: the tenants it starts with and its steps.
type Sequence struct {
	Seed    int64
	Tenants []Start
	Steps   []Step
}

// Start is a tenant as the sequence creates it: its plan and first usage report.
type Start struct {
	Plan  tenant.Plan
	Usage tenant.Usage
}

// Lines renders the sequence one action per line: the tenants first, then each step
// numbered (the actions of one step sent at once share its number: 4a, 4b).
func (q Sequence) Lines() []string {
	var out []string
	for i, t := range q.Tenants {
		out = append(out, fmt.Sprintf("    t%d created on %s, usage users=%d storage_gb=%g api_calls=%d", i, t.Plan, t.Usage.Users, t.Usage.StorageGB, t.Usage.APICallsPerMonth))
	}
	for i, st := range q.Steps {
		if len(st.Actions) == 1 {
			out = append(out, fmt.Sprintf("%3d. %s", i+1, st.Actions[0]))
			continue
		}
		for j, a := range st.Actions {
			out = append(out, fmt.Sprintf("%3d%c %s (at once)", i+1, 'a'+rune(j), a))
		}
	}
	return out
}

// Actions counts the actions of the sequence.
func (q Sequence) Actions() int {
	n := 0
	for _, st := range q.Steps {
		n += len(st.Actions)
	}
	return n
}
