// Package lambdasvc is a local, Docker-free Lambda service: `sam local start-lambda`
// for provided.al2023 Go functions. It builds each function's bootstrap with the
// project's Makefile, runs the real binaries behind its own implementation of the
// Lambda Runtime API (one small HTTP server per process), and serves the Lambda
// Invoke API, so the AWS SDK, aws-local-stepfunctions and tests invoke functions
// exactly as in AWS.
//
// Why not aws-lambda-rie: it panics on concurrent invokes and serves only the
// function name "function". Here every function of the template is served by name
// or ARN, concurrent invokes start more processes (up to a cap), warm processes are
// reused, and timeouts and crashes produce the errors Lambda produces.
//
// Faults are injected from outside (Inject, InjectFault or POST /_devstack/faults)
// so functions carry no test code: before the function runs (it never sees the
// event), or after it ran (its side effects happened, its answer is lost). SetChaos
// (POST /_devstack/chaos) faults a random, seeded share of invocations the same two
// ways, for load tests under failures.
package lambdasvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

// Config configures a Service.
type Config struct {
	// Root is the repository root; used only when BuildDir is empty.
	Root string
	// Functions are the functions to serve (samtemplate.Template.Functions()).
	Functions []samtemplate.Function
	// BuildDir holds prebuilt bootstraps (BuildDir/<LogicalId>/bootstrap), e.g. from
	// BuildAll or BuildCached. Empty: Start runs BuildCached(Root) into CacheDir.
	BuildDir string
	// CacheDir is where Start caches builds when BuildDir is empty (default DefaultCacheDir()).
	CacheDir string
	// Env is added to every function's environment after the template's variables,
	// so it wins: local endpoints (AWS_ENDPOINT_URL...), dummy credentials, region.
	Env map[string]string
	// FunctionEnv is added to one function's environment (by logical ID) after Env:
	// the credentials of the IAM user standing in for that function's role.
	FunctionEnv map[string]map[string]string
	// Log receives function output, each line prefixed "[<LogicalId>] " (default os.Stderr).
	Log io.Writer
	// Addr is the Invoke API listen address (default 127.0.0.1:0, a random port).
	Addr string
	// Region and AccountID name the functions' ARNs and set AWS_REGION
	// (defaults us-east-1, 123456789012).
	Region    string
	AccountID string
	// MaxConcurrency caps processes per function (default 8); further concurrent
	// invokes wait for a free process.
	MaxConcurrency int
	// InitTimeout bounds a process's init phase, as Lambda's 10 s (default 10s).
	InitTimeout time.Duration
	// Verbose adds START/REPORT lines per invocation to Log.
	Verbose bool
}

// Result is the outcome of a synchronous invocation.
type Result struct {
	RequestID string
	// Payload is the function's response, or the error document
	// {"errorMessage","errorType",...} when FunctionError is set.
	Payload []byte
	// FunctionError is "Unhandled" when the function (or an injected fault, a
	// timeout, a crash) failed, as the X-Amz-Function-Error header; else "".
	FunctionError string
	Duration      time.Duration
}

// FunctionError is a function error decoded from a Result.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

// Error renders "errorType: errorMessage".
func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// Err returns the function error as a *FunctionError, or nil on success.
func (r Result) Err() error {
	if r.FunctionError == "" {
		return nil
	}
	fe := &FunctionError{}
	if err := json.Unmarshal(r.Payload, fe); err != nil || fe.Type == "" {
		fe.Type, fe.Message = "Unhandled", string(r.Payload)
	}
	return fe
}

// Stats are the counters of one function.
type Stats struct {
	Invocations int `json:"invocations"` // every invoke, including faulted ones
	Errors      int `json:"errors"`      // function errors of any cause
	Faults      int `json:"faults"`      // injected faults served, before or after the function ran
	Timeouts    int `json:"timeouts"`
	ColdStarts  int `json:"coldStarts"` // processes started
	Processes   int `json:"processes"`  // processes alive now
	Idle        int `json:"idle"`       // of which warm and waiting for an invoke
}

