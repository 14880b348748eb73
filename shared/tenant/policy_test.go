package tenant

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

var (
	now     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later   = now.AddDate(0, 0, 10)
	earlier = now.AddDate(0, 0, -1)
	cat     = DefaultCatalog()
)

// tn builds a tenant for the policy cases: professional, 9 users (over free's 3,
// within starter's 10), free of operations unless changed.
func tn(state State, mod ...func(*Tenant)) *Tenant {
	t := &Tenant{ID: "t1", Plan: Professional, State: state, Usage: Usage{Users: 9, StorageGB: 1, APICallsPerMonth: 100}}
	if state == Deleted {
		t.PurgeAfter = &later
	}
	for _, m := range mod {
		m(t)
	}
	return t
}

func held(t *Tenant)      { t.Operation = "op_other" }
func attention(t *Tenant) { t.Attention = "op_failed" }
func cause(c string) func(*Tenant) {
	return func(t *Tenant) { t.SuspendCause, t.SuspendReason = c, "why: "+c }
}
func expired(t *Tenant) { t.PurgeAfter = &earlier }
func overrides(limits map[string]float64) func(*Tenant) {
	return func(t *Tenant) { t.Overrides = &Overrides{Limits: limits, Reason: "deal", By: "op"} }
}

func q(a Action, who Actor, t *Tenant, plan Plan) Query {
	return Query{Action: a, Actor: who, Tenant: t, Plan: plan, Catalog: cat, Now: now}
}

// Error kinds a refusal is expected to be.
const (
	forbidden  = "forbidden"
	transition = "invalid-transition"
	conflict   = "conflict"
	usage      = "usage"
	validation = "validation"
	expiredErr = "retention-expired"
	notOver    = "retention-not-over"
	refused    = "export-refused"
)

func kindOf(err error) string {
	var (
		fe  *ForbiddenError
		ite *InvalidTransitionError
		ce  *ConflictError
		ue  *UsageExceedsLimitError
		ve  *ValidationError
		re  *RetentionExpiredError
		rno *RetentionNotOverError
		xre *ExportRefusedError
	)
	switch {
	case err == nil:
		return "allowed"
	case errors.As(err, &fe):
		return forbidden
	case errors.As(err, &ite):
		return transition
	case errors.As(err, &ce):
		return conflict
	case errors.As(err, &ue):
		return usage
	case errors.As(err, &ve):
		return validation
	case errors.As(err, &re):
		return expiredErr
	case errors.As(err, &rno):
		return notOver
	case errors.As(err, &xre):
		return refused
	}
	return "untyped: " + err.Error()
}

type policyCase struct {
	name string
	q    Query
	want string // "allowed" or the refusal's kind
	ends State  // for allowed cases with a state change: where the tenant ends
}

