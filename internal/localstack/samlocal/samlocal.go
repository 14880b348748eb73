// Package samlocal plays fixtures through the real SAM CLI: each invocation is one
// `sam local invoke <LogicalId> -e <event>` against the local emulators, in a
// container built from a Lambda base image with SAM's bundled runtime interface
// emulator. The fixture tests use it instead of the local Lambda service when
// TENANTFLOW_FIXTURE_INVOKER=sam-local (see stacktest.Fixture), so the very same
// expectations judge what SAM's container returns; `make sam-local` runs them so.
//
// A fresh sam spends about 2 s of CPU importing SAM CLI before it does anything, so
// by default an Invoker hands its invocations to tools/sam_forkserver.py, which
// imports SAM CLI once and forks a child per invocation that runs sam's own entry
// point with the same arguments and environment (ForkServerEnv turns it off).
package samlocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// InvokerEnv names the environment variable that chooses how fixture tests invoke
// functions: "sam-local" for `sam local invoke`, anything else (or unset) for the
// local Lambda service.
const InvokerEnv = "TENANTFLOW_FIXTURE_INVOKER"

// ReportEnv names a file to which every fixture invocation appends a Row (JSON lines),
// which `make sam-local` prints as its table.
const ReportEnv = "TENANTFLOW_SAM_LOCAL_REPORT"

// DefaultImage is the base image `make sam-local` builds locally as a stand-in for
// public.ecr.aws/lambda/provided:al2023 (tools/sam-local-docker.sh).
const DefaultImage = "local/provided:al2023"

// Enabled reports whether fixture invocations go through `sam local invoke`.
func Enabled() bool { return os.Getenv(InvokerEnv) == "sam-local" }

// Config is what an Invoker needs from the running stack.
type Config struct {
	// Root is the repository root (template.yaml is read from there).
	Root string
	// Functions are the template's functions as the stack resolved them; their
	// Environment, with local names and ARNs, goes to --env-vars.
	Functions []samtemplate.Function
	// BuildDir holds the host-architecture bootstraps, BuildDir/<LogicalId>/bootstrap
	// (lambdasvc.BuildCached), mounted as each function's code.
	BuildDir string
	// Endpoints are environment variables whose values are URLs of emulators on
	// 127.0.0.1 (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SFN, STRIPE_API_BASE): each is
	// relayed from the Docker bridge and passed rewritten to point at the relay.
	Endpoints map[string]string
	// Env is further environment for every function, passed as is.
	Env map[string]string
	// Params are the template parameters (--parameter-overrides).
	Params map[string]string
	// Credentials are what each function calls AWS with, by logical ID (default: a
	// dummy pair). SAM hands its own credentials to the container, and Lambda reserves
	// the AWS_ACCESS_KEY_ID variable, so they go to sam's environment per invocation.
	Credentials map[string]testenv.Credentials
	// STSEndpoint answers sam's GetCallerIdentity (moto): without it sam asks the real
	// STS for the account id first and waits for it to time out, seconds per invocation.
	STSEndpoint string
	// DockerHost is the daemon's address (default $DOCKER_HOST).
	DockerHost string
	// Image is the base image given to --invoke-image (default $SAM_LOCAL_IMAGE, else
	// DefaultImage).
	Image string
	// Log receives SAM's own output and the functions' logs (default: discarded).
	Log io.Writer
}

// Invoker runs `sam local invoke` for one stack.
type Invoker struct {
	cfg        Config
	sam        string
	dir        string // template, env vars and events of this invoker
	template   string
	envVars    string
	gateway    string
	forwarders []*forwarder
	log        *slog.Logger
	// server runs the invocations while useServer holds (see ForkServerEnv); a
	// server that stops answering turns useServer off for good, and each
	// invocation execs sam again.
	server    *forkServer
	useServer atomic.Bool
}

