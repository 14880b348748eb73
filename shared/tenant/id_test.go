package tenant

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidateIDIsTheRegexp keeps the hand-written check of ValidateID to the exact
// language of the pattern it replaced, on edge cases and random strings.
func TestValidateIDIsTheRegexp(t *testing.T) {
	pattern := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{2,63}$`)
	cases := []string{"", "a", "ab", "abc", "_ab", "-ab", "a_b", "a-b", "ABC", "a b", "tenant_acme", "ü12", "ab\n",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65), "0" + strings.Repeat("-", 63)}
	const alphabet = "az09_-A.\n é"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		var b strings.Builder
		for range r.IntN(70) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, id := range cases {
		if got, want := ValidateID(id) == nil, pattern.MatchString(id); got != want {
			t.Errorf("ValidateID(%q) valid = %v, the pattern says %v", id, got, want)
		}
	}
}