// policyCases hold, for every rule, at least one query it allows and one it refuses
// (TestEveryRuleHasCases checks that).
var policyCases = []policyCase{
	{"operator creates", Query{Action: ActCreate, Actor: ActorOperator, Plan: Free, Catalog: cat}, "allowed", ""},
	{"tenant token cannot create", Query{Action: ActCreate, Actor: ActorTenant, Plan: Free, Catalog: cat}, forbidden, ""},
	{"create onto an unknown plan", Query{Action: ActCreate, Actor: ActorOperator, Plan: "gold", Catalog: cat}, validation, ""},

	{"tenant upgrades itself", q(ActUpgrade, ActorTenant, tn(Active), Enterprise), "allowed", Active},
	{"metering cannot upgrade", q(ActUpgrade, ActorMetering, tn(Active), Enterprise), forbidden, ""},
	{"upgrade to a lower plan", q(ActUpgrade, ActorOperator, tn(Active), Starter), validation, ""},
	{"upgrade of a suspended tenant", q(ActUpgrade, ActorOperator, tn(Suspended), Enterprise), transition, ""},
	{"upgrade during an upgrade is a conflict", q(ActUpgrade, ActorTenant, tn(Upgrading, held), Enterprise), conflict, ""},
	{"upgrade waiting for an operator", q(ActUpgrade, ActorTenant, tn(Active, attention), Enterprise), conflict, ""},

	{"downgrade that fits", q(ActDowngrade, ActorTenant, tn(Active), Starter), "allowed", Active},
	{"downgrade that does not fit", q(ActDowngrade, ActorTenant, tn(Active), Free), usage, ""},
	{"downgrade to a higher plan", q(ActDowngrade, ActorTenant, tn(Active), Enterprise), validation, ""},
	{"downgrade with a change pending", q(ActDowngrade, ActorTenant, tn(Active, func(t *Tenant) {
		t.PendingChange = &PendingChange{Plan: Starter, OperationID: "op_pending"}
	}), Starter), conflict, ""},
	// An operator's override counts in every usage check: 9 users fit free when free
	// is overridden to 20 users, and starter no longer fits when it is lowered to 5.
	{"downgrade that fits through an override", q(ActDowngrade, ActorTenant, tn(Active, overrides(map[string]float64{LimitUsers: 20})), Free), "allowed", Active},
	{"downgrade that an override makes too small", q(ActDowngrade, ActorTenant, tn(Active, overrides(map[string]float64{LimitUsers: 5})), Starter), usage, ""},
	{"win-back that fits only through an override", q(ActWinBack, ActorTenant, tn(Deleted, overrides(map[string]float64{LimitUsers: Unlimited})), Free), "allowed", Active},

	{"operator overrides", q(ActOverride, ActorOperator, tn(Active), ""), "allowed", ""},
	{"operator overrides a deleted tenant (win-back fit)", q(ActOverride, ActorOperator, tn(Deleted), ""), "allowed", ""},
	{"tenant cannot override itself", q(ActOverride, ActorTenant, tn(Active), ""), forbidden, ""},
	{"no overrides on a purged tenant", q(ActOverride, ActorOperator, tn(Purged), ""), conflict, ""},

	{"schedule a downgrade that fits", q(ActDowngradeAtPeriodEnd, ActorOperator, tn(Active), Starter), "allowed", Active},
	{"schedule a downgrade that does not fit", q(ActDowngradeAtPeriodEnd, ActorOperator, tn(Active), Free), usage, ""},
	{"Stripe cannot downgrade", q(ActDowngradeAtPeriodEnd, ActorStripe, tn(Active), Starter), forbidden, ""},

	{"sweep starts its scheduled change", Query{Action: ActRunScheduledDowngrade, Actor: ActorSchedule, OperationID: "op_pending",
		Tenant: tn(Active, func(t *Tenant) { t.PendingChange = &PendingChange{Plan: Starter, OperationID: "op_pending"} })}, "allowed", Active},
	{"sweep with another change pending", Query{Action: ActRunScheduledDowngrade, Actor: ActorSchedule, OperationID: "op_mine",
		Tenant: tn(Active, func(t *Tenant) { t.PendingChange = &PendingChange{Plan: Starter, OperationID: "op_pending"} })}, conflict, ""},
	{"sweep on a suspended tenant", Query{Action: ActRunScheduledDowngrade, Actor: ActorSchedule, OperationID: "op_pending",
		Tenant: tn(Suspended, func(t *Tenant) { t.PendingChange = &PendingChange{Plan: Starter, OperationID: "op_pending"} })}, transition, ""},
	{"a tenant cannot run a scheduled change", Query{Action: ActRunScheduledDowngrade, Actor: ActorTenant, OperationID: "op_pending",
		Tenant: tn(Active, func(t *Tenant) { t.PendingChange = &PendingChange{Plan: Starter, OperationID: "op_pending"} })}, forbidden, ""},

	{"operator suspends", q(ActSuspend, ActorOperator, tn(Active), ""), "allowed", Suspended},
	{"tenant cannot suspend", q(ActSuspend, ActorTenant, tn(Active), ""), forbidden, ""},
	{"suspend a suspended tenant", q(ActSuspend, ActorOperator, tn(Suspended), ""), transition, ""},
	{"Stripe suspends for nonpayment", q(ActStripeSuspendNonpayment, ActorStripe, tn(Active), ""), "allowed", Suspended},
	{"an operator does not send Stripe's intents", q(ActStripeSuspendNonpayment, ActorOperator, tn(Active), ""), forbidden, ""},
	{"Stripe's nonpayment waits for a running upgrade", q(ActStripeSuspendNonpayment, ActorStripe, tn(Upgrading, held), ""), conflict, ""},
	{"Stripe's nonpayment on a suspended tenant changes nothing", q(ActStripeSuspendNonpayment, ActorStripe, tn(Suspended, cause(CauseOperator)), ""), transition, ""},
	{"Stripe suspends for cancellation", q(ActStripeSuspendCanceled, ActorStripe, tn(Active), ""), "allowed", Suspended},
	{"Stripe's cancellation on a deleted tenant changes nothing", q(ActStripeSuspendCanceled, ActorStripe, tn(Deleted), ""), transition, ""},

	{"operator lifts an operator's suspension", q(ActReactivate, ActorOperator, tn(Suspended, cause(CauseOperator)), Professional), "allowed", Active},
	{"operator lifts a cancellation", q(ActReactivate, ActorOperator, tn(Suspended, cause(CauseCanceled)), Starter), "allowed", Active},
	{"tenant cannot lift its suspension", q(ActReactivate, ActorTenant, tn(Suspended, cause(CauseNonpayment)), Professional), forbidden, ""},
	{"lift onto a plan usage does not fit", q(ActReactivate, ActorOperator, tn(Suspended, cause(CauseOperator)), Free), usage, ""},
	{"lift of an ACTIVE tenant", q(ActReactivate, ActorOperator, tn(Active), Professional), transition, ""},

	{"Stripe lifts nonpayment", q(ActStripeLiftNonpayment, ActorStripe, tn(Suspended, cause(CauseNonpayment)), Professional), "allowed", Active},
	{"Stripe does not lift an operator's suspension", q(ActStripeLiftNonpayment, ActorStripe, tn(Suspended, cause(CauseOperator)), Professional), forbidden, ""},
	{"Stripe does not lift a cancellation", q(ActStripeLiftNonpayment, ActorStripe, tn(Suspended, cause(CauseCanceled)), Professional), forbidden, ""},
	{"Stripe's lift waits for a running suspension", q(ActStripeLiftNonpayment, ActorStripe, tn(Suspended, held), Professional), conflict, ""},
	{"Stripe's lift waits for a win-back that may end SUSPENDED", q(ActStripeLiftNonpayment, ActorStripe, tn(Reactivating, held), Professional), conflict, ""},
	{"Stripe's lift of a deleted tenant changes nothing", q(ActStripeLiftNonpayment, ActorStripe, tn(Deleted, cause(CauseNonpayment)), Professional), transition, ""},
	{"Stripe's payment clears a deleted tenant's nonpayment cause", q(ActStripeCureNonpayment, ActorStripe, tn(Deleted, cause(CauseNonpayment)), ""), "allowed", Deleted},
	{"a payment keeps a deleted tenant's operator cause", q(ActStripeCureNonpayment, ActorStripe, tn(Deleted, cause(CauseOperator)), ""), forbidden, ""},
	{"a payment keeps a deleted tenant's cancellation", q(ActStripeCureNonpayment, ActorStripe, tn(Deleted, cause(CauseCanceled)), ""), forbidden, ""},
	{"a payment has nothing to clear on a deleted tenant without a cause", q(ActStripeCureNonpayment, ActorStripe, tn(Deleted), ""), forbidden, ""},
	{"the cure waits for an operation holding the deleted tenant", q(ActStripeCureNonpayment, ActorStripe, tn(Deleted, cause(CauseNonpayment), held), ""), conflict, ""},
	{"a tenant cannot clear its own cause", q(ActStripeCureNonpayment, ActorTenant, tn(Deleted, cause(CauseNonpayment)), ""), forbidden, ""},
	{"the cure is for deleted tenants only", q(ActStripeCureNonpayment, ActorStripe, tn(Suspended, cause(CauseNonpayment)), ""), conflict, ""},

	{"tenant deletes itself", q(ActDelete, ActorTenant, tn(Active), ""), "allowed", Deleted},
	{"tenant deletes itself while suspended", q(ActDelete, ActorTenant, tn(Suspended, cause(CauseOperator)), ""), "allowed", Deleted},
	{"metering cannot delete", q(ActDelete, ActorMetering, tn(Active), ""), forbidden, ""},
	{"delete a deleted tenant", q(ActDelete, ActorOperator, tn(Deleted), ""), transition, ""},

	{"tenant wins itself back", q(ActWinBack, ActorTenant, tn(Deleted), Professional), "allowed", Active},
	{"tenant wins back, suspension kept", q(ActWinBack, ActorTenant, tn(Deleted, cause(CauseOperator)), Professional), "allowed", Suspended},
	{"tenant wins back suspended onto another plan", q(ActWinBack, ActorTenant, tn(Deleted, cause(CauseNonpayment)), Enterprise), validation, ""},
	{"operator's win-back lifts the suspension", q(ActWinBack, ActorOperator, tn(Deleted, cause(CauseOperator)), Professional), "allowed", Active},
	{"win-back onto a plan usage does not fit", q(ActWinBack, ActorTenant, tn(Deleted), Free), usage, ""},
	{"win-back after purge_after", q(ActWinBack, ActorTenant, tn(Deleted, expired), Professional), expiredErr, ""},
	{"win-back of a purged tenant", q(ActWinBack, ActorOperator, tn(Purged), Professional), expiredErr, ""},
	{"Stripe cannot win back", q(ActWinBack, ActorStripe, tn(Deleted), Professional), forbidden, ""},
	{"win-back of an ACTIVE tenant", q(ActWinBack, ActorTenant, tn(Active), Professional), transition, ""},

	{"tenant exports while deleted", q(ActExport, ActorTenant, tn(Deleted), ""), "allowed", Deleted},
	{"export of a purged tenant", q(ActExport, ActorOperator, tn(Purged), ""), refused, ""},
	{"export past purge_after", q(ActExport, ActorTenant, tn(Deleted, expired), ""), refused, ""},
	{"metering cannot export", q(ActExport, ActorMetering, tn(Active), ""), forbidden, ""},

	{"metering reports usage", q(ActUsageReport, ActorMetering, tn(Suspended), ""), "allowed", Suspended},
	{"tenant cannot report its usage", q(ActUsageReport, ActorTenant, tn(Active), ""), forbidden, ""},
	{"usage of a purged tenant", q(ActUsageReport, ActorOperator, tn(Purged), ""), conflict, ""},

	{"sweep purges after retention", q(ActPurge, ActorSchedule, tn(Deleted, expired), ""), "allowed", Purged},
	{"purge inside the retention", q(ActPurge, ActorSchedule, tn(Deleted), ""), notOver, ""},
	{"tenant cannot purge", q(ActPurge, ActorTenant, tn(Deleted, expired), ""), forbidden, ""},
	{"purge of an ACTIVE tenant", q(ActPurge, ActorOperator, tn(Active), ""), transition, ""},

	{"operator retries", Query{Action: ActRetry, Actor: ActorOperator, Operation: &Operation{ID: "op_f", NeedsAttention: true}}, "allowed", ""},
	{"retry of a finished operation", Query{Action: ActRetry, Actor: ActorOperator, Operation: &Operation{ID: "op_f", Status: OpSucceeded}}, conflict, ""},
	{"tenant cannot retry", Query{Action: ActRetry, Actor: ActorTenant, Operation: &Operation{ID: "op_f", NeedsAttention: true}}, forbidden, ""},
	{"operator resolves", Query{Action: ActResolve, Actor: ActorOperator, Operation: &Operation{ID: "op_f", NeedsAttention: true}}, "allowed", ""},
	{"resolve of an operation that needs nothing", Query{Action: ActResolve, Actor: ActorOperator, Operation: &Operation{ID: "op_f", Status: OpFailed}}, conflict, ""},
}

