package lambdasvc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

func TestBuildReportsEveryFailure(t *testing.T) {
	t.Parallel()
	fns := []samtemplate.Function{
		{LogicalID: "BrokenFunction", BuildMethod: "makefile"},  // compile error
		{LogicalID: "MissingFunction", BuildMethod: "makefile"}, // no functions/missing
		{LogicalID: "OddFunction", BuildMethod: "esbuild"},
	}
	err := BuildAll(context.Background(), fixtureRoot, fns, t.TempDir())
	if err == nil {
		t.Fatal("build succeeded")
	}
	msg := err.Error()
	for _, want := range []string{
		"build BrokenFunction: make build-BrokenFunction ARTIFACTS_DIR=",
		`cannot use "not a number"`, // the compiler's output is in the error
		"build MissingFunction",
		"no directory functions/missing for LogicalId MissingFunction",
		`unsupported BuildMethod "esbuild"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	var be *BuildError
	if !errors.As(err, &be) {
		t.Errorf("%T is not a *BuildError", err)
	}
}

func TestBuildGo1x(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fn := samtemplate.Function{LogicalID: "EchoViaGo", BuildMethod: "go1.x", CodeURI: "functions/echo", Handler: "bootstrap", Timeout: 3}
	if err := BuildAll(context.Background(), fixtureRoot, []samtemplate.Function{fn}, dir); err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Config{Functions: []samtemplate.Function{fn}, BuildDir: dir, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Invoke(context.Background(), "EchoViaGo", []byte(`{"mode":"echo","k":1}`))
	if err != nil || string(res.Payload) != `{"mode":"echo","k":1}` {
		t.Fatalf("%v %s", err, res.Payload)
	}
}

func TestBuildCachedReusesBuilds(t *testing.T) {
	t.Parallel()
	_, fns := fixture(t)
	fns = fns[:1]
	cache := t.TempDir()
	ctx := context.Background()

	// Two concurrent callers (like two test packages): one builds, one waits.
	var wg sync.WaitGroup
	dirs := make([]string, 2)
	errs := make([]error, 2)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = BuildCached(ctx, fixtureRoot, fns, cache)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || dirs[0] != dirs[1] {
		t.Fatalf("BuildCached: %v %v %q %q", errs[0], errs[1], dirs[0], dirs[1])
	}
	bootstrap := filepath.Join(dirs[0], fns[0].LogicalID, "bootstrap")
	fi, err := os.Stat(bootstrap)
	if err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	dir, err := BuildCached(ctx, fixtureRoot, fns, cache)
	if err != nil || dir != dirs[0] {
		t.Fatalf("%v %s", err, dir)
	}
	if took := time.Since(begin); took > 500*time.Millisecond {
		t.Errorf("cache hit took %s", took)
	}
	if fi2, _ := os.Stat(bootstrap); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("cache hit rebuilt the bootstrap")
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestSourceHash(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("functions/api/main.go", "package main\n")
	write("shared/tenant/tenant.go", "package tenant\n")
	fns := []samtemplate.Function{{LogicalID: "ApiFunction", BuildMethod: "makefile"}}
	hash := func() string {
		t.Helper()
		h, err := SourceHash(root, fns, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash()
	if hash() != base {
		t.Fatal("hash not stable")
	}
	// Changes that cannot affect a bootstrap keep the hash.
	write("shared/tenant/tenant_test.go", "package tenant\n")
	write("README.md", "docs\n")
	write(".git/HEAD", "ref\n")
	write(".aws-sam/build/x", "artifact\n")
	write("internal/localstack/lambdasvc/testdata/repo/x.go", "package main\n")
	write("internal/localstack/stack/stack.go", "package stack\n")
	write("cmd/devstack/main.go", "package main\n")
	write("tools/node_modules/x/index.js", "x\n")
	if hash() != base {
		t.Error("hash changed for files that do not feed the build")
	}
	// Changes that can.
	for _, change := range []func(){
		func() { write("shared/tenant/tenant.go", "package tenant // edited\n") },
		func() { write("Makefile", "build-%:\n") },
		func() { write("go.sum", "x\n") },
		func() { fns = append(fns, samtemplate.Function{LogicalID: "Other", BuildMethod: "makefile"}) },
	} {
		before := hash()
		change()
		if hash() == before {
			t.Error("hash unchanged after a relevant change")
		}
	}
	if h, _ := SourceHash(root, fns, "arm64"); h == hash() {
		t.Error("architecture not part of the hash")
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	w := newLineWriter(&logSink{w: out}, "[F] ")
	for _, chunk := range []string{"he", "llo\nwor", "ld\n\nlast"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); got != "[F] hello\n[F] world\n[F] \n" {
		t.Errorf("before flush %q", got)
	}
	w.flush()
	if got := out.String(); got != "[F] hello\n[F] world\n[F] \n[F] last\n" {
		t.Errorf("after flush %q", got)
	}
	// A runaway line without newline is emitted once it reaches maxLine instead of
	// growing the buffer forever.
	long := strings.Repeat("y", maxLine+10)
	_, _ = w.Write([]byte(long))
	if got := out.String(); !strings.HasSuffix(got, "[F] "+long+"\n") {
		t.Errorf("long line not emitted before a newline (%d bytes logged)", len(got))
	}
}

// TestProjectFunctionsBuild builds every function of the project's template.yaml
// through the real Makefile's build-% target into the shared build cache (the same
// cache the local stack uses, so this costs nothing when the stack tests built it).
func TestProjectFunctionsBuild(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if !fileExists(filepath.Join(root, "template.yaml")) || !fileExists(filepath.Join(root, "Makefile")) {
		t.Fatal("the repository has no template.yaml or Makefile")
	}
	t.Parallel()
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	begin := time.Now()
	dir, err := BuildCached(ctx, root, fns, cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d functions ready in %s (%s)", len(fns), time.Since(begin).Round(time.Millisecond), dir)
	for _, f := range fns {
		if !fileExists(filepath.Join(dir, f.LogicalID, "bootstrap")) {
			t.Errorf("%s: no bootstrap", f.LogicalID)
		}
	}
}

// TestFunctionsNeverImportTheLocalStack keeps the arrow one way: the local runtime
// (cmd/, internal/localstack/) builds and runs the functions, internal/bench measures
// them, and no function's dependency graph reaches back into either. SourceHash relies
// on this to skip those trees.
func TestFunctionsNeverImportTheLocalStack(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tenantflow/tenantflow/functions/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 20 {
		t.Fatalf("go list printed %d packages, expected the functions' whole graph", len(pkgs))
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p, "github.com/tenantflow/tenantflow/internal/localstack") || strings.HasPrefix(p, "github.com/tenantflow/tenantflow/internal/bench") ||
			strings.HasPrefix(p, "github.com/tenantflow/tenantflow/cmd/") {
			t.Errorf("a function depends on %s (local stack code must not be deployed)", p)
		}
	}
}
