package tenant

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// allowed is the lifecycle table (docs/flows.md), written out independently of
// state.go so a change to either shows up here.
var allowed = map[[2]State]bool{
	{Provisioning, Active}: true, {Provisioning, Purged}: true,
	{Active, Upgrading}: true, {Active, Downgrading}: true, {Active, Suspended}: true, {Active, Deleting}: true,
	{Upgrading, Active}:       true,
	{Downgrading, Active}:     true,
	{Suspended, Reactivating}: true, {Suspended, Deleting}: true,
	{Deleting, Deleted}: true, {Deleting, Active}: true, {Deleting, Suspended}: true,
	{Deleted, Reactivating}: true, {Deleted, Purged}: true,
	{Reactivating, Active}: true, {Reactivating, Suspended}: true, {Reactivating, Deleted}: true,
}

func TestTransitionTableAll81Pairs(t *testing.T) {
	if len(States) != 9 {
		t.Fatalf("want 9 states, got %d", len(States))
	}
	pairs, ok := 0, 0
	for _, from := range States {
		for _, to := range States {
			pairs++
			want := allowed[[2]State{from, to}]
			err := CheckTransition(from, to)
			if want {
				ok++
				if err != nil {
					t.Errorf("%s -> %s: want allowed, got %v", from, to, err)
				}
				continue
			}
			var it *InvalidTransitionError
			if !errors.As(err, &it) {
				t.Errorf("%s -> %s: want InvalidTransitionError, got %v", from, to, err)
				continue
			}
			if it.From != from || it.To != to || !slices.Equal(it.Allowed, from.Allowed()) {
				t.Errorf("%s -> %s: error fields %+v", from, to, it)
			}
		}
	}
	if pairs != 81 || ok != len(allowed) {
		t.Fatalf("checked %d pairs, %d allowed; want 81 and %d", pairs, ok, len(allowed))
	}
	t.Logf("checked %d (from, to) pairs: %d allowed succeed, %d refused with InvalidTransitionError", pairs, ok, pairs-ok)
}

func TestInvalidTransitionMessageNamesAllowed(t *testing.T) {
	err := CheckTransition(Suspended, Upgrading)
	if got := err.Error(); !strings.Contains(got, "REACTIVATING, DELETING") {
		t.Fatalf("message %q does not name the allowed states", got)
	}
	if got := CheckTransition(Purged, Active).Error(); !strings.Contains(got, "none") {
		t.Fatalf("PURGED message %q should say none", got)
	}
}

func TestParseState(t *testing.T) {
	if s, err := ParseState("DELETED"); err != nil || s != Deleted {
		t.Fatalf("ParseState(DELETED) = %v, %v", s, err)
	}
	var ve *ValidationError
	if _, err := ParseState("deleted"); !errors.As(err, &ve) || ve.Field != "state" {
		t.Fatalf("lowercase state accepted or wrong error: %v", err)
	}
}

func TestPlanOrderAndParse(t *testing.T) {
	c := DefaultCatalog()
	if !slices.Equal(c.Plans(), []Plan{Free, Starter, Professional, Enterprise}) {
		t.Fatalf("order %v", c.Plans())
	}
	if c.Compare(Free, Starter) != -1 || c.Compare(Enterprise, Professional) != 1 || c.Compare(Starter, Starter) != 0 {
		t.Fatal("Compare does not follow the plan order")
	}
	var ve *ValidationError
	if _, err := c.Parse("gold"); !errors.As(err, &ve) || !strings.Contains(ve.Reason, "free, starter, professional, enterprise") {
		t.Fatalf("Parse(gold) = %v", err)
	}
}

func TestCheckUsageReportsEveryViolation(t *testing.T) {
	c := DefaultCatalog()
	enterprise := Usage{Users: 45, StorageGB: 80, APICallsPerMonth: 600_000}
	err := c.FitsPlan(enterprise, Starter)
	var ue *UsageExceedsLimitError
	if !errors.As(err, &ue) {
		t.Fatalf("want UsageExceedsLimitError, got %v", err)
	}
	want := []Violation{
		{Limit: "users", Usage: 45, Max: 10},
		{Limit: "storage_gb", Usage: 80, Max: 10},
		{Limit: "api_calls_per_month", Usage: 600_000, Max: 100_000},
	}
	if !slices.Equal(ue.Violations, want) {
		t.Fatalf("violations %+v, want %+v", ue.Violations, want)
	}
	if !strings.Contains(err.Error(), "users 45 > 10") {
		t.Fatalf("message %q", err)
	}
	// One limit over: only that one is reported.
	if v := CheckUsage(Usage{Users: 4, StorageGB: 0.5, APICallsPerMonth: 10}, mustLimits(t, c, Free)); len(v) != 1 || v[0].Limit != "users" {
		t.Fatalf("got %+v", v)
	}
	// Exactly at the limit fits; unlimited never fails.
	if err := c.FitsPlan(Usage{Users: 3, StorageGB: 1, APICallsPerMonth: 10_000}, Free); err != nil {
		t.Fatalf("at-limit usage refused: %v", err)
	}
	if err := c.FitsPlan(Usage{Users: 1 << 40, StorageGB: 1e9, APICallsPerMonth: 1 << 50}, Enterprise); err != nil {
		t.Fatalf("enterprise refused: %v", err)
	}
}

func TestCatalogOverrides(t *testing.T) {
	c, err := DefaultCatalog().WithLimits(map[Plan]Limits{Free: {Users: 5, StorageGB: 2, APICallsPerMonth: 20_000}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.FitsPlan(Usage{Users: 5}, Free); err != nil {
		t.Fatalf("override not applied: %v", err)
	}
	if err := DefaultCatalog().FitsPlan(Usage{Users: 5}, Free); err == nil {
		t.Fatal("override leaked into the default catalog")
	}
	if _, err := DefaultCatalog().WithLimits(map[Plan]Limits{"gold": {}}); err == nil {
		t.Fatal("override of unknown plan accepted")
	}
}

func TestRetention(t *testing.T) {
	for _, d := range []int{29, 91, 0, -1} {
		if ValidateRetention(d) == nil {
			t.Errorf("retention %d accepted", d)
		}
	}
	for _, d := range []int{30, 60, 90} {
		if err := ValidateRetention(d); err != nil {
			t.Errorf("retention %d refused: %v", d, err)
		}
	}
	deleted := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	purge := deleted.AddDate(0, 0, 30)
	tn := &Tenant{ID: "t1", State: Deleted, DeletedAt: &deleted, PurgeAfter: &purge}
	if err := tn.CanReactivate(purge.Add(-time.Second)); err != nil {
		t.Fatalf("inside retention refused: %v", err)
	}
	var re *RetentionExpiredError
	if err := tn.CanReactivate(purge); !errors.As(err, &re) {
		t.Fatalf("at purge_after: want RetentionExpiredError, got %v", err)
	}
}

func TestValidateID(t *testing.T) {
	for _, id := range []string{"tenant_acme", "abc", "a-1_2"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, id := range []string{"", "ab", "Tenant", "_abc", "a b c", strings.Repeat("a", 65), "tenant/x"} {
		if ValidateID(id) == nil {
			t.Errorf("%q accepted", id)
		}
	}
}

func mustLimits(t *testing.T, c *Catalog, p Plan) Limits {
	t.Helper()
	l, ok := c.Limits(p)
	if !ok {
		t.Fatalf("no limits for %s", p)
	}
	return l
}
