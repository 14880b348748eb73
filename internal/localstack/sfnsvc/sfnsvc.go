// Package sfnsvc runs a local AWS Step Functions endpoint for `make dev` and tests:
// tools/sfn-local/server.mjs (aws-local-stepfunctions behind the AWS JSON 1.0 API) in a
// node child process on a random loopback port. Point the real aws-sdk-go-v2 sfn client
// at Endpoint() and StartExecution, DescribeExecution, GetExecutionHistory,
// ListExecutions and StopExecution behave like Step Functions Standard workflows; Lambda
// Task states call the Lambda Invoke API at LambdaEndpoint.
package sfnsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StateMachine is one state machine the local endpoint serves.
type StateMachine struct {
	// Name is the state machine name; it is also the middle of its execution ARNs.
	Name string
	// ARN defaults to arn:aws:states:<Region>:<AccountID>:stateMachine:<Name>.
	ARN string
	// DefinitionPath is the .asl.json file, with ${Key} placeholders.
	DefinitionPath string
	// Substitutions are the DefinitionSubstitutions: ${Key} becomes the value before the
	// definition is parsed. A placeholder without a value fails Start.
	Substitutions map[string]string
}

// Config says what to run and where.
type Config struct {
	// NodeModules is the node_modules folder holding aws-local-stepfunctions;
	// DefaultNodeModules() when empty.
	NodeModules string
	// Server is the path to tools/sfn-local/server.mjs.
	Server string
	// StateMachines are served from the start; there is no CreateStateMachine.
	StateMachines []StateMachine
	// LambdaEndpoint is the Lambda Invoke API base URL Task states call (it becomes
	// AWS_ENDPOINT_URL_LAMBDA of the node process). Empty keeps the inherited environment.
	LambdaEndpoint string
	// RetryIntervalsZero makes every Retry pause 0 ms (tests); attempts still count.
	RetryIntervalsZero bool
	// Region and AccountID build the default ARNs; us-east-1 and 123456789012 when empty.
	Region, AccountID string
	// Log receives the server's output, one line at a time, prefixed "[stepfunctions] ".
	Log io.Writer
}

// Service is a running local Step Functions endpoint.
type Service struct {
	endpoint string
	cmd      *exec.Cmd
	dir      string
	out      *lineWriter
	done     chan struct{} // closed when the process has been reaped
	waitErr  error

	closeOnce sync.Once
	closeErr  error
}

// startTimeout bounds how long a healthy server may take to answer the first request.
const startTimeout = 30 * time.Second

// exitAddrInUse is server.mjs's exit status when its port was taken after we picked it.
const exitAddrInUse = 98

// DefaultNodeModules is where the Makefile installs tools/package.json:
// $TENANTFLOW_TOOLS/node/node_modules, TENANTFLOW_TOOLS defaulting to
// ${XDG_CACHE_HOME:-$HOME/.cache}/tenantflow (also on macOS, to match the Makefile).
func DefaultNodeModules() string {
	tools := os.Getenv("TENANTFLOW_TOOLS")
	if tools == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				home = os.TempDir()
			}
			cache = filepath.Join(home, ".cache")
		}
		tools = filepath.Join(cache, "tenantflow")
	}
	return filepath.Join(tools, "node", "node_modules")
}

// serverConfig is the JSON file server.mjs reads.
type serverConfig struct {
	Port               int                  `json:"port"`
	Host               string               `json:"host"`
	Region             string               `json:"region"`
	AccountID          string               `json:"accountId"`
	RetryIntervalsZero bool                 `json:"retryIntervalsZero"`
	ParentPID          int                  `json:"parentPid,omitempty"`
	StateMachines      []serverStateMachine `json:"stateMachines"`
}

type serverStateMachine struct {
	Name           string            `json:"name"`
	ARN            string            `json:"arn"`
	DefinitionPath string            `json:"definitionPath"`
	Substitutions  map[string]string `json:"substitutions"`
}

// Start launches `node server.mjs config.json` in its own process group and returns once
// it answers on 127.0.0.1. ctx bounds the startup only; the process runs until Close.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Server == "" {
		return nil, errors.New("sfnsvc: Config.Server (path to tools/sfn-local/server.mjs) is required")
	}
	server, err := filepath.Abs(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("sfnsvc: %w", err)
	}
	if _, err := os.Stat(server); err != nil {
		return nil, fmt.Errorf("sfnsvc: server script: %w", err)
	}
	nodeModules := cfg.NodeModules
	if nodeModules == "" {
		nodeModules = DefaultNodeModules()
	}
	if nodeModules, err = filepath.Abs(nodeModules); err != nil {
		return nil, fmt.Errorf("sfnsvc: %w", err)
	}
	if _, err := os.Stat(filepath.Join(nodeModules, "aws-local-stepfunctions", "package.json")); err != nil {
		return nil, fmt.Errorf("sfnsvc: aws-local-stepfunctions is not installed in %s (run `make tools`, which installs tools/package.json): %w", nodeModules, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("sfnsvc: node is not on PATH: %w", err)
	}

	sc := serverConfig{
		Host:               "127.0.0.1",
		Region:             cfg.Region,
		AccountID:          cfg.AccountID,
		RetryIntervalsZero: cfg.RetryIntervalsZero,
		ParentPID:          os.Getpid(),
	}
	if sc.Region == "" {
		sc.Region = "us-east-1"
	}
	if sc.AccountID == "" {
		sc.AccountID = "123456789012"
	}
	for _, sm := range cfg.StateMachines {
		if sm.Name == "" || sm.DefinitionPath == "" {
			return nil, fmt.Errorf("sfnsvc: state machine %+v needs Name and DefinitionPath", sm)
		}
		def, err := filepath.Abs(sm.DefinitionPath)
		if err != nil {
			return nil, fmt.Errorf("sfnsvc: %w", err)
		}
		arn := sm.ARN
		if arn == "" {
			arn = fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", sc.Region, sc.AccountID, sm.Name)
		}
		subs := sm.Substitutions
		if subs == nil {
			subs = map[string]string{}
		}
		sc.StateMachines = append(sc.StateMachines, serverStateMachine{Name: sm.Name, ARN: arn, DefinitionPath: def, Substitutions: subs})
	}

	logTo := cfg.Log
	if logTo == nil {
		logTo = io.Discard
	}

	// The port is picked here and handed to node; if something grabs it in between,
	// node exits with exitAddrInUse and we try another one.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("sfnsvc: picking a port: %w", err)
		}
		sc.Port = port
		s, err := launch(ctx, node, server, nodeModules, cfg.LambdaEndpoint, sc, logTo)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, lastErr
}