// ErrUnknownFunction is returned (wrapped) when no function has the requested name.
var ErrUnknownFunction = errors.New("function not found")

// ErrClosed is returned by invocations on a closed Service.
var ErrClosed = errors.New("lambda service closed")

// function is one served function and its pool of processes.
type function struct {
	cfg       samtemplate.Function
	name      string // AWS_LAMBDA_FUNCTION_NAME
	arn       string
	bootstrap string
	timeout   time.Duration
	env       []string // without AWS_LAMBDA_RUNTIME_API

	mu      sync.Mutex
	idle    []*instance // warm, most recently used last
	total   int         // processes alive or starting
	waiters []chan *instance
	stats   Stats
	fault   *fault
	// chaos is the function's part of an active Chaos (nil: off); chaosLast is the
	// last one set, kept after ClearChaos for its counts.
	chaos     *chaosState
	chaosLast *chaosState
}

// fault is a function's active fault. skip and remaining change under
// function.mu as invocations take their turn (see take); the other fields never
// change once injected, so a copy taken under the lock can be used without it.
type fault struct {
	after     bool
	skip      int // invocations still to let through
	count     int // as injected
	remaining int // faults still to serve; -1: always
	errorType string
	message   string
	delay     time.Duration
	chaos     *chaosState // the Chaos that drew it (nil: armed by Inject)
}

// take decides, under function.mu, whether the invocation taking its turn now is
// faulted; it consumes a skip or a fault. Deciding once, at the start, keeps the
// counts exact under concurrent invocations however long each one runs.
func (ft *fault) take() bool {
	if ft.skip > 0 {
		ft.skip--
		return false
	}
	if ft.remaining > 0 {
		ft.remaining--
	}
	return true
}

// FaultSpec describes a fault for Inject. Its zero options (After false, Skip 0)
// give the classic fault: the next invocation fails without the function running.
type FaultSpec struct {
	// Function is the function's logical ID, name or ARN, as Invoke accepts it.
	Function string
	// After runs the invocation to its end first, so its side effects (DynamoDB
	// writes, Stripe calls...) happen, then drops its result, whatever it was, and
	// reports the injected error instead: the answer was lost after the work was
	// done, which is what retries and idempotency must survive. Without After the
	// function never sees the event.
	After bool
	// Skip lets this many invocations through untouched before the fault hits, so
	// a test can fail the N-th call of a flow: the fault hits call Skip+1 (0: the
	// next call). Must be >= 0.
	Skip int
	// Count is how many invocations fail once the fault hits: N > 0, or -1 for
	// every invocation until ClearFaults or another Inject on the function.
	Count int
	// ErrorType is the errorType the caller sees, what Step Functions Retry and
	// Catch match (default "InjectedFault"); "Sandbox.Timedout" with After
	// simulates a timeout after the work was done.
	ErrorType string
	// Message is the errorMessage (default "fault injected by devstack").
	Message string
	// Delay holds each faulted invocation this long before the fault applies, as a
	// slow dependency or a long cold start would: a test gets a window in which the
	// step has been called but has not run (e.g. to stop its execution first).
	Delay time.Duration
}

// Fault describes an active injected fault, as Faults and GET /_devstack/faults
// list it, so a test can see what is armed and how much of it is left.
type Fault struct {
	Function     string `json:"function"`
	Count        int    `json:"count"`     // as injected; -1 = always
	Remaining    int    `json:"remaining"` // faults still to serve; -1 = always
	Skip         int    `json:"skip"`      // invocations still to let through first
	After        bool   `json:"after"`     // fails after the function ran
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

// Service is a running local Lambda service.
type Service struct {
	cfg     Config
	funcs   map[string]*function // by LogicalID and by name
	ordered []*function
	sink    *logSink
	ln      net.Listener
	srv     *http.Server
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc

	mu        sync.Mutex
	closed    bool
	live      map[*instance]struct{}
	bg        sync.WaitGroup // Event invocations and process reapers
	observers map[int]func(Invocation)
	nextObs   int
}

// Invocation is what an observer (Observe) learns of one invocation that ended.
type Invocation struct {
	// Function is the function's logical ID.
	Function string
	// Payload is the event it was invoked with.
	Payload []byte
	// Result is what the caller gets.
	Result Result
	// Fault is FaultBefore or FaultAfter when an injected fault (armed or Chaos)
	// decided the answer, else "".
	Fault string
}

// Invocation.Fault values.
const (
	FaultBefore = "before"
	FaultAfter  = "after"
)

// Observe calls f with every invocation that ends from now on, synchronously, just
// before its caller gets the answer (so f sees it first), until stop is called. f
// must be quick and must not invoke the service; it may be called concurrently.
// Tests use it to learn when a step of a flow has run instead of polling for it.
func (s *Service) Observe(f func(Invocation)) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.observers == nil {
		s.observers = map[int]func(Invocation){}
	}
	id := s.nextObs
	s.nextObs++
	s.observers[id] = f
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.observers, id)
	}
}

