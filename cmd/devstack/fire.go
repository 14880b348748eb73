package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// FireOptions say which schedule to fire.
type FireOptions struct {
	Root, StateDir string
	// Function is the logical id of a function with a Schedule/ScheduleV2 event.
	Function string
	// Event picks the event when the function has several schedules.
	Event string
	// Time is the scheduled event's time (zero: now). Functions take "now" from it.
	Time time.Time
}

// InvokeResult is the outcome of one invocation.
type InvokeResult struct {
	// Payload is the function's result, or its error document when FunctionError is set.
	Payload []byte
	// FunctionError is the X-Amz-Function-Error value ("Unhandled") on a function error.
	FunctionError string
	// Where says which stack ran it (the running devstack's Lambda URL, or "fresh stack").
	Where string
}

// Fire delivers one scheduled event of opts.Function, timed opts.Time, to the running
// devstack's Lambda service and returns the function's result.
func Fire(ctx context.Context, opts FireOptions) (*InvokeResult, error) {
	root, stateDir, err := resolveDirs(opts.Root, opts.StateDir)
	if err != nil {
		return nil, err
	}
	t, err := stack.LoadTemplate(root, nil)
	if err != nil {
		return nil, err
	}
	sc, err := findSchedule(t, opts.Function, opts.Event)
	if err != nil {
		return nil, err
	}
	ep, err := readEndpoints(ctx, stateDir)
	if err != nil {
		return nil, fmt.Errorf("%w: start one with `make dev`", err)
	}
	at := opts.Time
	if at.IsZero() {
		at = time.Now()
	}
	payload, err := ScheduledEvent(t, sc, at)
	if err != nil {
		return nil, err
	}
	res, fnErr, err := invokeHTTP(ctx, ep.Lambda, sc.Function, payload)
	if err != nil {
		return nil, err
	}
	return &InvokeResult{Payload: res, FunctionError: fnErr, Where: ep.Lambda}, nil
}

// findSchedule returns the schedule event of a function (by logical id, or by its
// kebab-case directory name), naming the choices when it is ambiguous or absent.
func findSchedule(t *samtemplate.Template, function, event string) (Schedule, error) {
	fn, err := resolveFunction(t, function)
	if err != nil {
		return Schedule{}, err
	}
	all, err := LoadSchedules(t)
	if err != nil {
		return Schedule{}, err
	}
	var mine, withSchedules []string
	var found []Schedule
	for _, s := range all {
		withSchedules = append(withSchedules, s.Function+" ("+s.Event+": "+s.Expression+")")
		if s.Function != fn {
			continue
		}
		mine = append(mine, s.Event)
		if event == "" || s.Event == event {
			found = append(found, s)
		}
	}
	switch {
	case len(mine) == 0:
		return Schedule{}, fmt.Errorf("%s has no Schedule or ScheduleV2 event; functions with schedules: %s", fn, orNone(withSchedules))
	case len(found) == 0:
		return Schedule{}, fmt.Errorf("%s has no schedule event %q; its schedule events: %s", fn, event, strings.Join(mine, ", "))
	case len(found) > 1:
		return Schedule{}, fmt.Errorf("%s has several schedule events (%s): pick one with --event", fn, strings.Join(mine, ", "))
	}
	return found[0], nil
}

// resolveFunction accepts a logical id (DowngradeSweepFunction) or the function's
// directory name (downgrade-sweep).
func resolveFunction(t *samtemplate.Template, name string) (string, error) {
	fns, err := t.Functions()
	if err != nil {
		return "", err
	}
	var ids []string
	for _, f := range fns {
		if f.LogicalID == name || kebab(f.LogicalID) == name {
			return f.LogicalID, nil
		}
		ids = append(ids, f.LogicalID)
	}
	return "", fmt.Errorf("template.yaml has no function %q; functions: %s", name, strings.Join(ids, ", "))
}

// kebab maps a logical id to its functions/ directory the way the Makefile does:
// strip a trailing "Function", CamelCase -> kebab-case (HTTPApiFunction -> http-api).
func kebab(id string) string {
	id = strings.TrimSuffix(id, "Function")
	r := []rune(id)
	var b strings.Builder
	for i, c := range r {
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prevLower := r[i-1] >= 'a' && r[i-1] <= 'z' || r[i-1] >= '0' && r[i-1] <= '9'
			nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
			prevUpper := r[i-1] >= 'A' && r[i-1] <= 'Z'
			if prevLower || prevUpper && nextLower {
				b.WriteByte('-')
			}
		}
		b.WriteString(strings.ToLower(string(c)))
	}
	return b.String()
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// invokeHTTP calls the Lambda Invoke API (RequestResponse) at base.
func invokeHTTP(ctx context.Context, base, function string, payload []byte) ([]byte, string, error) {
	u := strings.TrimRight(base, "/") + "/2015-03-31/functions/" + url.PathEscape(function) + "/invocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("invoke %s: %w", function, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("invoke %s: %w", function, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("invoke %s: %s: %s", function, resp.Status, bytes.TrimSpace(body))
	}
	return body, resp.Header.Get("X-Amz-Function-Error"), nil
}

// printResult writes a result the way `sam local invoke` does (the payload on
// stdout) and returns the exit code: 1 on a function error.
func printResult(res *InvokeResult, stdout, stderr io.Writer) int {
	out := res.Payload
	var buf bytes.Buffer
	if err := jsonIndent(&buf, out); err == nil {
		out = buf.Bytes()
	}
	stdout.Write(bytes.TrimRight(out, "\n"))
	fmt.Fprintln(stdout)
	if res.FunctionError != "" {
		fmt.Fprintf(stderr, "devstack: function error (%s)\n", res.FunctionError)
		return 1
	}
	return 0
}

func cmdFire(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack fire", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o FireOptions
	at := fs.String("time", "", "the scheduled event's time, RFC 3339 (default now)")
	fs.StringVar(&o.Event, "event", "", "the schedule event's name, when the function has several")
	fs.StringVar(&o.StateDir, "state-dir", "", "state directory of the running devstack (default .devstack at the repository root)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: devstack fire <FunctionLogicalId> [--time 2026-02-01T00:00:00Z] [--event Name]\n\n"+
			"Delivers one EventBridge scheduled event to the running devstack now, with any event\n"+
			"time, and prints the function's result (exit 1 on a function error). E.g.\n"+
			"  go run ./cmd/devstack fire DowngradeSweepFunction --time 2030-01-01T00:00:00Z\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	o.Function = pos[0]
	if *at != "" {
		if o.Time, err = time.Parse(time.RFC3339, *at); err != nil {
			fmt.Fprintf(stderr, "devstack fire: --time %q: want RFC 3339, e.g. 2026-02-01T00:00:00Z\n", *at)
			return 2
		}
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := Fire(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "devstack fire: %v\n", err)
		return 1
	}
	return printResult(res, stdout, stderr)
}
