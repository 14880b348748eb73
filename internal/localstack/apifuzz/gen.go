package apifuzz

import (
	"math"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
)

// The generator makes JSON values from the subset of JSON Schema (2020-12, as OpenAPI
// 3.1 uses it) that openapi.yaml uses: type (also lists with "null"), const, enum,
// examples, minimum/maximum, minLength/maxLength, pattern, properties/required,
// additionalProperties, items and anyOf/oneOf branches. Positive values are checked
// against the whole schema with kin-openapi before use, so keywords the generator
// does not steer by (if/then, allOf) only cost retries, never a wrong label.

// maxTries bounds the attempts at a value that validates (or, for negatives, that
// does not).
const maxTries = 40

// gen draws values from one seeded source, so a run is repeatable from its seed.
type gen struct {
	r *rand.Rand
}

func (g *gen) intn(n int) int {
	if n <= 0 {
		return 0
	}
	return g.r.IntN(n)
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func pick[T any](g *gen, xs []T) T { return xs[g.intn(len(xs))] }

// valid reports whether v satisfies s (JSON Schema 2020-12 semantics).
func valid(s *openapi3.Schema, v any) bool {
	return s.VisitJSON(v, openapi3.EnableJSONSchema2020()) == nil
}

// positive returns a value valid for s, or false when none was found in maxTries.
func (g *gen) positive(s *openapi3.Schema) (any, bool) {
	for range maxTries {
		v := g.value(s, 0)
		if valid(s, v) {
			return v, true
		}
	}
	return nil, false
}

// value draws a candidate for s, steering by the keywords it understands.
func (g *gen) value(s *openapi3.Schema, depth int) any {
	if s == nil {
		return g.str(nil)
	}
	if s.Const != nil {
		return s.Const
	}
	if len(s.Enum) > 0 {
		return pick(g, s.Enum)
	}
	if len(s.Examples) > 0 && g.chance(0.6) {
		return pick(g, s.Examples)
	}
	if branches := append(append(openapi3.SchemaRefs{}, s.AnyOf...), s.OneOf...); len(branches) > 0 {
		return g.value(merge(s, pick(g, branches).Value), depth)
	}
	types := typesOf(s)
	if len(types) == 0 {
		types = []string{"string"}
	}
	t := pick(g, types)
	if len(types) > 1 && slicesContains(types, "null") && g.chance(0.6) {
		// A nullable field is mostly given a real value: null is one case among many.
		for t == "null" {
			t = pick(g, types)
		}
	}
	switch t {
	case "null":
		return nil
	case "boolean":
		return g.chance(0.5)
	case "integer":
		return g.integer(s)
	case "number":
		return g.number(s)
	case "array":
		n := g.intn(3)
		out := make([]any, 0, n)
		for range n {
			var item *openapi3.Schema
			if s.Items != nil {
				item = s.Items.Value
			}
			out = append(out, g.value(item, depth+1))
		}
		return out
	case "object":
		return g.object(s, depth)
	}
	return g.str(s)
}

// merge overlays the scalar keywords of branch on a copy of base (without its
// branches), for generating from one branch of anyOf/oneOf.
func merge(base, branch *openapi3.Schema) *openapi3.Schema {
	m := *base
	m.AnyOf, m.OneOf = nil, nil
	if branch == nil {
		return &m
	}
	if branch.Type != nil && len(branch.Type.Slice()) > 0 {
		m.Type = branch.Type
	}
	if branch.Const != nil {
		m.Const = branch.Const
	}
	if len(branch.Enum) > 0 {
		m.Enum = branch.Enum
	}
	if branch.Min != nil {
		m.Min = branch.Min
	}
	if branch.Max != nil {
		m.Max = branch.Max
	}
	if branch.Pattern != "" {
		m.Pattern = branch.Pattern
	}
	if branch.MinLength > 0 {
		m.MinLength = branch.MinLength
	}
	if branch.MaxLength != nil {
		m.MaxLength = branch.MaxLength
	}
	if len(branch.Properties) > 0 {
		m.Properties = branch.Properties
		m.Required = branch.Required
	}
	return &m
}

func typesOf(s *openapi3.Schema) []string {
	if s.Type == nil {
		if len(s.Properties) > 0 {
			return []string{"object"}
		}
		return nil
	}
	return s.Type.Slice()
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (g *gen) object(s *openapi3.Schema, depth int) map[string]any {
	out := map[string]any{}
	for _, name := range sortedKeys(s.Properties) {
		p := s.Properties[name]
		required := slicesContains(s.Required, name)
		if !required && !g.chance(0.5) {
			continue
		}
		out[name] = g.value(p.Value, depth+1)
	}
	if ap := s.AdditionalProperties; ap.Schema != nil && ap.Schema.Value != nil && depth < 3 {
		for i := range g.intn(3) {
			out[g.ident()+string(rune('a'+i))] = g.value(ap.Schema.Value, depth+1)
		}
	}
	return out
}

// bounds are an integer schema's limits, clamped to what float64 holds exactly.
func intBounds(s *openapi3.Schema) (lo, hi int64) {
	lo, hi = -1_000_000, 1_000_000
	if s.Min != nil {
		lo = int64(math.Ceil(*s.Min))
		if hi < lo {
			hi = lo + 1_000_000
		}
	}
	if s.Max != nil {
		hi = int64(math.Floor(*s.Max))
		if lo > hi {
			lo = hi - 1_000_000
		}
	}
	return lo, hi
}

// integer prefers the edges of the range (where off-by-one bugs live), then any value.
func (g *gen) integer(s *openapi3.Schema) int64 {
	lo, hi := intBounds(s)
	switch g.intn(5) {
	case 0:
		return lo
	case 1:
		return hi
	case 2:
		return min(lo+1, hi)
	case 3:
		if lo <= 0 && 0 <= hi {
			return 0
		}
	}
	span := uint64(hi - lo)
	if span == math.MaxUint64 {
		return lo + int64(g.r.Uint64()>>1)
	}
	return lo + int64(g.r.Uint64N(span+1))
}

func (g *gen) number(s *openapi3.Schema) float64 {
	lo, hi := -1e6, 1e6
	if s.Min != nil {
		lo = *s.Min
		hi = max(hi, lo+1e6)
	}
	if s.Max != nil {
		hi = *s.Max
		lo = min(lo, hi-1e6)
	}
	switch g.intn(5) {
	case 0:
		return lo
	case 1:
		return hi
	case 2:
		return math.Round(lo + (hi-lo)*g.r.Float64())
	}
	return lo + (hi-lo)*g.r.Float64()
}

// str draws a string of s's length range, from its pattern when it has one.
func (g *gen) str(s *openapi3.Schema) string {
	minLen, maxLen := 0, 24
	if s != nil {
		minLen = int(s.MinLength)
		if s.MaxLength != nil {
			maxLen = int(*s.MaxLength)
		} else if maxLen < minLen {
			maxLen = minLen + 24
		}
		if s.Pattern != "" {
			// A pattern bounds the length by itself (prq_ and 32 hex digits is 36).
			patternMax := maxLen
			if s.MaxLength == nil {
				patternMax = 1 << 16
			}
			if v, ok := g.fromPattern(s.Pattern, minLen, patternMax); ok {
				return v
			}
		}
	}
	n := minLen
	switch g.intn(4) {
	case 0:
		n = maxLen
	case 1:
		n = minLen
	default:
		n = minLen + g.intn(min(maxLen, minLen+30)-minLen+1)
	}
	var b strings.Builder
	for range n {
		b.WriteRune(g.textRune())
	}
	return b.String()
}

// textRune is mostly a letter or digit, sometimes punctuation, a space or a letter
// outside ASCII (é), since names and reasons are text.
func (g *gen) textRune() rune {
	switch g.intn(10) {
	case 0:
		return ' '
	case 1:
		return pick(g, []rune("-_.,'!?:/@#"))
	case 2:
		return pick(g, []rune("éüßñøλ中"))
	}
	return pick(g, []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
}

func (g *gen) ident() string {
	var b strings.Builder
	for range 3 + g.intn(6) {
		b.WriteByte("abcdefghijklmnopqrstuvwxyz"[g.intn(26)])
	}
	return b.String()
}

// fromPattern draws a string the regular expression matches, within the length range.
// An unanchored pattern may match inside a longer string, so some text is added
// around the match then.
func (g *gen) fromPattern(pattern string, minLen, maxLen int) (string, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	compiled, err := regexp.Compile(pattern)
	if err != nil {
		return "", false
	}
	anchored := strings.HasPrefix(pattern, "^")
	for range maxTries {
		var b strings.Builder
		g.walk(&b, re)
		s := b.String()
		if !anchored && g.chance(0.5) {
			s = g.ident() + s + g.ident()
		}
		if n := utf8.RuneCountInString(s); n >= minLen && n <= maxLen && compiled.MatchString(s) {
			return s, true
		}
	}
	return "", false
}

// walk writes one string the regexp node matches.
func (g *gen) walk(b *strings.Builder, re *syntax.Regexp) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		b.WriteRune(g.classRune(re.Rune))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteRune(g.textRune())
	case syntax.OpCapture:
		g.walk(b, re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			g.walk(b, s)
		}
	case syntax.OpAlternate:
		g.walk(b, pick(g, re.Sub))
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := re.Min, re.Max
		switch re.Op {
		case syntax.OpStar:
			lo, hi = 0, 4
		case syntax.OpPlus:
			lo, hi = 1, 5
		case syntax.OpQuest:
			lo, hi = 0, 1
		}
		if hi < 0 {
			hi = lo + 4
		}
		n := lo
		switch g.intn(3) {
		case 0:
			n = hi
		case 1:
			n = lo + g.intn(hi-lo+1)
		}
		for range n {
			g.walk(b, re.Sub[0])
		}
	}
	// Anchors, word boundaries and empty matches write nothing.
}

// classRune picks a rune of a character class (pairs lo, hi), preferring printable
// ASCII so that the values read like what a client sends.
func (g *gen) classRune(ranges []rune) rune {
	var ascii []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := max(ranges[i], 0x21); r <= min(ranges[i+1], 0x7e); r++ {
			ascii = append(ascii, r)
		}
	}
	if len(ascii) > 0 && g.chance(0.9) {
		return pick(g, ascii)
	}
	for range maxTries {
		i := 2 * g.intn(len(ranges)/2)
		lo, hi := ranges[i], min(ranges[i+1], 0x2fff)
		if hi < lo {
			continue
		}
		r := lo + rune(g.intn(int(hi-lo)+1))
		if utf8.ValidRune(r) && r >= 0x20 && r != 0x7f && (r < 0x80 || r >= 0xa0) {
			return r
		}
	}
	if len(ascii) > 0 {
		return pick(g, ascii)
	}
	return ranges[0]
}

