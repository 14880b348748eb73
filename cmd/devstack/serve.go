package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/oidc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// DefaultPort is where `make dev` serves the HTTP API.
const DefaultPort = 3000

// ServeOptions configure Serve.
type ServeOptions struct {
	// Root is the repository root (default: found from the working directory).
	Root string
	// StateDir keeps the JWT signing key, operator.jwt and endpoints.json (default
	// Root/.devstack).
	StateDir string
	// Port of the HTTP API on 127.0.0.1; 0 picks a free port.
	Port int
	// BulkData seeds the example tenants' application data items too (10,000 for
	// tenant_enterprise), so exports and purges have real work. Tests leave it off.
	BulkData bool
	// RetryIntervalsZero makes every Step Functions Retry wait 0 s (tests).
	RetryIntervalsZero bool
	// NoSchedules disables firing the template's schedules (fire still works).
	NoSchedules bool
	// Out receives the startup log, the quickstart and the log lines of every function
	// and service, each prefixed with its name (default os.Stdout).
	Out io.Writer
	// RawLogs keeps the functions' JSON log lines as they are instead of rendering
	// them as "LEVEL msg key=value".
	RawLogs bool
}

// Running is a serving devstack. Stop it with Close or by cancelling Serve's context.
type Running struct {
	// APIURL is the HTTP API's base URL, http://127.0.0.1:PORT.
	APIURL string
	// ConsoleURL is the operator console, APIURL/console: opening it signs in as the
	// operator through the local OpenID provider.
	ConsoleURL string
	Endpoints  Endpoints
	// StateDir is the state directory in use; OperatorToken the token written to
	// StateDir/operator.jwt.
	StateDir      string
	OperatorToken string
	Authority     *jwtauth.Authority
	Stack         *stack.Stack
	// Timings are the startup phases in order, for the log and for tests.
	Timings []Timing

	srv       *http.Server
	cancel    context.CancelFunc
	sched     *scheduler
	out       io.Writer
	closeOnce sync.Once
	done      chan struct{}
	serveErr  chan error
}

// Timing is how long one startup phase took.
type Timing struct {
	Phase string
	Took  time.Duration
	Note  string
}

