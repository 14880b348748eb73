package apifuzz

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(testenv.RepoRoot(), "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestPatternStrings: every string drawn from a pattern matches it and keeps the
// length bounds.
func TestPatternStrings(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	for _, c := range []struct {
		pattern  string
		min, max int
	}{
		{`^[a-z0-9][a-z0-9_-]{2,63}$`, 0, 64},
		{`^op_[a-z0-9_]{1,77}$`, 0, 80},
		{`^[\x20-\x7E]+$`, 1, 255},
		{`\S`, 1, 200},
		{`^$|^[^\x00-\x20\x7f"(),.:;<>@\[\\\]]+([.][^\x00-\x20\x7f"(),.:;<>@\[\\\]]+)*@[^\x00-\x20\x7f"(),.:;<>@\[\\\]]+([.][^\x00-\x20\x7f"(),.:;<>@\[\\\]]+)*$`, 0, 254},
	} {
		re := regexp.MustCompile(c.pattern)
		for range 200 {
			s, ok := g.fromPattern(c.pattern, c.min, c.max)
			if !ok {
				t.Fatalf("%s: no string", c.pattern)
			}
			if !re.MatchString(s) {
				t.Fatalf("%s: %q does not match", c.pattern, s)
			}
		}
	}
}

// TestBodiesOfTheSpec: for every request body of openapi.yaml, the positives validate
// and every mutation that is kept as a negative does not; the same seed draws the
// same values.
func TestBodiesOfTheSpec(t *testing.T) {
	doc := loadSpec(t)
	draw := func(seed uint64) []string {
		g := &gen{r: rand.New(rand.NewPCG(seed, seed))}
		var out []string
		for _, o := range operations(doc) {
			rb := o.op.RequestBody
			if rb == nil || rb.Value == nil || rb.Value.Content.Get("application/json") == nil {
				continue
			}
			s := rb.Value.Content.Get("application/json").Schema.Value
			for range 10 {
				v, ok := g.positive(s)
				if !ok {
					t.Fatalf("%s: no positive body", o.key)
				}
				if !valid(s, v) {
					t.Fatalf("%s: positive %v is invalid", o.key, v)
				}
				b, _ := json.Marshal(v)
				out = append(out, string(b))
				negatives := 0
				for _, m := range g.violations(s, v) {
					if !valid(s, m.value) {
						negatives++
					}
				}
				if negatives == 0 {
					t.Fatalf("%s: no mutation of %s breaks the schema", o.key, b)
				}
			}
		}
		return out
	}
	a, b := draw(7), draw(7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed drew different bodies")
	}
	if reflect.DeepEqual(a, draw(8)) {
		t.Fatal("another seed drew the same bodies")
	}
}

// TestCasesAreLabelledBySpec: each case makeCase returns is valid for the spec when
// positive and invalid when negative (the request-validation label), for every
// operation; and the pools name the right path parameters.
func TestCasesAreLabelledBySpec(t *testing.T) {
	doc := loadSpec(t)
	r := &runner{cfg: Config{Spec: doc}, g: &gen{r: rand.New(rand.NewPCG(3, 4))}, pools: map[string][]string{"tenant_id": {"tenant_acme"}}}
	keys := map[string]string{}
	for _, o := range operations(doc) {
		for _, p := range o.params {
			if p.In == openapi3.ParameterInPath {
				keys[o.key+" "+p.Name] = o.poolKey(p)
			}
		}
		for i := range 20 {
			c, err := r.makeCase(o, i%2 == 0)
			if err != nil {
				if i%2 == 1 {
					continue // an operation without parameters or body has no negative
				}
				t.Fatalf("%s: %v", o.key, err)
			}
			if got := r.validate(o, c) == nil; got != c.Positive {
				t.Fatalf("%s: case labelled positive=%v but validates=%v: %s", o.key, c.Positive, got, c)
			}
		}
	}
	for k, want := range map[string]string{
		"GET /tenants/{id} id":                            "tenant_id",
		"GET /operations/{id} id":                         "operation_id",
		"GET /tenants/{id}/exports/{export_id} export_id": "export_id",
	} {
		if keys[k] != want {
			t.Errorf("pool of %s = %q, want %q", k, keys[k], want)
		}
	}
}