// violations returns values that break s, each with what it breaks: the mutations a
// property-based tester makes (wrong type, out of bounds, bad pattern, not in the
// enum, unknown or missing property). Callers re-check each against the whole
// request, because a mutation may still satisfy the schema (e.g. null where null is
// allowed).
func (g *gen) violations(s *openapi3.Schema, valid any) []mutation {
	var out []mutation
	types := typesOf(s)
	for _, w := range []struct {
		typ string
		v   any
	}{{"string", "zz"}, {"integer", int64(7)}, {"number", 2.5}, {"boolean", true}, {"array", []any{}}, {"object", map[string]any{}}, {"null", nil}} {
		allowed := slicesContains(types, w.typ) || (w.typ == "integer" && slicesContains(types, "number"))
		if len(types) > 0 && !allowed {
			out = append(out, mutation{"wrong type " + w.typ, w.v})
		}
	}
	if s.Min != nil {
		out = append(out, mutation{"below minimum", *s.Min - 1})
	}
	if s.Max != nil {
		out = append(out, mutation{"above maximum", *s.Max + 1})
		if slicesContains(types, "integer") {
			out = append(out, mutation{"above maximum (int)", int64(*s.Max) + 1})
		}
	}
	if s.MaxLength != nil {
		out = append(out, mutation{"longer than maxLength", strings.Repeat("a", int(*s.MaxLength)+1)})
	}
	if s.MinLength > 0 {
		out = append(out, mutation{"shorter than minLength", strings.Repeat("a", int(s.MinLength)-1)})
	}
	if s.Pattern != "" {
		for _, bad := range []string{" ", "   ", "UPPER CASE", "a/b", "x", strings.Repeat("z", 90), "bad\tvalue", "é", ""} {
			out = append(out, mutation{"breaks pattern", bad})
		}
	}
	if len(s.Enum) > 0 || s.Const != nil {
		out = append(out, mutation{"not in enum", "zz-not-allowed"})
	}
	if obj, ok := valid.(map[string]any); ok {
		if ap := s.AdditionalProperties; ap.Has != nil && !*ap.Has {
			m := clone(obj)
			m["zz_unknown"] = 1
			out = append(out, mutation{"unknown property", m})
		}
		for _, r := range s.Required {
			m := clone(obj)
			delete(m, r)
			out = append(out, mutation{"missing required " + r, m})
		}
		for _, name := range sortedKeys(s.Properties) {
			p := s.Properties[name]
			if p.Value == nil {
				continue
			}
			for _, inner := range g.violations(p.Value, obj[name]) {
				m := clone(obj)
				m[name] = inner.value
				out = append(out, mutation{name + ": " + inner.what, m})
			}
		}
	}
	return out
}

// sortedKeys orders a schema's properties, so that a seed draws the same values
// whatever Go's map order.
func sortedKeys(m openapi3.Schemas) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type mutation struct {
	what  string
	value any
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