func (s *Service) observe(f *function, payload []byte, res Result, fault string) {
	s.mu.Lock()
	if len(s.observers) == 0 {
		s.mu.Unlock()
		return
	}
	obs := make([]func(Invocation), 0, len(s.observers))
	for _, o := range s.observers {
		obs = append(obs, o)
	}
	s.mu.Unlock()
	inv := Invocation{Function: f.cfg.LogicalID, Payload: payload, Result: res, Fault: fault}
	for _, o := range obs {
		o(inv)
	}
}

// Start builds (unless cfg.BuildDir is set), checks every bootstrap exists, and
// starts serving the Invoke API. Processes start lazily on first invoke.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Region == "" {
		cfg.Region = samtemplate.DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = samtemplate.DefaultAccountID
	}
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = 8
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	if cfg.BuildDir == "" {
		if cfg.CacheDir == "" {
			d, err := DefaultCacheDir()
			if err != nil {
				return nil, err
			}
			cfg.CacheDir = d
		}
		dir, err := Builder{Root: cfg.Root, Log: cfg.Log}.BuildCached(ctx, cfg.Functions, cfg.CacheDir)
		if err != nil {
			return nil, err
		}
		cfg.BuildDir = dir
	}

	s := &Service{cfg: cfg, funcs: map[string]*function{}, sink: &logSink{w: cfg.Log}, live: map[*instance]struct{}{}}
	for _, fc := range cfg.Functions {
		f, err := s.newFunction(fc)
		if err != nil {
			return nil, err
		}
		for _, key := range []string{fc.LogicalID, f.name} {
			if other, dup := s.funcs[key]; dup && other != f {
				return nil, fmt.Errorf("lambdasvc: two functions answer to the name %q", key)
			}
			s.funcs[key] = f
		}
		s.ordered = append(s.ordered, f)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *Service) newFunction(fc samtemplate.Function) (*function, error) {
	f := &function{cfg: fc, name: fc.Name, arn: fc.ARN}
	if f.name == "" {
		f.name = fc.LogicalID
	}
	if f.arn == "" {
		f.arn = "arn:aws:lambda:" + s.cfg.Region + ":" + s.cfg.AccountID + ":function:" + f.name
	}
	timeout := fc.Timeout
	if timeout <= 0 {
		timeout = samtemplate.DefaultTimeout
	}
	f.timeout = time.Duration(timeout) * time.Second

	dir := filepath.Join(s.cfg.BuildDir, fc.LogicalID)
	f.bootstrap = filepath.Join(dir, "bootstrap")
	if _, err := os.Stat(f.bootstrap); err != nil && fc.Handler != "" {
		// Runtimes other than provided.* name the executable in Handler.
		if alt := filepath.Join(dir, fc.Handler); fileExists(alt) {
			f.bootstrap = alt
		}
	}
	abs, err := filepath.Abs(f.bootstrap)
	if err != nil {
		return nil, err
	}
	f.bootstrap = abs
	if !fileExists(f.bootstrap) {
		return nil, fmt.Errorf("lambdasvc: function %s: no bootstrap at %s (build it first)", fc.LogicalID, f.bootstrap)
	}

	memory := fc.MemorySize
	if memory <= 0 {
		memory = samtemplate.DefaultMemorySize
	}
	// Lambda does not pass the host environment; neither do we (no HOME, no
	// AWS_PROFILE: a local function must never reach a real account by accident).
	env := map[string]string{
		"PATH":                            os.Getenv("PATH"),
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"LAMBDA_TASK_ROOT":                taskRoot(f.bootstrap),
		"LAMBDA_RUNTIME_DIR":              taskRoot(f.bootstrap),
		"AWS_LAMBDA_FUNCTION_NAME":        f.name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(memory),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + f.name,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      s.cfg.Region,
		"AWS_DEFAULT_REGION":              s.cfg.Region,
		"_HANDLER":                        fc.Handler,
		// Without credentials in Env the SDK would fall back to the EC2 instance
		// metadata endpoint, a real network call; locally that is never right.
		"AWS_EC2_METADATA_DISABLED": "true",
	}
	for k, v := range fc.Environment {
		env[k] = v
	}
	for k, v := range s.cfg.Env {
		env[k] = v
	}
	for k, v := range s.cfg.FunctionEnv[fc.LogicalID] {
		env[k] = v
	}
	delete(env, "AWS_LAMBDA_RUNTIME_API") // per process, set at start
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.env = append(f.env, k+"="+env[k])
	}
	return f, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// URL is the Invoke API endpoint, e.g. for AWS_ENDPOINT_URL_LAMBDA.
