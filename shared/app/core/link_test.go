package core_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/app/core"
)

// linked is one SDK service or Stripe part whose package inits a function pays for at
// every cold start: it must be in a function's graph exactly when the function's Needs
// use it. A wiring package that imports an adapter some of its functions do not need,
// or a domain package that imports an SDK service again, fails here; so does a main.go
// that forgets an adapter its Needs require (which would stop its cold start).
type linked struct {
	what  string
	has   func(pkg string) bool
	needs func(n core.Needs) bool
}

const (
	module     = "github.com/tenantflow/tenantflow"
	sdkService = "github.com/aws/aws-sdk-go-v2/service/"
	stripeGo   = "github.com/stripe/stripe-go/v76"
)

// under reports pkg is path or one of its subpackages.
func under(path string) func(string) bool {
	return func(pkg string) bool { return pkg == path || strings.HasPrefix(pkg, path+"/") }
}

var linkedParts = []linked{
	{"the Step Functions client", under(sdkService + "sfn"), core.Needs.StepFunctions},
	{"the EventBridge client", under(sdkService + "eventbridge"), func(n core.Needs) bool { return n.Events }},
	{"the S3 client", under(sdkService + "s3"), core.Needs.S3},
	{"the Secrets Manager client", under(sdkService + "secretsmanager"), core.Needs.SecretsManager},
	// stripe-go itself: the billing adapter, and the webhook's signature check and
	// event types.
	{"stripe-go", func(pkg string) bool { return pkg == stripeGo },
		func(n core.Needs) bool { return n.Stripe || n.WebhookSecret }},
	// stripe-go's resource packages (customer, subscription, ...): the billing adapter
	// only.
	{"a stripe-go resource package", func(pkg string) bool {
		rest, ok := strings.CutPrefix(pkg, stripeGo+"/")
		return ok && rest != "form" && rest != "webhook"
	}, func(n core.Needs) bool { return n.Stripe }},
	// stripe-go's client package links every resource of the Stripe API (~150
	// packages); the adapter uses the resource packages it calls.
	{"stripe-go's client package", under(stripeGo + "/client"), func(core.Needs) bool { return false }},
}

// TestFunctionsLinkWhatTheirNeedsUse builds the dependency graph of every function
// (go list -deps, with the flags of the Makefile's build-% target) and checks that it
// links each SDK service and Stripe part exactly when its Needs use it.
func TestFunctionsLinkWhatTheirNeedsUse(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	dirs := functionDirs(t, root)
	// .Deps is every package a function's binary links, transitively.
	cmd := exec.Command("go", "list", "-tags", "lambda.norpc", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./functions/...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("go list: %v\n%s", err, ee.Stderr)
	} else if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{} // function import path -> what it links
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		deps[fields[0]] = fields[1:]
	}
	ids := slices.Sorted(maps.Keys(dirs))
	for _, id := range ids {
		dir := dirs[id]
		pkg := module + "/" + filepath.ToSlash(dir)
		graph, ok := deps[pkg]
		if !ok || len(graph) < 20 {
			t.Errorf("go list printed no dependency graph for %s (%d packages)", pkg, len(graph))
			continue
		}
		n := core.Wirings[id]
		for _, part := range linkedParts {
			i := slices.IndexFunc(graph, part.has)
			switch {
			case i >= 0 && !part.needs(n):
				t.Errorf("%s (%s) links %s (%s) but its Needs do not use it; see who imports it: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./%s",
					id, dir, part.what, graph[i], filepath.ToSlash(dir))
			case i < 0 && part.needs(n):
				t.Errorf("%s (%s) does not link %s, which its Needs use: its main.go passes no adapter for it (its cold start would stop)", id, dir, part.what)
			}
		}
	}
}

// functionDirs maps each function of Wirings to its directory (functions/<name>): the
// one whose main.go names its logical id.
func functionDirs(t *testing.T, root string) map[string]string {
	t.Helper()
	mains, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	if err != nil || len(mains) == 0 {
		t.Fatalf("no functions/*/main.go under %s (%v)", root, err)
	}
	dirs := map[string]string{}
	for _, m := range mains {
		src, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(root, filepath.Dir(m))
		if err != nil {
			t.Fatal(err)
		}
		for id := range core.Wirings {
			if strings.Contains(string(src), strconv.Quote(id)) {
				if prev, ok := dirs[id]; ok {
					t.Errorf("%s is named by both %s and %s", id, prev, rel)
				}
				dirs[id] = rel
			}
		}
	}
	for id := range core.Wirings {
		if _, ok := dirs[id]; !ok {
			t.Errorf("no functions/*/main.go names %s", id)
		}
	}
	return dirs
}
