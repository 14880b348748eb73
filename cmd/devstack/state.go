package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// Files kept in the state directory.
const (
	// DefaultStateDir is the state directory, relative to the repository root.
	DefaultStateDir = ".devstack"
	// EndpointsFile lists the URLs of a running devstack; it exists while one runs.
	EndpointsFile = "endpoints.json"
	// OperatorTokenFile holds an operator token, rewritten at every start.
	OperatorTokenFile = "operator.jwt"
)

// Endpoints is the content of endpoints.json: where a running devstack listens, so
// other commands (fire, invoke) and tools (curl, the AWS CLI) can reach it.
type Endpoints struct {
	API        string `json:"api"`
	Console    string `json:"console"` // the operator console, API/console
	Lambda     string `json:"lambda"`
	SFN        string `json:"sfn"`
	Moto       string `json:"moto"`
	Stripe     string `json:"stripe"`      // the recording proxy the functions call
	StripeMock string `json:"stripe_mock"` // stripe-mock itself
	PID        int    `json:"pid"`
	StartedAt  string `json:"started_at"`

	OperatorTokenFile string            `json:"operator_token_file"`
	TenantsTable      string            `json:"tenants_table"`
	DataTable         string            `json:"data_table"`
	EventBus          string            `json:"event_bus"`
	Buckets           []string          `json:"buckets"`
	StateMachines     map[string]string `json:"state_machines"`
	// StripeWebhookSecret signs events for POST /webhooks/stripe (devstack stripe-event).
	StripeWebhookSecret string `json:"stripe_webhook_secret,omitempty"`
	// AccessKeyID and SecretAccessKey are the admin's credentials for moto, which
	// enforces IAM: the AWS CLI and scripts sign with them.
	AccessKeyID     string `json:"aws_access_key_id"`
	SecretAccessKey string `json:"aws_secret_access_key"`
}

// resolveDirs fills in the repository root and the state directory.
func resolveDirs(root, stateDir string) (string, string, error) {
	if root == "" {
		root = testenv.RepoRoot()
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(root, "template.yaml")); err != nil {
		return "", "", fmt.Errorf("no template.yaml in %s: run devstack from the repository", root)
	}
	if stateDir == "" {
		stateDir = filepath.Join(root, DefaultStateDir)
	}
	if stateDir, err = filepath.Abs(stateDir); err != nil {
		return "", "", err
	}
	return root, stateDir, nil
}

// writeFileAtomic replaces path so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// errNotRunning says there is no live devstack for a state directory.
var errNotRunning = errors.New("no devstack is running")

// readEndpoints returns the endpoints of the devstack running for stateDir: the file
// must exist, its process must be alive and its Lambda service must answer. A file
// left by a killed devstack is reported as errNotRunning.
func readEndpoints(ctx context.Context, stateDir string) (*Endpoints, error) {
	path := filepath.Join(stateDir, EndpointsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", errNotRunning, path)
	}
	if err != nil {
		return nil, err
	}
	var ep Endpoints
	if err := json.Unmarshal(data, &ep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ep.PID <= 0 || !processAlive(ep.PID) {
		return nil, fmt.Errorf("%w (%s names pid %d, which is gone)", errNotRunning, path, ep.PID)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(ep.Lambda, "/")+"/_devstack/functions", nil)
	if err != nil {
		return nil, fmt.Errorf("%s: lambda URL: %w", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w (its Lambda service %s does not answer: %v)", errNotRunning, ep.Lambda, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w (its Lambda service %s answers %s)", errNotRunning, ep.Lambda, resp.Status)
	}
	return &ep, nil
}

// motoConfig returns an SDK config for the devstack's moto, signed with the admin
// credentials endpoints.json lists.
func (ep *Endpoints) motoConfig() aws.Config {
	return testenv.AWSConfigWith(ep.Moto, testenv.Credentials{AccessKeyID: ep.AccessKeyID, SecretAccessKey: ep.SecretAccessKey})
}

// processAlive reports whether pid exists (EPERM: it exists but is not ours).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// parseFlags parses args with fs, allowing flags after positional arguments
// (`devstack fire DowngradeSweepFunction --time ...`), and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// flagExit maps a flag parse error to an exit code (-h is a success).
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// lockedWriter serialises writes from the many goroutines that share the log stream
// (function output, Step Functions, gateway, scheduler); each Write is one line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