func (s *Service) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the listen address (127.0.0.1:port).
func (s *Service) Addr() string { return s.ln.Addr().String() }

// lookup resolves a FunctionName as the Invoke API accepts it: a name, a name with
// a qualifier (Name:alias), a full ARN with or without qualifier, or a partial ARN
// (account:function:Name).
func (s *Service) lookup(name string) (*function, error) {
	if f, ok := s.funcs[name]; ok {
		return f, nil
	}
	if f, ok := s.funcs[FunctionNameFromARN(name)]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownFunction, name)
}

// FunctionNameFromARN extracts the function name from an ARN, a partial ARN or a
// qualified name; a plain name is returned unchanged.
func FunctionNameFromARN(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		s = u
	}
	if i := strings.Index(s, ":function:"); i >= 0 {
		s = s[i+len(":function:"):]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 { // qualifier: version or alias
		s = s[:i]
	}
	return s
}

// Invoke runs a function synchronously (RequestResponse). A function error is not a
// Go error: it is a Result with FunctionError set (see Result.Err). The error is
// for unknown functions (ErrUnknownFunction), a closed service and ctx. If ctx ends
// first, the invocation still runs to completion, as in Lambda.
func (s *Service) Invoke(ctx context.Context, name string, payload []byte) (Result, error) {
	f, err := s.lookup(name)
	if err != nil {
		return Result{}, err
	}
	type reply struct {
		res Result
		err error
	}
	ch := make(chan reply, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Result{}, ErrClosed
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		res, err := s.execute(f, payload)
		ch <- reply{res, err}
	}()
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// InvokeAsync runs a function in the background (InvocationType Event); errors
// are logged, not retried.
func (s *Service) InvokeAsync(name string, payload []byte) error {
	f, err := s.lookup(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		res, err := s.execute(f, payload)
		if err != nil && !errors.Is(err, ErrClosed) {
			s.sink.printf("["+f.cfg.LogicalID+"] ", "devstack: async invoke failed: %v", err)
		} else if res.FunctionError != "" {
			s.sink.printf("["+f.cfg.LogicalID+"] ", "devstack: async invoke %s failed: %s", res.RequestID, res.Payload)
		}
	}()
	return nil
}

// maxRequeue bounds re-dispatching an invocation whose process died before
// receiving it (e.g. it exited right after reporting a panic).
const maxRequeue = 3

// execute runs one invocation to its end: fault, response, function error,
// timeout or crash. It is independent of any caller's context.
func (s *Service) execute(f *function, payload []byte) (Result, error) {
	start := time.Now()
	res := Result{RequestID: newRequestID()}
	if len(payload) == 0 {
		payload = []byte("{}") // Lambda passes an empty event as {}
	}
	f.mu.Lock()
	f.stats.Invocations++
	var hit *fault // this invocation's fault, decided now and only now
	switch ft := f.fault; {
	case ft != nil:
		// An armed fault decides this invocation (skipped or faulted); Chaos draws
		// nothing for it.
		if ft.take() {
			cp := *ft
			hit = &cp
			if ft.remaining == 0 {
				f.fault = nil
			}
		}
	case f.chaos != nil:
		hit = f.chaos.draw()
	}
	f.mu.Unlock()
	if hit != nil && hit.delay > 0 {
		select {
		case <-time.After(hit.delay):
		case <-s.ctx.Done():
		}
	}
	if hit != nil && !hit.after {
		f.mu.Lock()
		f.stats.Faults++
		f.stats.Errors++
		if hit.chaos != nil {
			hit.chaos.stats.Before++
		}
		f.mu.Unlock()
		res.Payload, res.FunctionError = errorJSON(hit.errorType, hit.message), "Unhandled"
		res.Duration = time.Since(start)
		s.report(f, res, "fault injected")
		s.observe(f, payload, res, FaultBefore)
		return res, nil
	}
	if s.cfg.Verbose {
		s.sink.printf("["+f.cfg.LogicalID+"] ", "START RequestId: %s Version: $LATEST", res.RequestID)
	}

	for attempt := 0; ; attempt++ {
		inst, initErr, err := s.acquire(f)
		if err != nil {
			return res, err
		}
		if initErr != nil {
			res.Payload, res.FunctionError = initErr, "Unhandled"
			break
		}
		inv := &invocation{id: res.RequestID, payload: payload, traceID: newTraceID(), done: make(chan outcome, 1)}
		out, status := s.run(f, inst, inv)
		if status == statusRequeue && attempt < maxRequeue {
			continue
		}
		switch status {
		case statusDone:
			if out.errBody != nil {
				res.Payload, res.FunctionError = out.errBody, "Unhandled"
			} else {
				res.Payload = out.payload
			}
		case statusTimeout:
			secs := f.timeout.Seconds()
			res.Payload, res.FunctionError = errorJSON("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", res.RequestID, secs)), "Unhandled"
			s.sink.printf("["+f.cfg.LogicalID+"] ", "devstack: RequestId %s timed out after %.2f seconds; process killed", res.RequestID, secs)
		default: // crashed (or closed) mid-invocation
			msg := fmt.Sprintf("RequestId: %s Error: %s", res.RequestID, inst.exitDescription())
			res.Payload, res.FunctionError = errorJSON("Runtime.ExitError", msg), "Unhandled"
			s.sink.printf("["+f.cfg.LogicalID+"] ", "devstack: %s", msg)
		}
		break
	}
	note := ""
	if hit != nil { // an After fault: the work is done, the answer is lost
		if s.cfg.Verbose {
			dropped := "ok " + string(res.Payload)
			if res.FunctionError != "" {
				dropped = "error " + string(res.Payload)
			}
			if len(dropped) > maxDroppedLog {
				dropped = dropped[:maxDroppedLog] + "…"
			}
			s.sink.printf("["+f.cfg.LogicalID+"] ", "devstack: RequestId %s: fault injected after the invocation; its result is dropped: %s", res.RequestID, dropped)
		}
		res.Payload, res.FunctionError = errorJSON(hit.errorType, hit.message), "Unhandled"
		note = "fault injected after the invocation"
	}
	res.Duration = time.Since(start)
	f.mu.Lock()
	if res.FunctionError != "" {
		f.stats.Errors++
	}
	kind := ""
	if hit != nil {
		f.stats.Faults++
		kind = FaultAfter
		if hit.chaos != nil { // counted on the Chaos that drew it
			hit.chaos.stats.After++
		}
	}
	f.mu.Unlock()
	s.report(f, res, note)
	s.observe(f, payload, res, kind)
	return res, nil
}

