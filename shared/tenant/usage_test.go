package tenant

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestUsageValidate walks each bound of Usage from both sides: every figure DynamoDB
// could not store (or that no real tenant has) is refused naming its field, and the
// bounds themselves are accepted.
func TestUsageValidate(t *testing.T) {
	ok := Usage{Users: 2, StorageGB: 0.5, APICallsPerMonth: 5000}
	with := func(f func(*Usage)) Usage { u := ok; f(&u); return u }
	cases := []struct {
		name  string
		u     Usage
		field string // "" = valid
	}{
		{"typical", ok, ""},
		{"all zero", Usage{}, ""},
		{"all at max", Usage{Users: MaxUsers, StorageGB: MaxStorageGB, APICallsPerMonth: MaxAPICallsPerMonth}, ""},
		{"storage at min", with(func(u *Usage) { u.StorageGB = MinStorageGB }), ""},
		{"negative zero storage", with(func(u *Usage) { u.StorageGB = math.Copysign(0, -1) }), ""},

		{"negative users", with(func(u *Usage) { u.Users = -1 }), "users"},
		{"users over 1e15", with(func(u *Usage) { u.Users = MaxUsers + 1 }), "users"},
		{"users max int64", with(func(u *Usage) { u.Users = math.MaxInt64 }), "users"},
		{"users min int64", with(func(u *Usage) { u.Users = math.MinInt64 }), "users"},

		{"negative storage", with(func(u *Usage) { u.StorageGB = -0.1 }), "storage_gb"},
		{"storage 1e200", with(func(u *Usage) { u.StorageGB = 1e200 }), "storage_gb"},
		{"storage 1e-200", with(func(u *Usage) { u.StorageGB = 1e-200 }), "storage_gb"},
		{"storage just over max", with(func(u *Usage) { u.StorageGB = math.Nextafter(MaxStorageGB, math.Inf(1)) }), "storage_gb"},
		{"storage just under min", with(func(u *Usage) { u.StorageGB = math.Nextafter(MinStorageGB, 0) }), "storage_gb"},
		{"storage smallest denormal", with(func(u *Usage) { u.StorageGB = math.SmallestNonzeroFloat64 }), "storage_gb"},
		{"storage max float", with(func(u *Usage) { u.StorageGB = math.MaxFloat64 }), "storage_gb"},
		{"storage +Inf", with(func(u *Usage) { u.StorageGB = math.Inf(1) }), "storage_gb"},
		{"storage -Inf", with(func(u *Usage) { u.StorageGB = math.Inf(-1) }), "storage_gb"},
		{"storage NaN", with(func(u *Usage) { u.StorageGB = math.NaN() }), "storage_gb"},

		{"negative calls", with(func(u *Usage) { u.APICallsPerMonth = -5 }), "api_calls_per_month"},
		{"calls over 1e15", with(func(u *Usage) { u.APICallsPerMonth = MaxAPICallsPerMonth + 1 }), "api_calls_per_month"},
		{"calls max int64", with(func(u *Usage) { u.APICallsPerMonth = math.MaxInt64 }), "api_calls_per_month"},

		// The first bad field in body order is the one reported.
		{"several bad", Usage{Users: -1, StorageGB: 1e200, APICallsPerMonth: -1}, "users"},
	}
	for _, c := range cases {
		err := c.u.Validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %+v refused: %v", c.name, c.u, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %+v: want ValidationError on %s, got %v", c.name, c.u, c.field, err)
			continue
		}
		// The reason states the whole rule, so a client can fix its report from it.
		if !strings.Contains(ve.Reason, "between") || !strings.Contains(ve.Reason, "1e") {
			t.Errorf("%s: reason %q does not state the bounds", c.name, ve.Reason)
		}
	}
}

// TestUsageBoundsAreExactFloats: the integer bounds survive the float64 of Violation and
// of JavaScript clients, which is why they are 1e15 and not MaxInt64.
func TestUsageBoundsAreExactFloats(t *testing.T) {
	for _, n := range []int64{MaxUsers, MaxAPICallsPerMonth} {
		if f := float64(n); int64(f) != n || f >= 1<<53 {
			t.Errorf("bound %d is not exact as a float64", n)
		}
	}
}
