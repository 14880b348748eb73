package lambdasvc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

// Builder builds function bootstraps the way `sam build` does for this project:
// BuildMethod makefile runs `make build-<LogicalId> ARTIFACTS_DIR=<dir>/<LogicalId>
// LAMBDA_GOARCH=<arch>` in Root; BuildMethod go1.x runs `go build` on CodeUri.
// Binaries are built for the host architecture because they run on this machine.
type Builder struct {
	// Root is the directory make (or go build) runs in: the repository root.
	Root string
	// Parallel bounds concurrent builds (default 2: each go build is itself parallel).
	Parallel int
	// GOARCH is passed as LAMBDA_GOARCH (default runtime.GOARCH).
	GOARCH string
	// Log receives one progress line per function (optional).
	Log io.Writer
}

// BuildAll builds every function of fns into dir/<LogicalId>/bootstrap.
func BuildAll(ctx context.Context, root string, fns []samtemplate.Function, dir string) error {
	return Builder{Root: root}.Build(ctx, fns, dir)
}

// BuildCached builds into cacheDir/<SourceHash> unless that build already exists,
// and returns the directory. Test packages that each need the bootstraps share one
// build this way, and `make dev` restarts skip the build when nothing changed.
func BuildCached(ctx context.Context, root string, fns []samtemplate.Function, cacheDir string) (string, error) {
	return Builder{Root: root}.BuildCached(ctx, fns, cacheDir)
}

// DefaultCacheDir is where builds are cached when the caller has no preference:
// $TENANTFLOW_TOOLS/lambda-builds, else <user cache dir>/tenantflow/lambda-builds —
// outside the repository so `sam build` never copies it.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("TENANTFLOW_TOOLS"); d != "" {
		return filepath.Join(d, "lambda-builds"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "tenantflow", "lambda-builds"), nil
}

// BuildError is a failed function build, with the build's combined output.
type BuildError struct {
	LogicalID string
	Command   string
	Err       error
	Output    string
}

// Error renders the failure followed by the build output.
func (e *BuildError) Error() string {
	return fmt.Sprintf("build %s: %s: %v\n%s", e.LogicalID, e.Command, e.Err, strings.TrimRight(e.Output, "\n"))
}

// Unwrap returns the command error (an *exec.ExitError or ctx.Err()).
func (e *BuildError) Unwrap() error { return e.Err }

func (b Builder) goarch() string {
	if b.GOARCH != "" {
		return b.GOARCH
	}
	return runtime.GOARCH
}

// Build builds every function into dir/<LogicalId>/bootstrap. All builds run (up
// to Parallel at a time) even if one fails, so one run reports every broken function.
func (b Builder) Build(ctx context.Context, fns []samtemplate.Function, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	parallel := b.Parallel
	if parallel <= 0 {
		parallel = 2
	}
	sem := make(chan struct{}, parallel)
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			errs[i] = b.buildOne(ctx, f, filepath.Join(dir, f.LogicalID))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (b Builder) buildOne(ctx context.Context, f samtemplate.Function, out string) error {
	start := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var cmd *exec.Cmd
	switch f.BuildMethod {
	case "makefile":
		cmd = exec.CommandContext(ctx, "make", "build-"+f.LogicalID, "ARTIFACTS_DIR="+out, "LAMBDA_GOARCH="+b.goarch())
		// A parent make (e.g. `make test` running go test) exports its jobserver
		// flags; the child must not try to use that jobserver.
		cmd.Env = withoutEnv(os.Environ(), "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
	case "go1.x":
		if f.CodeURI == "" {
			return &BuildError{LogicalID: f.LogicalID, Command: "go build", Err: errors.New("BuildMethod go1.x needs a CodeUri path")}
		}
		cmd = exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", filepath.Join(out, "bootstrap"), "./"+filepath.ToSlash(filepath.Clean(f.CodeURI)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+b.goarch())
	default:
		return &BuildError{LogicalID: f.LogicalID, Command: "build", Err: fmt.Errorf("unsupported BuildMethod %q (want makefile or go1.x)", f.BuildMethod)}
	}
	cmd.Dir = b.Root
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	// make runs go which runs compilers: cancel the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	command := strings.Join(cmd.Args, " ")
	if err := cmd.Run(); err != nil {
		return &BuildError{LogicalID: f.LogicalID, Command: command, Err: err, Output: output.String()}
	}
	if fi, err := os.Stat(filepath.Join(out, "bootstrap")); err != nil || fi.Mode()&0o111 == 0 {
		return &BuildError{LogicalID: f.LogicalID, Command: command, Err: errors.New("no executable bootstrap produced in " + out), Output: output.String()}
	}
	if b.Log != nil {
		fmt.Fprintf(b.Log, "built %s in %s\n", f.LogicalID, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// BuildCached is the Builder form of the BuildCached function.
func (b Builder) BuildCached(ctx context.Context, fns []samtemplate.Function, cacheDir string) (string, error) {
	hash, err := SourceHash(b.Root, fns, b.goarch())
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, hash)
	if complete(dir) {
		touch(dir)
		return dir, nil
	}
	// Serialise builders of the same hash across processes (go test runs packages
	// in parallel): the second waits, then finds the finished build.
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(dir) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cacheDir, hash+".tmp-")
	if err != nil {
		return "", err
	}
	if err := b.Build(ctx, fns, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(hash+"\n"), 0o644); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	os.RemoveAll(dir) // an incomplete leftover of a killed run
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	pruneCache(cacheDir, 4)
	return dir, nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".complete"))
	return err == nil
}

func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

// pruneCache keeps the keep most recently used builds; older ones are sources
// that no longer exist.
func pruneCache(cacheDir string, keep int) {
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return
	}
	type build struct {
		path string
		mod  time.Time
	}
	var builds []build
	for _, e := range entries {
		if !e.IsDir() || strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			builds = append(builds, build{filepath.Join(cacheDir, e.Name()), fi.ModTime()})
		}
	}
	sort.Slice(builds, func(i, j int) bool { return builds[i].mod.After(builds[j].mod) })
	for i := keep; i < len(builds); i++ {
		os.RemoveAll(builds[i].path)
		os.Remove(builds[i].path + ".lock")
	}
}

// lockFile takes an exclusive flock, polling so that ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SourceHash is a content hash of everything that can change a bootstrap: every
// file under root except tests, Markdown and directories that never feed a build
// (hidden ones such as .git and .aws-sam, node_modules, testdata, and the local
// stack itself: cmd/, internal/localstack/ and internal/bench/, which no function
// imports), plus the Go toolchain, the target architecture and the functions' build
// settings. Content, not mtimes: a fresh clone or a `git checkout` back and forth hits
// the cache.
func SourceHash(root string, fns []samtemplate.Function, goarch string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "toolchain %s %s/%s\n", runtime.Version(), runtime.GOOS, goarch)
	for _, f := range fns {
		fmt.Fprintf(h, "function %s %s %s\n", f.LogicalID, f.BuildMethod, f.CodeURI)
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			if rel, _ := filepath.Rel(root, path); localStackDirs[filepath.ToSlash(rel)] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, ".md") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "file %s %x\n", filepath.ToSlash(rel), sum)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// localStackDirs hold the local runtime, the benchmark harness and their tests; a
// function never imports them (shared/ production code stays free of them), so editing
// them rebuilds no bootstrap.
var localStackDirs = map[string]bool{"cmd": true, "internal/localstack": true, "internal/bench": true}

func withoutEnv(env []string, keys ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, key := range keys {
			if k == key {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