// maxDroppedLog bounds how much of a result dropped by an After fault is logged.
const maxDroppedLog = 1 << 10

func (s *Service) report(f *function, res Result, note string) {
	if !s.cfg.Verbose {
		return
	}
	status := "ok"
	if res.FunctionError != "" {
		status = "error " + string(res.Payload)
	}
	if note != "" {
		status = note + ": " + status
	}
	s.sink.printf("["+f.cfg.LogicalID+"] ", "REPORT RequestId: %s Duration: %.2f ms %s", res.RequestID, float64(res.Duration.Microseconds())/1000, status)
}

type runStatus int

const (
	statusDone    runStatus = iota // the runtime posted a response or an error
	statusTimeout                  // killed after the function's Timeout
	statusCrashed                  // the process exited mid-invocation
	statusRequeue                  // the process died before receiving the invocation
)

// run hands inv to a warm instance and waits for its outcome.
func (s *Service) run(f *function, inst *instance, inv *invocation) (outcome, runStatus) {
	inv.deadline = time.Now().Add(f.timeout)
	inst.work <- inv // buffered: the process may not be waiting in /next yet
	timer := time.NewTimer(f.timeout)
	defer timer.Stop()
	select {
	case out := <-inv.done:
		s.release(f, inst)
		return out, statusDone
	case <-timer.C:
		select { // a result that raced the timer still counts
		case out := <-inv.done:
			s.release(f, inst)
			return out, statusDone
		default:
		}
		f.mu.Lock()
		f.stats.Timeouts++
		f.mu.Unlock()
		inst.kill(syscall.SIGKILL)
		inst.shutdown()
		return outcome{}, statusTimeout
	case <-inst.exited:
		select {
		case out := <-inv.done:
			return out, statusDone
		default:
		}
		inst.mu.Lock()
		delivered := inv.delivered
		inst.mu.Unlock()
		if !delivered {
			return outcome{}, statusRequeue
		}
		return outcome{}, statusCrashed
	}
}