// Serve starts the stack from template.yaml, seeds it, and serves the HTTP API on
// 127.0.0.1:opts.Port through the gateway with the JWT authorizer emulated. It returns
// once the API answers. The devstack runs until ctx ends or Close is called; Done is
// closed when everything it started has stopped.
func Serve(ctx context.Context, opts ServeOptions) (_ *Running, err error) {
	begin := time.Now()
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	out := &lockedWriter{w: opts.Out}
	logf := func(format string, args ...any) { fmt.Fprintf(out, "[devstack] "+format+"\n", args...) }
	root, stateDir, err := resolveDirs(opts.Root, opts.StateDir)
	if err != nil {
		return nil, err
	}
	if ep, err := readEndpoints(ctx, stateDir); err == nil {
		return nil, fmt.Errorf("a devstack is already running for %s (pid %d, API %s): stop it first, or use another --state-dir", stateDir, ep.PID, ep.API)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	// Listen first: a busy port should fail in milliseconds, not after the startup.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", opts.Port))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("port %d is in use (another devstack, or `sam local start-api`?): stop it or pass --port 0 for a free port", opts.Port)
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()

	var timings []Timing
	var tmu sync.Mutex
	record := func(phase string, took time.Duration, note string) {
		tmu.Lock()
		timings = append(timings, Timing{phase, took, note})
		tmu.Unlock()
		if note != "" {
			note = " (" + note + ")"
		}
		logf("%-14s %7s%s", phase, took.Round(10*time.Millisecond), note)
	}

	// The console finds the local OpenID provider (internal/localstack/oidc) on this
	// listener; the issuer stays the template's, which every local token carries.
	apiURL := "http://" + ln.Addr().String()
	tpl, err := stack.LoadTemplate(root, map[string]string{"ConsoleDiscoveryUrl": apiURL + oidc.DiscoveryPath})
	if err != nil {
		return nil, err
	}
	api, err := LoadAPIConfig(tpl)
	if err != nil {
		return nil, err
	}
	for _, w := range api.Warnings {
		logf("warning: %s", w)
	}
	schedules, err := LoadSchedules(tpl)
	if err != nil {
		return nil, err
	}
	fns, err := tpl.Functions()
	if err != nil {
		return nil, err
	}

	// Build the bootstraps while the emulators start: on a cold cache the build is
	// by far the longest phase. The stack asks for them (Bootstraps) just before it
	// starts the Lambda service.
	type built struct {
		dir string
		err error
	}
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	buildDone := make(chan built, 1)
	go func() {
		t0 := time.Now()
		dir, note, err := buildBootstraps(bctx, root, fns, out)
		if err == nil {
			record("build", time.Since(t0), note+"; parallel with the emulators")
		}
		buildDone <- built{dir, err}
	}()
	var buildResult *built
	waitBuild := func() built {
		if buildResult == nil {
			b := <-buildDone
			buildResult = &b
		}
		return *buildResult
	}

	t0 := time.Now()
	auth, err := newAuthority(api, stateDir, 0)
	if err != nil {
		bcancel()
		waitBuild()
		return nil, err
	}
	record("jwt key", time.Since(t0), filepath.Join(stateDir, jwtauth.KeyFile))

	var buildWait time.Duration
	logWriter := io.Writer(out)
	if !opts.RawLogs {
		logWriter = &prettyLog{w: out}
	}
	s, err := stack.Start(ctx, stack.Options{
		Root: root, Template: tpl, Log: logWriter, RetryIntervalsZero: opts.RetryIntervalsZero,
		Phase: func(name string, took time.Duration) {
			if name == "lambda" { // without the wait for the build, shown on its own
				took -= buildWait
			}
			record(name, took, "")
		},
		Bootstraps: func(context.Context) (string, error) {
			t0 := time.Now()
			b := waitBuild()
			if buildWait = time.Since(t0); b.err == nil && buildWait > 50*time.Millisecond {
				record("build wait", buildWait, "the emulators were ready before the build")
			}
			return b.dir, b.err
		},
	})
	if err != nil {
		bcancel()
		waitBuild()
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	t0 = time.Now()
	// One BatchWriteItem of 25 items at a time: moto serves requests one at a time
	// (tools/moto_server.py), and 4 or 8 calls in flight were measured no faster.
	if err := s.Seed(ctx, opts.BulkData); err != nil {
		return nil, err
	}
	note := fmt.Sprintf("%d example tenants", len(stack.Examples))
	if opts.BulkData {
		n := 0
		for _, ex := range stack.Examples {
			n += ex.DataItems
		}
		note += fmt.Sprintf(" + %d data items", n)
	}
	record("seed", time.Since(t0), note)

	gw, err := gateway.New(gateway.Config{
		Routes:     api.Routes,
		Invoker:    lambdaInvoker{s.Lambda},
		Authorizer: auth,
		Stage:      api.Stage,
		Logger:     slog.New(&accessLog{w: out}),
	})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Running{
		APIURL:     apiURL,
		ConsoleURL: apiURL + "/console",
		StateDir:   stateDir,
		Authority:  auth,
		Stack:      s,
		srv:        &http.Server{Handler: withOIDC(oidc.New(apiURL, auth, nil), withOpenAPI(gw, filepath.Join(root, "openapi.yaml"))), ReadHeaderTimeout: 10 * time.Second},
		cancel:     cancel,
		out:        out,
		done:       make(chan struct{}),
		serveErr:   make(chan error, 1),
	}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("HTTP server failed: %v", err)
			r.serveErr <- err
			go r.Close()
		}
	}()

	if r.OperatorToken, err = auth.OperatorToken(); err != nil {
		cancel()
		r.srv.Close()
		return nil, err
	}
	tokenFile := filepath.Join(stateDir, OperatorTokenFile)
	if err := writeFileAtomic(tokenFile, []byte(r.OperatorToken+"\n"), 0o600); err != nil {
		cancel()
		r.srv.Close()
		return nil, err
	}
	r.Endpoints = Endpoints{
		API: r.APIURL, Console: r.ConsoleURL, Lambda: s.Lambda.URL(), SFN: s.SFN.Endpoint(), Moto: s.Moto.Endpoint,
		AccessKeyID: s.Moto.Admin.AccessKeyID, SecretAccessKey: s.Moto.Admin.SecretAccessKey,
		Stripe: s.Stripe.URL, StripeMock: s.StripeMock.URL, PID: os.Getpid(),
		StartedAt: time.Now().UTC().Format(time.RFC3339), OperatorTokenFile: tokenFile,
		TenantsTable: s.TenantsTable, DataTable: s.DataTable, EventBus: s.EventBus, Buckets: s.Buckets, StateMachines: s.StateMachines,
	}
	if s.WebhookSecretName != "" {
		r.Endpoints.StripeWebhookSecret = stack.StripeWebhookTestSecret
	}
	epData, _ := json.MarshalIndent(r.Endpoints, "", "  ")
	if err := writeFileAtomic(filepath.Join(stateDir, EndpointsFile), append(epData, '\n'), 0o644); err != nil {
		cancel()
		r.srv.Close()
		return nil, err
	}

	var plan []planned
	if !opts.NoSchedules {
		r.sched = &scheduler{tpl: tpl, invoke: lambdaInvoker{s.Lambda}.Invoke, log: out}
		plan = r.sched.start(rctx, schedules, time.Now())
	}
	r.Timings = timings
	printQuickstart(out, r, api, plan, time.Since(begin), root)

	go func() {
		select {
		case <-ctx.Done():
			r.Close()
		case <-r.done:
		}
	}()
	return r, nil
}

