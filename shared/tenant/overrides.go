package tenant

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Overrides are an operator's exceptions to the catalogue for one tenant (an
// enterprise deal: 500 users on professional, SSO on starter). They are kept on the
// tenant, whatever its plan, until an operator removes them, and every usage check and
// the entitlements document apply them on top of the plan's limits and features.
type Overrides struct {
	// Limits by name (LimitNames); Unlimited (-1) lifts a limit.
	Limits LimitOverrides `json:"limits,omitempty"`
	// Features by name (the catalogue's feature names).
	Features map[string]bool `json:"features,omitempty"`
	// Reason, By and At say who set them, why and when (also in the audit trail).
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// LimitOverrides are overridden limits by name. In JSON an unlimited one is the
// string "unlimited" (null would read as "no override"), as the API takes and shows
// them.
type LimitOverrides map[string]float64

// UnlimitedWord is how JSON spells an unlimited override.
const UnlimitedWord = "unlimited"

// MarshalJSON writes Unlimited as "unlimited".
func (l LimitOverrides) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(l))
	for k, v := range l {
		if v == Unlimited {
			out[k] = UnlimitedWord
		} else {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads numbers and "unlimited".
func (l *LimitOverrides) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := LimitOverrides{}
	for k, v := range raw {
		f, err := ParseLimitOverride(v)
		if err != nil {
			return fmt.Errorf("limit %s: %w", k, err)
		}
		out[k] = f
	}
	*l = out
	return nil
}

// ParseLimitOverride reads one overridden limit: a number, or "unlimited" (Unlimited).
func ParseLimitOverride(v json.RawMessage) (float64, error) {
	var word string
	if json.Unmarshal(v, &word) == nil {
		if word != UnlimitedWord {
			return 0, fmt.Errorf("want a number or %q, got %q", UnlimitedWord, word)
		}
		return Unlimited, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, fmt.Errorf("want a number or %q", UnlimitedWord)
	}
	if f < 0 {
		// -1 is Unlimited inside; outside, only the word says it.
		return 0, fmt.Errorf("must not be negative (%q lifts the limit)", UnlimitedWord)
	}
	return f, nil
}

// Empty reports whether o overrides nothing.
func (o *Overrides) Empty() bool {
	return o == nil || (len(o.Limits) == 0 && len(o.Features) == 0)
}

// Same reports whether o and p override the same limits and features with the same
// values (who, why and when aside): a repeated PUT changes nothing.
func (o *Overrides) Same(p *Overrides) bool {
	if o.Empty() || p.Empty() {
		return o.Empty() && p.Empty()
	}
	return maps.Equal(o.Limits, p.Limits) && maps.Equal(o.Features, p.Features)
}

// Validate checks o against catalogue c: limit names are LimitNames, a limit is
// Unlimited or within the bounds of its usage figure (users and API calls whole
// numbers), and every feature is one of the catalogue's.
func (o *Overrides) Validate(c *Catalog) error {
	if o == nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(o.Limits)) {
		v := o.Limits[name]
		field := "limits." + name
		if !slices.Contains(LimitNames, name) {
			return &ValidationError{Field: field, Reason: "unknown limit; one of " + listOrNone(LimitNames)}
		}
		if v == Unlimited {
			continue
		}
		if err := checkLimit(name, v); err != nil {
			return &ValidationError{Field: field, Reason: fmt.Sprintf("must be \"unlimited\" or a number between 0 and %g", limitMax(name))}
		}
		if name != LimitStorageGB && v != math.Trunc(v) {
			return &ValidationError{Field: field, Reason: "must be a whole number"}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Features)) {
		if !c.HasFeature(name) {
			return &ValidationError{Field: "features." + name, Reason: "unknown feature; one of " + listOrNone(c.FeatureNames())}
		}
	}
	return nil
}

func limitMax(name string) float64 {
	if name == LimitStorageGB {
		return MaxStorageGB
	}
	return MaxUsers
}

// ApplyLimits returns l with o's limits in place of the plan's.
func (o *Overrides) ApplyLimits(l Limits) Limits {
	if o == nil {
		return l
	}
	if v, ok := o.Limits[LimitUsers]; ok {
		l.Users = int64(v)
	}
	if v, ok := o.Limits[LimitStorageGB]; ok {
		l.StorageGB = v
	}
	if v, ok := o.Limits[LimitAPICallsPerMonth]; ok {
		l.APICallsPerMonth = int64(v)
	}
	return l
}

// ApplyFeatures sets o's features in f (which it changes and returns).
func (o *Overrides) ApplyFeatures(f map[string]bool) map[string]bool {
	if o == nil {
		return f
	}
	if f == nil {
		f = map[string]bool{}
	}
	maps.Copy(f, o.Features)
	return f
}

// LimitsFor returns the limits plan p has for a tenant with overrides o: the plan's,
// with o's in their place.
func (c *Catalog) LimitsFor(p Plan, o *Overrides) (Limits, bool) {
	l, ok := c.Limits(p)
	if !ok {
		return l, false
	}
	return o.ApplyLimits(l), true
}

// FitsPlanWith is FitsPlan for a tenant with overrides o: the limits it is checked
// against are the plan's with o's in their place.
func (c *Catalog) FitsPlanWith(u Usage, p Plan, o *Overrides) error {
	l, ok := c.LimitsFor(p, o)
	if !ok {
		_, err := c.Parse(string(p))
		return err
	}
	if v := CheckUsage(u, l); len(v) > 0 {
		return &UsageExceedsLimitError{Plan: p, Violations: v}
	}
	return nil
}