// acquire returns a warm instance, or starts one if the function is below its cap,
// or waits for one. A failed cold start returns the init error document.
func (s *Service) acquire(f *function) (inst *instance, initErr []byte, err error) {
	f.mu.Lock()
	if n := len(f.idle); n > 0 {
		inst = f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return inst, nil, nil
	}
	if f.total < s.cfg.MaxConcurrency {
		f.total++
		f.mu.Unlock()
		return s.coldStart(f)
	}
	ch := make(chan *instance, 1)
	f.waiters = append(f.waiters, ch)
	f.mu.Unlock()
	select {
	case inst := <-ch:
		if inst == nil { // a process ended: its slot is ours
			return s.coldStart(f)
		}
		return inst, nil, nil
	case <-s.ctx.Done():
		f.mu.Lock()
		for i, w := range f.waiters {
			if w == ch {
				f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
				f.mu.Unlock()
				return nil, nil, ErrClosed
			}
		}
		f.mu.Unlock()
		// Handed something just as we gave up: pass it on.
		if inst := <-ch; inst != nil {
			s.release(f, inst)
		} else {
			s.slotFreed(f, nil)
		}
		return nil, nil, ErrClosed
	}
}

// release returns a warm instance to the pool, or straight to a waiter.
func (s *Service) release(f *function, inst *instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Checked under f.mu: reap closes exited before slotFreed takes f.mu, so a
	// process is either seen dead here or removed from idle by slotFreed.
	select {
	case <-inst.exited:
		return
	default:
	}
	if len(f.waiters) > 0 {
		w := f.waiters[0]
		f.waiters = f.waiters[1:]
		w <- inst
		return
	}
	f.idle = append(f.idle, inst)
}

// slotFreed is called once per process that ends (or failed to start): the slot
// goes to a waiter, who starts a new process, or back to the pool.
func (s *Service) slotFreed(f *function, inst *instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inst != nil {
		for i, in := range f.idle {
			if in == inst {
				f.idle = append(f.idle[:i], f.idle[i+1:]...)
				break
			}
		}
	}
	if len(f.waiters) > 0 {
		w := f.waiters[0]
		f.waiters = f.waiters[1:]
		w <- nil
		return
	}
	f.total--
}