// TestPolicyCases runs each case through Decide.
func TestPolicyCases(t *testing.T) {
	for _, c := range policyCases {
		v, err := Decide(c.q)
		if got := kindOf(err); got != c.want {
			t.Errorf("%s: %s (%v), want %s", c.name, got, err, c.want)
			continue
		}
		if err == nil && c.ends != "" && v.Ends != c.ends {
			t.Errorf("%s: ends %s, want %s", c.name, v.Ends, c.ends)
		}
	}
}

// TestEveryRuleHasCases: a rule added to the table without a case that allows it and
// one that refuses it fails here.
func TestEveryRuleHasCases(t *testing.T) {
	allows, refuses := map[Action]bool{}, map[Action]bool{}
	for _, c := range policyCases {
		if c.want == "allowed" {
			allows[c.q.Action] = true
		} else {
			refuses[c.q.Action] = true
		}
	}
	for _, r := range Rules {
		if !allows[r.Action] || !refuses[r.Action] {
			t.Errorf("rule %s: a case that allows it %v, one that refuses it %v", r.Action, allows[r.Action], refuses[r.Action])
		}
	}
}

// TestSuspensionCauses: the cause a suspension records, and that it survives a
// tenant's own win-back (finding 1) but not an operator's.
func TestSuspensionCauses(t *testing.T) {
	for a, want := range map[Action]string{ActSuspend: CauseOperator, ActStripeSuspendNonpayment: CauseNonpayment, ActStripeSuspendCanceled: CauseCanceled} {
		who := ActorStripe
		if a == ActSuspend {
			who = ActorOperator
		}
		v, err := Decide(q(a, who, tn(Active), ""))
		if err != nil || v.Cause != want || v.Ends != Suspended {
			t.Errorf("%s: %+v %v, want cause %s", a, v, err, want)
		}
	}
	for _, c := range Causes {
		v, err := Decide(q(ActWinBack, ActorTenant, tn(Deleted, cause(c)), Professional))
		if err != nil || v.Ends != Suspended || v.Cause != c {
			t.Errorf("own win-back of a tenant deleted while suspended for %s: %+v %v", c, v, err)
		}
		v, err = Decide(q(ActWinBack, ActorOperator, tn(Deleted, cause(c)), Professional))
		if err != nil || v.Ends != Active || v.Cause != "" {
			t.Errorf("operator's win-back (%s): %+v %v", c, v, err)
		}
		v, err = Decide(q(ActDelete, ActorTenant, tn(Suspended, cause(c)), ""))
		if err != nil || v.Ends != Deleted || v.Cause != c {
			t.Errorf("deletion keeps the cause %s: %+v %v", c, v, err)
		}
	}
	if got := Lifters(CauseNonpayment); strings.Join(actorStrings(got), ",") != "operator,stripe" {
		t.Errorf("nonpayment lifted by %v", got)
	}
	for _, c := range []string{CauseOperator, CauseCanceled} {
		if got := Lifters(c); strings.Join(actorStrings(got), ",") != "operator" {
			t.Errorf("%s lifted by %v", c, got)
		}
	}
}

