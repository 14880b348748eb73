package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// InvokeOptions say what to invoke.
type InvokeOptions struct {
	Root, StateDir string
	// Function is a logical id (ApiFunction) or function directory name (api); empty
	// means the directory the event lives in (events/<function>/x.json).
	Function string
	// EventPath is the event file ("-" is stdin); Event, when set, is used instead.
	EventPath string
	Event     []byte
	// Log receives progress and, for a fresh stack, the functions' output (default
	// os.Stderr), so stdout keeps only the result.
	Log io.Writer
	// Fresh forces a fresh stack even when a devstack is running.
	Fresh bool
}

// Invoke runs one function with one event, the Docker-free twin of `sam local
// invoke`. With a devstack running for the state directory it invokes there, so state
// carries over between calls (step fixtures can be run in flow order); otherwise it
// starts a fresh stack seeded with the example tenants (no bulk data), invokes, and
// stops it. A function error is not a Go error: see InvokeResult.FunctionError.
func Invoke(ctx context.Context, opts InvokeOptions) (*InvokeResult, error) {
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	root, stateDir, err := resolveDirs(opts.Root, opts.StateDir)
	if err != nil {
		return nil, err
	}
	t, err := stack.LoadTemplate(root, nil)
	if err != nil {
		return nil, err
	}
	fnName := opts.Function
	if fnName == "" {
		if opts.EventPath == "" || opts.EventPath == "-" {
			return nil, errors.New("name the function (e.g. ApiFunction)")
		}
		fnName = filepath.Base(filepath.Dir(opts.EventPath))
	}
	fn, err := resolveFunction(t, fnName)
	if err != nil {
		return nil, err
	}
	payload := opts.Event
	if payload == nil {
		switch opts.EventPath {
		case "":
			payload = []byte("{}")
		case "-":
			payload, err = io.ReadAll(os.Stdin)
		default:
			payload, err = os.ReadFile(opts.EventPath)
		}
		if err != nil {
			return nil, fmt.Errorf("read event: %w", err)
		}
	}
	if !json.Valid(payload) {
		return nil, fmt.Errorf("event %s is not valid JSON", opts.EventPath)
	}

	if !opts.Fresh {
		ep, err := readEndpoints(ctx, stateDir)
		if err == nil {
			res, fnErr, err := invokeHTTP(ctx, ep.Lambda, fn, payload)
			if err != nil {
				return nil, err
			}
			return &InvokeResult{Payload: res, FunctionError: fnErr, Where: ep.Lambda}, nil
		}
		if !errors.Is(err, errNotRunning) {
			return nil, err
		}
	}

	fmt.Fprintf(opts.Log, "devstack: no devstack running for %s; starting a fresh stack (example tenants, no bulk data)\n", stateDir)
	start := time.Now()
	s, err := stack.Start(ctx, stack.Options{Root: root, Template: t, Log: &lockedWriter{w: opts.Log}})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Seed(ctx, false); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "devstack: stack ready in %s; invoking %s\n", time.Since(start).Round(10*time.Millisecond), fn)
	res, err := s.Lambda.Invoke(ctx, fn, payload)
	if err != nil {
		return nil, err
	}
	return &InvokeResult{Payload: res.Payload, FunctionError: res.FunctionError, Where: "fresh stack"}, nil
}

func cmdInvoke(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o InvokeOptions
	fs.BoolVar(&o.Fresh, "fresh", false, "always start a fresh stack, even if a devstack is running")
	fs.StringVar(&o.StateDir, "state-dir", "", "state directory of the running devstack (default .devstack at the repository root)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: devstack invoke [FunctionLogicalId] <event.json | ->\n"+
			"       make invoke FN=ApiFunction EVENT=events/api/get-tenant.json\n\n"+
			"Runs one function with one event and prints its result on stdout: the payload, or on a\n"+
			"function error the error document (exit code 1). Uses the running devstack when there is\n"+
			"one (state carries over); otherwise starts a fresh seeded stack for this one call.\n"+
			"Without a function name, the function is the event's directory (events/<function>/).\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	switch len(pos) {
	case 1:
		o.EventPath = pos[0]
	case 2:
		o.Function, o.EventPath = pos[0], pos[1]
	default:
		fs.Usage()
		return 2
	}
	o.Log = stderr
	ctx, stop := signalContext()
	defer stop()
	res, err := Invoke(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "devstack invoke: %v\n", err)
		return 1
	}
	return printResult(res, stdout, stderr)
}

// signalContext ends on SIGINT or SIGTERM, so deferred cleanup (stopping a fresh
// stack) runs.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func jsonIndent(dst *bytes.Buffer, src []byte) error {
	return json.Indent(dst, bytes.TrimSpace(src), "", "  ")
}
