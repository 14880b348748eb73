// Package tenantctl is the tenantctl command (cmd/tenantctl): tenantflow's HTTP API
// for operators and CI scripts, on the Go client of package client. It is a package
// rather than cmd/tenantctl's main so that tests run it in-process against a local
// stack (cmd/devstack's walkthrough test). docs/cli.md describes every command.
package tenantctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/client"
)

// Exit codes (docs/cli.md).
const (
	ExitOK = 0
	// ExitError: the API refused the request (a problem answer), or it could not be
	// reached, or a local file could not be read or written.
	ExitError = 1
	// ExitUsage: the command line is wrong.
	ExitUsage = 2
	// ExitFailed: the operation or export waited for ended FAILED.
	ExitFailed = 3
	// ExitVerify: the downloaded export is not the file the API described (sha256).
	ExitVerify = 4
	// ExitTimeout: --timeout passed (or Ctrl-C) before the wait ended; the operation
	// goes on.
	ExitTimeout = 5
)

// globals are the flags every command takes, before or after the command.
type globals struct {
	endpoint  string
	token     string
	tokenSet  bool
	tokenFile string
	output    string
	quiet     bool
	timeout   time.Duration
	progress  string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.endpoint, "endpoint", g.endpoint, "API base URL (default $TENANTFLOW_ENDPOINT, a running make dev's, or "+client.DefaultEndpoint+")")
	fs.Func("token", "bearer token (default $TENANTFLOW_TOKEN, or make dev's operator token for a local endpoint)", func(s string) error {
		g.token, g.tokenSet = s, true
		return nil
	})
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "read the bearer token from this file")
	fs.StringVar(&g.output, "output", g.output, "table or json")
	fs.StringVar(&g.output, "o", g.output, "short for --output")
	fs.BoolVar(&g.quiet, "quiet", g.quiet, "print only the id (operation, export or tenant) of the answer")
	fs.BoolVar(&g.quiet, "q", g.quiet, "short for --quiet")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up waiting after this long (0: no limit; the operation goes on)")
	fs.StringVar(&g.progress, "progress", g.progress, "progress display on stderr while waiting: auto, lines or none")
}

// usageError is a wrong command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// cli is one run of the command.
type cli struct {
	g      globals
	env    Env
	stdout io.Writer
	stderr io.Writer
	c      *client.Client
	conn   *connection
	f      opts
}

// command is one subcommand: its flags and what it does with its arguments.
type command struct {
	name, args, summary string
	flags               func(*flag.FlagSet, *opts)
	run                 func(ctx context.Context, x *cli, args []string) error
	// nargs is the number of positional arguments (-1: any).
	nargs int
}

// Main runs tenantctl with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	x := &cli{env: env, stdout: stdout, stderr: stderr, g: globals{output: "table", progress: "auto"}}
	top := flag.NewFlagSet("tenantctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	x.g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return ExitOK
		}
		fmt.Fprintf(stderr, "tenantctl: %v\n\n", err)
		printUsage(stderr)
		return ExitUsage
	}
	rest := top.Args()
	if len(rest) == 0 || rest[0] == "help" {
		if len(rest) > 1 {
			if cmd := lookup(rest[1:]); cmd != nil {
				cmdUsage(stdout, cmd, nil)
				return ExitOK
			}
		}
		printUsage(stdout)
		if len(rest) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	cmd, consumed := lookupPrefix(rest)
	if cmd == nil {
		fmt.Fprintf(stderr, "tenantctl: unknown command %q\n\n", strings.Join(rest[:min(2, len(rest))], " "))
		printUsage(stderr)
		return ExitUsage
	}
	fs := flag.NewFlagSet("tenantctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	x.g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs, &x.f)
	}
	pos, err := parseInterleaved(fs, rest[consumed:])
	if errors.Is(err, flag.ErrHelp) {
		cmdUsage(stdout, cmd, fs)
		return ExitOK
	}
	if err == nil && cmd.nargs >= 0 && len(pos) != cmd.nargs {
		err = usagef("%s takes %s", cmd.name, orNone(cmd.args))
	}
	if err == nil && x.g.output != "table" && x.g.output != "json" {
		err = usagef("--output %q: want table or json", x.g.output)
	}
	if err == nil && x.g.progress != "auto" && x.g.progress != "lines" && x.g.progress != "none" {
		err = usagef("--progress %q: want auto, lines or none", x.g.progress)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tenantctl %s: %v\n\n", cmd.name, err)
		cmdUsage(stderr, cmd, fs)
		return ExitUsage
	}
	if x.conn, err = resolve(&x.g, env); err != nil {
		fmt.Fprintf(stderr, "tenantctl: %v\n", err)
		return ExitError
	}
	if x.c, err = client.New(x.conn.endpoint, client.WithToken(x.conn.token), client.WithUserAgent("tenantctl")); err != nil {
		fmt.Fprintf(stderr, "tenantctl: %v (from %s)\n", err, x.conn.endpointFrom)
		return ExitUsage
	}
	return x.exit(cmd, cmd.run(ctx, x, pos))
}

// exit prints err and maps it to the exit code.
func (x *cli) exit(cmd *command, err error) int {
	if err == nil {
		return ExitOK
	}
	var (
		ue *usageError
		p  *client.Problem
		of *client.OperationFailedError
		ef *client.ExportFailedError
		ce *client.ChecksumError
	)
	fmt.Fprintf(x.stderr, "tenantctl %s: %v\n", cmd.name, err)
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &of), errors.As(err, &ef):
		return ExitFailed
	case errors.As(err, &ce):
		return ExitVerify
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ExitTimeout
	case errors.As(err, &p) && p.Status == 401:
		fmt.Fprintf(x.stderr, "  (token from %s; endpoint %s from %s)\n", orNone(x.conn.tokenFrom), x.conn.endpoint, x.conn.endpointFrom)
	}
	return ExitError
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// parseInterleaved parses flags that may follow positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// waitContext bounds a wait by --timeout.
func (x *cli) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if x.g.timeout > 0 {
		return context.WithTimeout(ctx, x.g.timeout)
	}
	return context.WithCancel(ctx)
}