// TestLegacyReasonIsACause: records from before causes existed.
func TestLegacyReasonIsACause(t *testing.T) {
	for reason, want := range map[string]string{"": "", "nonpayment": CauseNonpayment, "canceled": CauseCanceled, "fraud review": CauseOperator} {
		if got := (&Tenant{SuspendReason: reason}).Cause(); got != want {
			t.Errorf("reason %q: cause %q, want %q", reason, got, want)
		}
	}
	if got := (&Tenant{SuspendReason: "nonpayment", SuspendCause: CauseOperator}).Cause(); got != CauseOperator {
		t.Errorf("a recorded cause wins over the reason: %q", got)
	}
}

// TestUsageRefusalListsEveryViolation: the win-back's 422 carries every violation,
// as a downgrade's does.
func TestUsageRefusalListsEveryViolation(t *testing.T) {
	big := func(x *Tenant) { x.Usage = Usage{Users: 9, StorageGB: 5, APICallsPerMonth: 50_000} }
	_, err := Decide(q(ActWinBack, ActorTenant, tn(Deleted, big), Free))
	var ue *UsageExceedsLimitError
	if !errors.As(err, &ue) || len(ue.Violations) != 3 || ue.Plan != Free {
		t.Fatalf("%v", err)
	}
}

// TestOwnHoldIsNoRefusal: the operation asking (its reservation or its claim) is not
// "another operation".
func TestOwnHoldIsNoRefusal(t *testing.T) {
	mine := tn(Active, func(x *Tenant) { x.Operation = "op_mine" })
	query := q(ActUpgrade, ActorTenant, mine, Enterprise)
	if _, err := Decide(query); kindOf(err) != conflict {
		t.Fatalf("held by another: %v", err)
	}
	query.OperationID = "op_mine"
	if _, err := Decide(query); err != nil {
		t.Fatalf("own hold: %v", err)
	}
}