// New prepares an Invoker: it checks the daemon and the image, writes the host-arch
// copy of the template and the env-vars file, starts the bridge relays and, unless
// TENANTFLOW_SAM_FORKSERVER=0, the SAM CLI fork server. Close stops the relays and
// the server and removes what it wrote.
func New(ctx context.Context, cfg Config) (_ *Invoker, err error) {
	if cfg.DockerHost == "" {
		cfg.DockerHost = os.Getenv("DOCKER_HOST")
	}
	if cfg.Image == "" {
		cfg.Image = os.Getenv("SAM_LOCAL_IMAGE")
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	inv := &Invoker{cfg: cfg, log: slog.New(slog.NewTextHandler(cfg.Log, nil)).With("component", "samlocal")}
	defer func() {
		if err != nil {
			inv.Close()
		}
	}()
	if inv.sam, err = testenv.Tool("venv/bin/sam"); err != nil {
		return nil, err
	}
	if out, err := inv.docker(ctx, "image", "inspect", "--format", "{{.Id}}", cfg.Image); err != nil {
		return nil, fmt.Errorf("samlocal: base image %s: %v %s (make sam-local builds it with tools/sam-local-docker.sh image)", cfg.Image, err, out)
	}
	if inv.gateway, err = inv.bridgeGateway(ctx); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(testenv.ToolsDir(), "sam-local"), 0o755); err != nil {
		return nil, err
	}
	// One directory per invoker: test binaries of several packages run at once.
	if inv.dir, err = os.MkdirTemp(filepath.Join(testenv.ToolsDir(), "sam-local"), "run-"); err != nil {
		return nil, err
	}
	inv.template = filepath.Join(inv.dir, "template.yaml")
	if err := WriteTemplate(filepath.Join(cfg.Root, "template.yaml"), inv.template, cfg.BuildDir); err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, v := range cfg.Env {
		env[k] = v
	}
	for k, target := range cfg.Endpoints {
		f, relayed, err := forward(inv.gateway, target)
		if err != nil {
			return nil, err
		}
		inv.forwarders = append(inv.forwarders, f)
		env[k] = relayed
	}
	if err := inv.writeEnvVars(env); err != nil {
		return nil, err
	}
	if os.Getenv(ForkServerEnv) == "0" {
		inv.log.Info("sam fork server off; every invocation execs sam", "env", ForkServerEnv+"=0")
	} else if err := inv.startForkServer(); err != nil {
		inv.log.Warn("sam fork server did not start; every invocation execs sam", "err", err)
	}
	inv.log.Info("sam local invoke ready", "image", cfg.Image, "bridge", inv.gateway, "template", inv.template, "via", inv.Via())
	return inv, nil
}

// startForkServer starts tools/sam_forkserver.py with the venv's python, in the
// environment sam gets (samEnv) but with the dummy credentials: SAM CLI reads
// environment at import time (HOME, LANG, SAM_CLI_CONTAINER_CONNECTION_TIMEOUT, ...),
// and those reads happen once, in the server, so they must see what an exec'd sam
// would. Only perInvocationEnv differs per function, and SAM reads it per invocation.
func (inv *Invoker) startForkServer() error {
	python, err := testenv.Tool("venv/bin/python")
	if err != nil {
		return err
	}
	script := filepath.Join(inv.cfg.Root, "tools", "sam_forkserver.py")
	// The empty logical ID has no credentials of its own: the dummy pair.
	s, err := startForkServer(python, script, inv.sam, inv.dir, inv.samEnv(""), perInvocationEnv, inv.cfg.Log)
	if err != nil {
		return fmt.Errorf("samlocal: fork server: %w", err)
	}
	inv.server = s
	inv.useServer.Store(true)
	return nil
}

// Via says how this Invoker runs sam: ViaForkServer, or ViaExec when the fork server
// is off, did not start or stopped answering. Read after an invocation, ViaForkServer
// means that invocation ran in the fork server (it never comes back on).
func (inv *Invoker) Via() string {
	if inv.useServer.Load() {
		return ViaForkServer
	}
	return ViaExec
}

// Image is the base image the containers are built from.
func (inv *Invoker) Image() string { return inv.cfg.Image }

// writeEnvVars writes the --env-vars file: per function, the template's variables
// with the values the stack resolved, then env. SAM sets only variables the template
// declares, which is why template.yaml declares the endpoint variables (empty, which
// the AWS SDK and the functions treat as unset).
func (inv *Invoker) writeEnvVars(env map[string]string) error {
	all := map[string]map[string]string{}
	for _, f := range inv.cfg.Functions {
		vars := map[string]string{}
		for k, v := range f.Environment {
			vars[k] = v
		}
		for k, v := range env {
			vars[k] = v
		}
		all[f.LogicalID] = vars
	}
	raw, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	inv.envVars = filepath.Join(inv.dir, "env-vars.json")
	return os.WriteFile(inv.envVars, raw, 0o600)
}