// Done is closed once Close has stopped everything.
func (r *Running) Done() <-chan struct{} { return r.done }

// Close stops the scheduler, the HTTP server and every process of the stack, and
// removes endpoints.json. It is safe to call more than once and concurrently.
func (r *Running) Close() error {
	r.closeOnce.Do(func() {
		fmt.Fprintf(r.out, "[devstack] stopping...\n")
		r.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.srv.Shutdown(ctx)
		cancel()
		if r.sched != nil {
			r.sched.wait()
		}
		// Only our own file: a newer devstack may have taken the state dir over.
		path := filepath.Join(r.StateDir, EndpointsFile)
		if data, err := os.ReadFile(path); err == nil {
			var ep Endpoints
			if json.Unmarshal(data, &ep) == nil && ep.PID == r.Endpoints.PID && ep.API == r.Endpoints.API {
				os.Remove(path)
			}
		}
		r.Stack.Close()
		fmt.Fprintf(r.out, "[devstack] stopped: every process it started has exited\n")
		close(r.done)
	})
	select {
	case err := <-r.serveErr:
		r.serveErr <- err
		return err
	default:
		return nil
	}
}

// lambdaInvoker adapts the local Lambda service to gateway.Invoker.
type lambdaInvoker struct{ svc *lambdasvc.Service }

func (l lambdaInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, string, error) {
	res, err := l.svc.Invoke(ctx, function, payload)
	if err != nil {
		return nil, "", err
	}
	return res.Payload, res.FunctionError, nil
}

var _ gateway.Invoker = lambdaInvoker{}

