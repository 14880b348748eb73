package tenantctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tenantflow/tenantflow/client"
)

// Env is what the command reads from its process: the environment and the working
// directory (relative paths, and where to look for a devstack).
type Env struct {
	Getenv func(string) string
	Dir    string
}

// OSEnv is the process's environment and working directory.
func OSEnv() Env {
	dir, _ := os.Getwd()
	return Env{Getenv: os.Getenv, Dir: dir}
}

func (e Env) path(p string) string {
	if p == "" || filepath.IsAbs(p) || p == "-" {
		return p
	}
	return filepath.Join(e.Dir, p)
}

// connection is the endpoint and token in use, and where each came from (shown with
// --verbose and in errors about authentication).
type connection struct {
	endpoint, endpointFrom string
	token, tokenFrom       string
}

// devstackFiles is what a running `make dev` leaves in its state directory.
type devstackFiles struct {
	dir       string
	api       string // from endpoints.json; empty when no devstack runs
	tokenFile string
}

// findDevstack looks for the state directory of `make dev`: $TENANTFLOW_DEVSTACK_DIR,
// else .devstack in the working directory or a parent (the repository root).
func findDevstack(env Env) *devstackFiles {
	dir := env.Getenv("TENANTFLOW_DEVSTACK_DIR")
	if dir == "" {
		for d := env.Dir; d != ""; {
			if fi, err := os.Stat(filepath.Join(d, ".devstack")); err == nil && fi.IsDir() {
				dir = filepath.Join(d, ".devstack")
				break
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	if dir == "" {
		return nil
	}
	dir = env.path(dir)
	ds := &devstackFiles{dir: dir, tokenFile: filepath.Join(dir, "operator.jwt")}
	if data, err := os.ReadFile(filepath.Join(dir, "endpoints.json")); err == nil {
		var ep struct {
			API       string `json:"api"`
			TokenFile string `json:"operator_token_file"`
		}
		if json.Unmarshal(data, &ep) == nil {
			ds.api = ep.API
			if ep.TokenFile != "" {
				ds.tokenFile = ep.TokenFile
			}
		}
	}
	return ds
}

// isLocal reports whether the endpoint is this machine (a dev token may be sent there).
func isLocal(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// resolve picks the endpoint and token: flags first, then the environment, then a
// local devstack (its API URL and operator token; the token only for a local endpoint).
func resolve(g *globals, env Env) (*connection, error) {
	c := &connection{}
	ds := findDevstack(env)
	switch {
	case g.endpoint != "":
		c.endpoint, c.endpointFrom = g.endpoint, "--endpoint"
	case env.Getenv("TENANTFLOW_ENDPOINT") != "":
		c.endpoint, c.endpointFrom = env.Getenv("TENANTFLOW_ENDPOINT"), "TENANTFLOW_ENDPOINT"
	case ds != nil && ds.api != "":
		c.endpoint, c.endpointFrom = ds.api, filepath.Join(ds.dir, "endpoints.json")
	default:
		c.endpoint, c.endpointFrom = client.DefaultEndpoint, "the default (make dev)"
	}
	c.endpoint = strings.TrimRight(c.endpoint, "/")
	switch {
	case g.tokenSet:
		c.token, c.tokenFrom = g.token, "--token"
	case g.tokenFile != "":
		tok, err := readToken(env.path(g.tokenFile))
		if err != nil {
			return nil, err
		}
		c.token, c.tokenFrom = tok, g.tokenFile
	case env.Getenv("TENANTFLOW_TOKEN") != "":
		c.token, c.tokenFrom = env.Getenv("TENANTFLOW_TOKEN"), "TENANTFLOW_TOKEN"
	case ds != nil && isLocal(c.endpoint) && (ds.api == "" || ds.api == c.endpoint):
		if tok, err := readToken(ds.tokenFile); err == nil {
			c.token, c.tokenFrom = tok, ds.tokenFile
		}
	}
	return c, nil
}

func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", errors.New("token file " + path + " is empty")
	}
	return tok, nil
}
