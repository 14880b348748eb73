package tenant

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestDefaultCatalogueKeepsTheSeedPlans: the embedded document is the four seed plans
// with the limits they always had, and features that grow with the rank.
func TestDefaultCatalogueKeepsTheSeedPlans(t *testing.T) {
	c := DefaultCatalog()
	if c.Version() == "" || !slices.Equal(c.Plans(), []Plan{Free, Starter, Professional, Enterprise}) {
		t.Fatalf("version %q plans %v", c.Version(), c.Plans())
	}
	want := map[Plan]Limits{
		Free:         {Users: 3, StorageGB: 1, APICallsPerMonth: 10_000},
		Starter:      {Users: 10, StorageGB: 10, APICallsPerMonth: 100_000},
		Professional: {Users: 50, StorageGB: 100, APICallsPerMonth: 1_000_000},
		Enterprise:   {Users: Unlimited, StorageGB: Unlimited, APICallsPerMonth: Unlimited},
	}
	for p, l := range want {
		if got, _ := c.Limits(p); got != l {
			t.Errorf("%s limits %+v, want %+v", p, got, l)
		}
	}
	count := func(p Plan) int {
		f, _ := c.Features(p)
		n := 0
		for _, on := range f {
			if on {
				n++
			}
		}
		return n
	}
	for i := 1; i < len(c.Plans()); i++ {
		lo, hi := c.Plans()[i-1], c.Plans()[i]
		if count(hi) <= count(lo) {
			t.Errorf("%s has no more features than %s", hi, lo)
		}
	}
	f, _ := c.Features(Starter)
	f["sso"] = true
	if g, _ := c.Features(Starter); g["sso"] {
		t.Fatal("Features hands out the catalogue's own map")
	}
}