// coldStart starts a process (its slot is already counted) and waits for init.
func (s *Service) coldStart(f *function) (*instance, []byte, error) {
	inst, err := s.startProcess(f)
	if err != nil {
		s.slotFreed(f, nil)
		return nil, nil, err
	}
	timer := time.NewTimer(s.cfg.InitTimeout)
	defer timer.Stop()
	fail := func(doc []byte) (*instance, []byte, error) {
		select {
		case <-inst.exited:
		default:
			inst.kill(syscall.SIGKILL)
		}
		inst.shutdown()
		s.sink.printf("["+f.cfg.LogicalID+"] ", "devstack: init failed: %s", doc)
		return nil, doc, nil
	}
	select {
	case <-inst.ready:
		return inst, nil, nil
	case <-inst.initFailed:
		inst.mu.Lock()
		doc := inst.initError
		inst.mu.Unlock()
		return fail(doc)
	case <-inst.exited:
		inst.mu.Lock()
		doc := inst.initError
		inst.mu.Unlock()
		if doc == nil {
			doc = errorJSON("Runtime.ExitError", "Error: "+inst.exitDescription())
		}
		return fail(doc)
	case <-timer.C:
		return fail(errorJSON("Sandbox.Timedout", fmt.Sprintf("Error: init did not finish within %s", s.cfg.InitTimeout)))
	case <-s.ctx.Done():
		inst.kill(syscall.SIGKILL)
		return nil, nil, ErrClosed
	}
}

// startProcess starts a bootstrap with its own Runtime API server.
func (s *Service) startProcess(f *function) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	inst := &instance{
		fn:         f,
		ln:         ln,
		work:       make(chan *invocation, 1),
		ready:      make(chan struct{}),
		initFailed: make(chan struct{}),
		exited:     make(chan struct{}),
		stop:       make(chan struct{}),
	}
	inst.srv = &http.Server{Handler: inst.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = inst.srv.Serve(ln) }()

	cmd := exec.Command(f.bootstrap)
	cmd.Dir = taskRoot(f.bootstrap)
	cmd.Env = append(append([]string{}, f.env...),
		"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
		"AWS_LAMBDA_LOG_STREAM_NAME="+time.Now().UTC().Format("2006/01/02")+"/[$LATEST]"+strings.ReplaceAll(newRequestID(), "-", ""))
	prefix := "[" + f.cfg.LogicalID + "] "
	stdout, stderr := newLineWriter(s.sink, prefix), newLineWriter(s.sink, prefix)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	inst.outs = []*lineWriter{stdout, stderr}
	// Own process group: a timeout or Close kills the bootstrap and its children,
	// and a Ctrl-C aimed at devstack's group is handled by devstack, not the children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child that keeps the output pipes open must not block the reaper forever.
	cmd.WaitDelay = 2 * time.Second
	inst.cmd = cmd

	// Register and start under s.mu so Close either sees the process or prevents it.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		inst.srv.Close()
		return nil, ErrClosed
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		inst.srv.Close()
		return nil, fmt.Errorf("lambdasvc: start %s: %w", f.bootstrap, err)
	}
	inst.pid = cmd.Process.Pid
	s.live[inst] = struct{}{}
	s.bg.Add(1)
	s.mu.Unlock()

	f.mu.Lock()
	f.stats.ColdStarts++
	f.stats.Processes++
	f.mu.Unlock()

	go s.reap(f, inst)
	return inst, nil
}

// reap waits for a process to end and cleans up after it.
func (s *Service) reap(f *function, inst *instance) {
	defer s.bg.Done()
	err := inst.cmd.Wait()
	for _, w := range inst.outs {
		w.flush()
	}
	inst.mu.Lock()
	inst.exitErr = err
	inst.mu.Unlock()
	// Kill stragglers the bootstrap may have left in its group.
	_ = syscall.Kill(-inst.pid, syscall.SIGKILL)
	inst.shutdown()
	close(inst.exited)
	inst.srv.Close()

	s.mu.Lock()
	delete(s.live, inst)
	s.mu.Unlock()
	f.mu.Lock()
	f.stats.Processes--
	f.mu.Unlock()
	s.slotFreed(f, inst)
}

