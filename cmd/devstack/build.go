package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

// buildBootstraps returns the directory of the functions' bootstraps, built for this
// machine and cached by source hash (lambdasvc.BuildCached, as the stack would build
// them). On a cache miss it first compiles every function package in ONE go build:
// the per-function builds (one `make build-<LogicalId>` each, as sam runs them) are
// separate go processes that would otherwise each compile the whole dependency graph
// (the AWS SDK) at the same time on a cold Go cache — measured 97 s for the first two
// of them, where one shared compile lets every function build just link.
func buildBootstraps(ctx context.Context, root string, fns []samtemplate.Function, log io.Writer) (dir, note string, err error) {
	cacheDir, err := lambdasvc.DefaultCacheDir()
	if err != nil {
		return "", "", err
	}
	goarch := runtime.GOARCH // the Builder's default: bootstraps run on this machine
	hash, err := lambdasvc.SourceHash(root, fns, goarch)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(cacheDir, hash, ".complete")); err == nil {
		dir, err = lambdasvc.BuildCached(ctx, root, fns, cacheDir)
		return dir, fmt.Sprintf("%d functions, unchanged: cached in %s", len(fns), dir), err
	}
	t0 := time.Now()
	if err := compileFunctions(ctx, root, fns, goarch); err != nil {
		// Not fatal: the real build below reports the compiler's errors per function.
		fmt.Fprintf(log, "[build] shared compile failed, building each function on its own: %v\n", err)
	}
	compile := time.Since(t0)
	b := lambdasvc.Builder{Root: root, Log: prefixWriter(log, "[build] ")}
	if dir, err = b.BuildCached(ctx, fns, cacheDir); err != nil {
		return "", "", err
	}
	return dir, fmt.Sprintf("%d functions: compile %s, link %s, cached in %s", len(fns),
		compile.Round(10*time.Millisecond), (time.Since(t0) - compile).Round(10*time.Millisecond), dir), nil
}

// compileFunctions compiles (without linking) every function package with the flags of
// the Makefile's build-% target, filling the Go build cache those builds read.
func compileFunctions(ctx context.Context, root string, fns []samtemplate.Function, goarch string) error {
	var pkgs []string
	for _, f := range fns {
		var dir string
		switch f.BuildMethod {
		case "makefile":
			dir = filepath.Join("functions", kebab(f.LogicalID)) // the Makefile's function_dir
		case "go1.x":
			dir = f.CodeURI
		}
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, dir)); err == nil {
			pkgs = append(pkgs, "./"+filepath.ToSlash(filepath.Clean(dir)))
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	// `go list -export` compiles every package (export data and object, the same cache
	// entries go build uses) without linking; `go build` of several main packages would
	// link each one only to discard it (measured: 7 s of a 10 s warm-cache compile).
	args := append([]string{"list", "-export", "-deps", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v\n%s", err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
