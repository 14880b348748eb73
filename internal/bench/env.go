package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// Env holds what sections share, each thing started on first use and stopped by
// Close: a section that needs nothing costs nothing, and two sections that need the
// local stack pay for one start.
type Env struct {
	// Root is the repository root.
	Root string
	// Log receives the output of the stacks' services and functions (a file: the
	// table must stay readable).
	Log io.Writer
	// Progress receives one line per step of a section, so a long run shows where it is.
	Progress io.Writer

	mu         sync.Mutex
	tpl        *samtemplate.Template
	bootstraps string
	shared     *stack.Stack
	sharedErr  error
	closers    []func()

	valuesMu sync.Mutex
	values   map[string]any
}

// Value returns what a section of this run stored under key (SetValue), so sections
// can share a baseline measured once, or compare with another's figures when both run.
func (e *Env) Value(key string) (any, bool) {
	e.valuesMu.Lock()
	defer e.valuesMu.Unlock()
	v, ok := e.values[key]
	return v, ok
}

// SetValue stores v under key for the sections after this one.
func (e *Env) SetValue(key string, v any) {
	e.valuesMu.Lock()
	defer e.valuesMu.Unlock()
	if e.values == nil {
		e.values = map[string]any{}
	}
	e.values[key] = v
}

// NewEnv returns an Env for the repository at root; log and progress may be nil
// (discarded).
func NewEnv(root string, log, progress io.Writer) *Env {
	if log == nil {
		log = io.Discard
	}
	if progress == nil {
		progress = io.Discard
	}
	return &Env{Root: root, Log: log, Progress: progress}
}

// Logf writes one progress line.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.Progress, "[bench] "+format+"\n", args...)
}

// Template returns template.yaml resolved with the local stack's parameters, the
// same template the stack runs.
func (e *Env) Template() (*samtemplate.Template, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.template()
}

func (e *Env) template() (*samtemplate.Template, error) {
	if e.tpl == nil {
		tpl, err := stack.LoadTemplate(e.Root, nil)
		if err != nil {
			return nil, err
		}
		e.tpl = tpl
	}
	return e.tpl, nil
}

// Bootstraps returns the directory holding every function's bootstrap built for this
// machine (<dir>/<LogicalId>/bootstrap), exactly as the local stack runs them. The
// build is cached by source hash in the tool cache, shared with `make dev` and the
// tests, so an unchanged tree builds nothing.
func (e *Env) Bootstraps(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bootstrapDir(ctx)
}

func (e *Env) bootstrapDir(ctx context.Context) (string, error) {
	if e.bootstraps != "" {
		return e.bootstraps, nil
	}
	tpl, err := e.template()
	if err != nil {
		return "", err
	}
	fns, err := tpl.Functions()
	if err != nil {
		return "", err
	}
	cache, err := lambdasvc.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	start := time.Now()
	dir, err := lambdasvc.Builder{Root: e.Root, Log: e.Log}.BuildCached(ctx, fns, cache)
	if err != nil {
		return "", err
	}
	e.Logf("bootstraps ready in %s", time.Since(start).Round(time.Millisecond))
	e.bootstraps = dir
	return dir, nil
}

// Stack returns the shared local stack, started on first use and seeded with the
// example tenants (stack.Seed without their data items). Sections may read it and
// add their own items under their own ids; a section that needs a table nobody else
// sees (or fills it with a lot) starts its own with StartStack. A failed start is
// remembered: the sections after it fail at once instead of waiting for it again.
func (e *Env) Stack(ctx context.Context) (*stack.Stack, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shared != nil || e.sharedErr != nil {
		return e.shared, e.sharedErr
	}
	s, err := e.startStack(ctx)
	if err == nil {
		if err = s.Seed(ctx, false); err != nil {
			s.Close()
		}
	}
	if err != nil {
		e.sharedErr = fmt.Errorf("start the local stack: %w", err)
		return nil, e.sharedErr
	}
	e.shared = s
	e.closers = append(e.closers, s.Close)
	return s, nil
}

// StartStack starts a private, unseeded local stack. The caller closes it when done
// (Close stops it too, should the section fail first).
func (e *Env) StartStack(ctx context.Context) (*stack.Stack, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.startStack(ctx)
	if err != nil {
		return nil, fmt.Errorf("start a local stack: %w", err)
	}
	e.closers = append(e.closers, s.Close) // Stack.Close is idempotent
	return s, nil
}

// StartStackWith is StartStack with template parameters overridden (e.g. a section
// that needs another part size). The caller closes it when done.
func (e *Env) StartStackWith(ctx context.Context, params map[string]string) (*stack.Stack, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tpl, err := stack.LoadTemplate(e.Root, params)
	if err != nil {
		return nil, err
	}
	s, err := e.startStackFrom(ctx, tpl)
	if err != nil {
		return nil, fmt.Errorf("start a local stack: %w", err)
	}
	e.closers = append(e.closers, s.Close)
	return s, nil
}

func (e *Env) startStack(ctx context.Context) (*stack.Stack, error) {
	tpl, err := e.template()
	if err != nil {
		return nil, err
	}
	return e.startStackFrom(ctx, tpl)
}

func (e *Env) startStackFrom(ctx context.Context, tpl *samtemplate.Template) (*stack.Stack, error) {
	dir, err := e.bootstrapDir(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	s, err := stack.Start(ctx, stack.Options{Root: e.Root, Template: tpl, Log: e.Log,
		Bootstraps: func(context.Context) (string, error) { return dir, nil }})
	if err != nil {
		return nil, err
	}
	e.Logf("local stack up in %s", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// OnClose registers f to run at Close (newest first), for whatever a section starts
// that must not outlive the run.
func (e *Env) OnClose(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, f)
}

// Close stops everything the Env and its sections started, newest first.
func (e *Env) Close() {
	e.mu.Lock()
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// setenv sets environment variables of this process and returns what restores them:
// the in-process sections build a function's dependencies with the function's own
// wiring code, which reads its configuration from the environment.
func setenv(vars map[string]string) (restore func()) {
	type old struct {
		value string
		set   bool
	}
	saved := map[string]old{}
	for k, v := range vars {
		prev, ok := os.LookupEnv(k)
		saved[k] = old{prev, ok}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.set {
				os.Setenv(k, o.value)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}