// PIDs returns the process ids of the function processes alive now.
func (s *Service) PIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for inst := range s.live {
		out = append(out, inst.pid)
	}
	sort.Ints(out)
	return out
}

// InjectFault makes the next count invocations of a function (-1: all, until
// cleared) fail with errorType and message, without running the function. It
// replaces any earlier fault of that function. It is Inject with the common
// options, kept because most tests need nothing more.
func (s *Service) InjectFault(name string, count int, errorType, message string) error {
	return s.Inject(FaultSpec{Function: name, Count: count, ErrorType: errorType, Message: message})
}

// Inject arms a fault on one function, replacing any earlier fault of that
// function (faults of other functions stay). Skip and Count are decided per
// invocation as each one starts, so concurrent invocations share them exactly:
// with Skip s and Count n, invocations s+1 to s+n fail, in start order. The error
// wraps ErrUnknownFunction for an unknown function.
func (s *Service) Inject(spec FaultSpec) error {
	f, err := s.lookup(spec.Function)
	if err != nil {
		return err
	}
	if spec.Count == 0 || spec.Count < -1 {
		return fmt.Errorf("lambdasvc: fault count must be -1 (always) or positive, got %d", spec.Count)
	}
	if spec.Skip < 0 {
		return fmt.Errorf("lambdasvc: fault skip must be 0 or positive, got %d", spec.Skip)
	}
	if spec.Delay < 0 {
		return fmt.Errorf("lambdasvc: fault delay must be 0 or positive, got %s", spec.Delay)
	}
	if spec.ErrorType == "" {
		spec.ErrorType = "InjectedFault"
	}
	if spec.Message == "" {
		spec.Message = "fault injected by devstack"
	}
	f.mu.Lock()
	f.fault = &fault{after: spec.After, skip: spec.Skip, count: spec.Count, remaining: spec.Count, errorType: spec.ErrorType, message: spec.Message,
		delay: spec.Delay}
	f.mu.Unlock()
	return nil
}

// ClearFaults removes every injected fault, and turns Chaos off.
func (s *Service) ClearFaults() {
	for _, f := range s.ordered {
		f.mu.Lock()
		f.fault = nil
		f.chaos = nil
		f.mu.Unlock()
	}
}

// Faults lists the active injected faults.
func (s *Service) Faults() []Fault {
	var out []Fault
	for _, f := range s.ordered {
		f.mu.Lock()
		if ft := f.fault; ft != nil {
			out = append(out, Fault{Function: f.cfg.LogicalID, Count: ft.count, Remaining: ft.remaining, Skip: ft.skip,
				After: ft.after, ErrorType: ft.errorType, ErrorMessage: ft.message})
		}
		f.mu.Unlock()
	}
	return out
}

// Stats returns the counters of every function, by logical ID.
func (s *Service) Stats() map[string]Stats {
	out := map[string]Stats{}
	for _, f := range s.ordered {
		f.mu.Lock()
		st := f.stats
		st.Idle = len(f.idle)
		out[f.cfg.LogicalID] = st
		f.mu.Unlock()
	}
	return out
}

// ResetStats zeroes the counters (except the live process count).
func (s *Service) ResetStats() {
	for _, f := range s.ordered {
		f.mu.Lock()
		f.stats = Stats{Processes: f.stats.Processes}
		f.mu.Unlock()
	}
}

// Close stops serving, ends every function process (SIGTERM, then SIGKILL after a
// second) and waits until all are reaped. It is safe to call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	live := make([]*instance, 0, len(s.live))
	for inst := range s.live {
		live = append(live, inst)
	}
	s.mu.Unlock()

	s.cancel()
	for _, inst := range live {
		inst.kill(syscall.SIGTERM)
		inst.shutdown()
	}
	for _, inst := range live {
		inst.waitExit(time.Second)
	}
	// In-flight invokes have their outcome now; let their responses go out.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	s.bg.Wait()
	return err
}