func TestParseCatalogOrdersByRank(t *testing.T) {
	c, err := ParseCatalog([]byte(`{"version":"v2","plans":[
		{"name":"gold","rank":20,"limits":{"users":null,"storage_gb":500,"api_calls_per_month":null},"features":{"sso":true}},
		{"name":"basic","rank":10,"limits":{"users":5,"storage_gb":1,"api_calls_per_month":1000},"features":{"sso":false}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Plans(), []Plan{"basic", "gold"}) || c.Compare("gold", "basic") != 1 || c.Version() != "v2" {
		t.Fatalf("plans %v version %s", c.Plans(), c.Version())
	}
	if l, _ := c.Limits("gold"); l.Users != Unlimited || l.StorageGB != 500 {
		t.Fatalf("gold limits %+v", l)
	}
}

// TestParseCatalogRefusals: every problem is named, all at once.
func TestParseCatalogRefusals(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"not json":         {`{`, "not a catalogue document"},
		"unknown field":    {`{"version":"v","plans":[],"extra":1}`, "unknown field"},
		"no version":       {`{"plans":[{"name":"a","rank":0,"limits":{"users":1,"storage_gb":1,"api_calls_per_month":1},"features":{}}]}`, "version must be"},
		"no plans":         {`{"version":"v","plans":[]}`, "at least one plan"},
		"duplicate rank":   {`{"version":"v","plans":[` + plan("a", 1) + `,` + plan("b", 1) + `]}`, `rank 1 is also the rank of plan "a"`},
		"missing rank":     {`{"version":"v","plans":[{"name":"a","limits":{"users":1,"storage_gb":1,"api_calls_per_month":1},"features":{}}]}`, "rank is required"},
		"duplicate name":   {`{"version":"v","plans":[` + plan("a", 1) + `,` + plan("a", 2) + `]}`, `plan "a": named twice`},
		"bad name":         {`{"version":"v","plans":[` + plan("Gold", 1) + `]}`, `name "Gold" must be`},
		"negative limit":   {`{"version":"v","plans":[{"name":"a","rank":0,"limits":{"users":-1,"storage_gb":1,"api_calls_per_month":1},"features":{}}]}`, "limit users -1 must be between 0"},
		"no limits":        {`{"version":"v","plans":[{"name":"a","rank":0,"features":{}}]}`, "limits are required"},
		"features differ":  {`{"version":"v","plans":[` + plan("a", 0) + `,{"name":"b","rank":1,"limits":{"users":1,"storage_gb":1,"api_calls_per_month":1},"features":{"sso":true}}]}`, `features sso differ from those of plan "a" (none)`},
		"huge storage":     {`{"version":"v","plans":[{"name":"a","rank":0,"limits":{"users":1,"storage_gb":1e12,"api_calls_per_month":1},"features":{}}]}`, "limit storage_gb"},
		"trailing data":    {`{"version":"v","plans":[` + plan("a", 0) + `]} {}`, "data after"},
		"two problems too": {`{"version":"","plans":[` + plan("a", 0) + `,` + plan("b", 0) + `]}`, "version must be"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCatalog([]byte(tc.doc))
			var ce *CatalogError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a CatalogError with %q", err, tc.want)
			}
		})
	}
	_, err := ParseCatalog([]byte(`{"version":"","plans":[` + plan("a", 0) + `,` + plan("b", 0) + `]}`))
	if ce := (*CatalogError)(nil); !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("want both problems reported, got %v", err)
	}
}

func plan(name string, rank int) string {
	return `{"name":"` + name + `","rank":` + string(rune('0'+rank)) + `,"limits":{"users":1,"storage_gb":1,"api_calls_per_month":1},"features":{}}`
}

func TestCheckInUse(t *testing.T) {
	c := DefaultCatalog()
	if err := c.CheckInUse(map[Plan]int{Free: 3, Enterprise: 1}); err != nil {
		t.Fatal(err)
	}
	err := c.CheckInUse(map[Plan]int{Free: 3, "legacy": 2, "gone": 0})
	if err == nil || !strings.Contains(err.Error(), `plan "legacy" is not in the catalogue but 2 tenant(s) are on it`) || strings.Contains(err.Error(), "gone") {
		t.Fatalf("got %v", err)
	}
}

func TestOverridesValidateAndApply(t *testing.T) {
	c := DefaultCatalog()
	for name, tc := range map[string]struct {
		o     Overrides
		field string
	}{
		"unknown limit":      {Overrides{Limits: map[string]float64{"seats": 1}}, "limits.seats"},
		"negative limit":     {Overrides{Limits: map[string]float64{LimitUsers: -2}}, "limits.users"},
		"fractional users":   {Overrides{Limits: map[string]float64{LimitUsers: 2.5}}, "limits.users"},
		"unknown feature":    {Overrides{Features: map[string]bool{"teleport": true}}, "features.teleport"},
		"storage over bound": {Overrides{Limits: map[string]float64{LimitStorageGB: 2e9}}, "limits.storage_gb"},
	} {
		var ve *ValidationError
		if err := tc.o.Validate(c); !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s: got %v, want a ValidationError on %s", name, err, tc.field)
		}
	}
	o := &Overrides{Limits: map[string]float64{LimitUsers: 500, LimitStorageGB: Unlimited}, Features: map[string]bool{"sso": true}}
	if err := o.Validate(c); err != nil {
		t.Fatal(err)
	}
	l, _ := c.LimitsFor(Starter, o)
	if l != (Limits{Users: 500, StorageGB: Unlimited, APICallsPerMonth: 100_000}) {
		t.Fatalf("limits %+v", l)
	}
	f, _ := c.Features(Starter)
	if f = o.ApplyFeatures(f); !f["sso"] || !f["custom_domain"] {
		t.Fatalf("features %v", f)
	}
	if err := c.FitsPlanWith(Usage{Users: 400, StorageGB: 5000}, Starter, o); err != nil {
		t.Fatalf("overridden limits not used: %v", err)
	}
	if err := c.FitsPlan(Usage{Users: 400}, Starter); err == nil {
		t.Fatal("plan limits lost")
	}
	if !o.Same(&Overrides{Limits: maps.Clone(o.Limits), Features: maps.Clone(o.Features), Reason: "other"}) || o.Same(nil) || !(*Overrides)(nil).Same(&Overrides{}) {
		t.Fatal("Same")
	}
}