// Invoke runs `sam local invoke fn -e event` and returns the function's answer in
// the local Lambda service's form, so callers judge both alike. A function error is
// a Result with FunctionError set, not an error.
func (inv *Invoker) Invoke(ctx context.Context, fn, event string) (lambdasvc.Result, error) {
	args := []string{"local", "invoke", fn, "--event", event, "--template-file", inv.template,
		"--env-vars", inv.envVars, "--invoke-image", inv.cfg.Image, "--skip-pull-image",
		"--region", testenv.Region}
	if len(inv.cfg.Params) > 0 {
		keys := make([]string, 0, len(inv.cfg.Params))
		for k := range inv.cfg.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		args = append(args, "--parameter-overrides")
		for _, k := range keys {
			args = append(args, fmt.Sprintf("ParameterKey=%s,ParameterValue=%s", k, inv.cfg.Params[k]))
		}
	}
	start := time.Now()
	var stdout, stderr bytes.Buffer
	var runErr error
	for attempt := 1; ; attempt++ {
		stdout.Reset()
		stderr.Reset()
		runErr = inv.runSam(ctx, fn, args, &stdout, &stderr)
		// Concurrent sam processes pick the emulator's host port by probing, so two
		// can pick the same one and the second container fails to start; on a busy
		// machine a container can also miss SAM's deadline before it is ready. Either
		// way the function never received the event (the emulator prints START
		// first), so a retry is safe.
		errOut := stderr.String()
		notStarted := strings.Contains(errOut, "APIError") || strings.Contains(errOut, "No response from invoke container")
		if lastJSON(stdout.Bytes()) != nil || attempt == 3 || ctx.Err() != nil || strings.Contains(errOut, "START RequestId") || !notStarted {
			break
		}
		inv.log.Warn("sam local invoke: container did not start; retrying", "function", fn, "attempt", attempt)
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
	res := lambdasvc.Result{Duration: time.Since(start)}
	payload := lastJSON(stdout.Bytes())
	if runErr != nil || payload == nil {
		return res, fmt.Errorf("sam local invoke %s -e %s (%s): %v\nstdout: %s\nstderr (tail): %s", fn, event, inv.Via(), runErr, stdout.String(), tail(stderr.String(), 4000))
	}
	res.Payload = payload
	if isErrorDocument(payload) {
		res.FunctionError = "Unhandled"
	}
	return res, nil
}

// runSam runs `sam args` once, in the fork server if it is in use, else as its own
// process, with fn's environment; stderr is copied to the log as well.
func (inv *Invoker) runSam(ctx context.Context, fn string, args []string, stdout, stderr *bytes.Buffer) error {
	if inv.useServer.Load() {
		out, errOut, err := inv.server.run(ctx, args, inv.samEnv(fn), inv.dir)
		if !errors.Is(err, errForkServerDown) {
			stdout.Write(out)
			stderr.Write(errOut)
			_, _ = inv.cfg.Log.Write(errOut)
			return err
		}
		if inv.useServer.CompareAndSwap(true, false) {
			inv.log.Warn("sam fork server stopped answering; every invocation execs sam from now on", "err", err)
		}
	}
	cmd := exec.CommandContext(ctx, inv.sam, args...)
	cmd.Dir = inv.dir
	cmd.Env = inv.samEnv(fn)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(stderr, inv.cfg.Log)
	return cmd.Run()
}

// InvokePayload writes payload to a file of the invoker and invokes fn with it, for
// events that are not a fixture file as is (a signed Stripe delivery).
func (inv *Invoker) InvokePayload(ctx context.Context, fn string, payload []byte) (lambdasvc.Result, error) {
	f, err := os.CreateTemp(inv.dir, "event-*.json")
	if err != nil {
		return lambdasvc.Result{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(payload); err != nil {
		f.Close()
		return lambdasvc.Result{}, err
	}
	if err := f.Close(); err != nil {
		return lambdasvc.Result{}, err
	}
	return inv.Invoke(ctx, fn, f.Name())
}

// perInvocationEnv are the variables of samEnv that differ between functions: their
// credentials. SAM reads them when it invokes, not when it is imported: the local
// Lambda runner asks a new boto3 Session for credentials per invocation
// (samcli/commands/local/lib/local_lambda.py, _get_session_creds) and passes them to
// the container. The fork server refuses a request that differs in anything else.
var perInvocationEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

// samEnv is sam's environment for invoking fn: no developer profile, no telemetry,
// fn's credentials (SAM hands them to the container), the daemon to use. The fork
// server runs with samEnv("") (see startForkServer).
func (inv *Invoker) samEnv(fn string) []string {
	creds, ok := inv.cfg.Credentials[fn]
	if !ok {
		creds = testenv.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"DOCKER_HOST=" + inv.cfg.DockerHost,
		"SAM_CLI_TELEMETRY=0", "__SAM_CLI_APP_DIR=" + filepath.Join(testenv.ToolsDir(), "sam-home"),
		"AWS_REGION=" + testenv.Region, "AWS_DEFAULT_REGION=" + testenv.Region,
		"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	}
	if inv.cfg.STSEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_STS="+inv.cfg.STSEndpoint)
	}
	return env
}

// Close stops the fork server and the relays and removes the invoker's files.
func (inv *Invoker) Close() {
	inv.useServer.Store(false)
	if inv.server != nil {
		inv.server.stop()
	}
	for _, f := range inv.forwarders {
		_ = f.Close()
	}
	inv.forwarders = nil
	if inv.dir != "" {
		_ = os.RemoveAll(inv.dir)
	}
}

func (inv *Invoker) docker(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+inv.cfg.DockerHost)
	return cmd.CombinedOutput()
}

// bridgeGateway is the host's address on Docker's default bridge, the one a container
// started by SAM reaches the host at.
func (inv *Invoker) bridgeGateway(ctx context.Context) (string, error) {
	out, err := inv.docker(ctx, "network", "inspect", "bridge", "--format", "{{json .}}")
	if err != nil {
		return "", fmt.Errorf("samlocal: docker network inspect bridge: %v %s", err, out)
	}
	var nw struct {
		IPAM struct {
			Config []struct{ Gateway string }
		}
		Options map[string]string
	}
	if err := json.Unmarshal(out, &nw); err != nil {
		return "", fmt.Errorf("samlocal: docker network inspect bridge: %w", err)
	}
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return ip.String(), nil
		}
	}
	// Some daemons leave the gateway out of IPAM: it is the bridge interface's address.
	name := nw.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return "", fmt.Errorf("samlocal: bridge interface %s: %w (is the Docker daemon on this machine?)", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("samlocal: the Docker bridge " + name + " has no IPv4 address")
}

// lastJSON returns the last line of out that is a JSON value: sam prints the
// function's answer on stdout after anything else it writes there.
func lastJSON(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if l := bytes.TrimSpace(lines[i]); len(l) > 0 && json.Valid(l) {
			return l
		}
	}
	return nil
}

// isErrorDocument reports whether payload is the runtime's error document
// ({"errorMessage", "errorType", ...}), which the emulator returns for a function
// error where Lambda would set X-Amz-Function-Error.
func isErrorDocument(payload []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return false
	}
	_, msg := m["errorMessage"]
	_, typ := m["errorType"]
	if !msg || !typ {
		return false
	}
	for k := range m {
		switch k {
		case "errorMessage", "errorType", "stackTrace", "requestId", "cause":
		default:
			return false
		}
	}
	return true
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Summary renders an invocation's result for the report: "HTTP 201" for an API
// Gateway answer, "error <type>" for a function error, else the compact payload.
func Summary(res lambdasvc.Result) string {
	if res.FunctionError != "" {
		var fe lambdasvc.FunctionError
		_ = json.Unmarshal(res.Payload, &fe)
		return "error " + fe.Type
	}
	var http struct {
		StatusCode int `json:"statusCode"`
	}
	if json.Unmarshal(res.Payload, &http) == nil && http.StatusCode != 0 {
		return fmt.Sprintf("HTTP %d", http.StatusCode)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, res.Payload) != nil {
		buf.Reset()
		buf.Write(res.Payload)
	}
	s := buf.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return strings.ReplaceAll(s, "|", "/")
}