// TestForbiddenMessageNamesWhoMay: the 403's text says who may.
func TestForbiddenMessageNamesWhoMay(t *testing.T) {
	_, err := Decide(q(ActReactivate, ActorTenant, tn(Suspended, cause(CauseOperator)), Professional))
	if err == nil || !strings.Contains(err.Error(), "the tenant's own token may not lift a suspension") || !strings.Contains(err.Error(), "operator") {
		t.Fatalf("%v", err)
	}
	_, err = Decide(q(ActStripeLiftNonpayment, ActorStripe, tn(Suspended, cause(CauseCanceled)), Professional))
	if err == nil || !strings.Contains(err.Error(), `cause "canceled"`) || !strings.Contains(err.Error(), "lifted only by: operator") {
		t.Fatalf("%v", err)
	}
}

// TestPolicyDocIsRendered keeps docs/policy.md equal to what the table renders.
func TestPolicyDocIsRendered(t *testing.T) {
	const path = "../../docs/policy.md"
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := RenderPolicyDoc(string(page))
	if err != nil {
		t.Fatal(err)
	}
	if want == string(page) {
		return
	}
	got, exp := strings.Split(string(page), "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(got), len(exp)); i++ {
		var g, e string
		if i < len(got) {
			g = got[i]
		}
		if i < len(exp) {
			e = exp[i]
		}
		if g != e {
			t.Fatalf("docs/policy.md differs from the policy table at line %d:\n  page:  %q\n  table: %q\nregenerate it with: go run ./cmd/policydoc", i+1, g, e)
		}
	}
}

func actorStrings(as []Actor) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return out
}