var errAddrInUse = errors.New("port in use")

func launch(ctx context.Context, node, server, nodeModules, lambdaEndpoint string, sc serverConfig, logTo io.Writer) (*Service, error) {
	dir, err := os.MkdirTemp("", "sfnsvc-")
	if err != nil {
		return nil, fmt.Errorf("sfnsvc: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	data, err := json.MarshalIndent(sc, "", "  ")
	if err == nil {
		err = os.WriteFile(cfgPath, data, 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sfnsvc: writing config: %w", err)
	}

	cmd := exec.Command(node, server, cfgPath)
	cmd.Dir = dir
	cmd.Env = childEnv(os.Environ(), nodeModules, lambdaEndpoint, sc.Region)
	out := newLineWriter(logTo, "[stepfunctions] ")
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sfnsvc: starting node: %w", err)
	}
	s := &Service{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(sc.Port),
		cmd:      cmd,
		dir:      dir,
		out:      out,
		done:     make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		out.Flush()
		close(s.done)
	}()

	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// childEnv is the parent's environment plus what server.mjs needs.
func childEnv(parent []string, nodeModules, lambdaEndpoint, region string) []string {
	set := map[string]string{
		"NODE_PATH": nodeModules,
		// server.mjs passes its own dummy credentials; these keep any other SDK use local too.
		"AWS_ACCESS_KEY_ID":     "test",
		"AWS_SECRET_ACCESS_KEY": "test",
		"AWS_REGION":            region,
	}
	if lambdaEndpoint != "" {
		set["AWS_ENDPOINT_URL_LAMBDA"] = lambdaEndpoint
	}
	env := make([]string, 0, len(parent)+len(set))
	for _, kv := range parent {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok || k == "AWS_SESSION_TOKEN" || k == "AWS_PROFILE" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// waitReady polls ListStateMachines until the server answers, the process exits or
// ctx/startTimeout runs out.
func (s *Service) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "AWSStepFunctions.ListStateMachines")
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			if exitCode(s.waitErr) == exitAddrInUse {
				return fmt.Errorf("sfnsvc: %w", errAddrInUse)
			}
			return fmt.Errorf("sfnsvc: server exited during startup (%v):\n%s", s.waitErr, s.out.Tail())
		case <-ctx.Done():
			return fmt.Errorf("sfnsvc: server did not answer on %s: %w\n%s", s.endpoint, ctx.Err(), s.out.Tail())
		case <-tick.C:
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Endpoint is the base URL for the sfn client (sfn.Options.BaseEndpoint),
// http://127.0.0.1:PORT.
func (s *Service) Endpoint() string { return s.endpoint }

// Close stops the node process group (SIGTERM, then SIGKILL after 5 s), waits for it
// and removes the temporary config. It is safe to call more than once. It returns an
// error only if the server had died on its own before Close.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		select {
		case <-s.done:
			// Exited before Close asked it to: that is worth reporting. No signals: the
			// reaped PID is not ours any more.
			s.closeErr = fmt.Errorf("sfnsvc: server exited unexpectedly: %v\n%s", s.waitErr, s.out.Tail())
		default:
			signalGroup(s.cmd, false)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				signalGroup(s.cmd, true)
				<-s.done
			}
			// Anything left in the group (nothing is expected) goes too.
			signalGroup(s.cmd, true)
		}
		if err := os.RemoveAll(s.dir); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("sfnsvc: %w", err)
		}
	})
	return s.closeErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lineWriter forwards whole lines to w with a prefix and keeps the last lines for
// error messages. The process's stdout and stderr share one, so lines never interleave.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
	tail   []string
}

const tailLines = 30

func newLineWriter(w io.Writer, prefix string) *lineWriter {
	return &lineWriter{w: w, prefix: prefix}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush writes a last line without a newline, if any.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(string(l.buf))
		l.buf = nil
	}
}

func (l *lineWriter) emit(line string) {
	line = strings.TrimRight(line, "\r")
	fmt.Fprintf(l.w, "%s%s\n", l.prefix, line)
	l.tail = append(l.tail, line)
	if len(l.tail) > tailLines {
		l.tail = l.tail[len(l.tail)-tailLines:]
	}
}

// Tail is the server's last lines of output.
func (l *lineWriter) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, "\n")
}

// PID is the node server's process id.
func (s *Service) PID() int { return s.cmd.Process.Pid }