// printQuickstart tells the developer what runs where and how to call it.
func printQuickstart(w io.Writer, r *Running, api *APIConfig, plan []planned, took time.Duration, root string) {
	rel := func(p string) string {
		if x, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(x, "..") {
			return x
		}
		return p
	}
	tokenFile := rel(r.Endpoints.OperatorTokenFile)
	var b strings.Builder
	fmt.Fprintf(&b, "\n[devstack] routes (template.yaml HttpApi events):\n%s", describeRoutes(api.Routes))
	fmt.Fprintf(&b, `
  tenantflow devstack is serving on %[1]s   (ready in %[2]s)

  console          %[8]s   (signs in as the operator; %[8]s?login_hint=tenant:tenant_acme signs in as that tenant)

  operator token   %[3]s   (other tokens: go run ./cmd/devstack token --tenant tenant_acme)
  endpoints        %[4]s   (lambda %[5]s, stepfunctions %[6]s, moto %[7]s)

  TOKEN=$(cat %[3]s)
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/tenants/tenant_acme
  OP=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"plan":"starter"}' %[1]s/tenants/tenant_techstart/upgrade | sed -E 's/.*"operation_id":"([^"]+)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/operations/$OP
`, r.APIURL, took.Round(100*time.Millisecond), tokenFile, rel(filepath.Join(r.StateDir, EndpointsFile)), r.Endpoints.Lambda, r.Endpoints.SFN, r.Endpoints.Moto, r.ConsoleURL)
	if len(plan) > 0 {
		b.WriteString("\n")
	}
	for _, p := range plan {
		if p.Note != "" {
			fmt.Fprintf(&b, "  schedule         %s %s %s: %s\n", p.Function, p.Event, p.Expression, p.Note)
		} else {
			fmt.Fprintf(&b, "  schedule         %s %s %s: next at %s\n", p.Function, p.Event, p.Expression, p.Next.UTC().Format("15:04:05Z"))
		}
		fmt.Fprintf(&b, "                   fire it now with any time: go run ./cmd/devstack fire %s --time %s\n", p.Function, time.Now().UTC().Truncate(time.Second).Format(time.RFC3339))
	}
	b.WriteString(`
  Data lives in memory: Ctrl-C stops every process, and the next start is a clean,
  freshly seeded stack. Function logs follow, prefixed with the function name.

`)
	io.WriteString(w, b.String())
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := ServeOptions{BulkData: true, Out: stdout}
	fs.IntVar(&o.Port, "port", DefaultPort, "HTTP API port on 127.0.0.1 (0: a free port)")
	fs.StringVar(&o.StateDir, "state-dir", "", "state directory: JWT key, operator.jwt, endpoints.json (default .devstack at the repository root)")
	noData := fs.Bool("no-data", false, "seed the example tenants without their bulk application data (faster start)")
	fs.BoolVar(&o.NoSchedules, "no-schedules", false, "do not fire the template's schedules (devstack fire still works)")
	fs.BoolVar(&o.RawLogs, "raw-logs", false, "print the functions' JSON log lines as they are")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: devstack [serve] [--port 3000] [--state-dir .devstack] [--no-data] [--no-schedules] [--raw-logs]\n\n"+
			"Starts the whole stack of template.yaml on 127.0.0.1, seeds the example tenants and serves\n"+
			"the HTTP API until Ctrl-C. Data is in memory: every start is clean.\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "devstack serve: unexpected argument %q (see devstack help)\n", pos[0])
		return 2
	}
	o.BulkData = !*noData

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 3)
	notifySignals(sigs)
	go func() {
		n := 0
		for range sigs {
			n++
			switch n {
			case 1:
				cancel()
			case 2:
				fmt.Fprintln(stderr, "devstack: still stopping (processes get SIGKILL after a few seconds); once more to quit now")
			default:
				fmt.Fprintln(stderr, "devstack: quitting without waiting; processes may be left behind")
				os.Exit(130)
			}
		}
	}()
	go watchParent(ctx, cancel, stderr)

	r, err := Serve(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "devstack: %v\n", err)
		return 1
	}
	<-r.Done()
	if err := r.Close(); err != nil {
		return 1
	}
	return 0
}

// watchParent stops the devstack when its parent dies. `go run` does not pass
// SIGTERM on to the program it runs (and `make` passes it only to go run), so without
// this a killed `make dev` would leave devstack and its children behind.
func watchParent(ctx context.Context, cancel context.CancelFunc, log io.Writer) {
	ppid := os.Getppid()
	if ppid <= 1 {
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != ppid {
				fmt.Fprintf(log, "devstack: parent process %d exited; stopping\n", ppid)
				cancel()
				return
			}
		}
	}
}

// withOIDC serves the local OpenID provider's endpoints (discovery, authorize, token)
// and everything else through next.
func withOIDC(p *oidc.Provider, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if oidc.Handles(r) {
			p.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withOpenAPI serves the API description at GET /openapi.yaml (read on each request, so
// an edit shows without a restart; no token needed) and everything else through next.
func withOpenAPI(next http.Handler, path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/openapi.yaml" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			http.Error(w, "openapi.yaml: "+err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(b)
	})
}
