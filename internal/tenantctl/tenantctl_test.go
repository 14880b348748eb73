package tenantctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// A fake API (httptest) stands in for the stack here; cmd/devstack's
// TestREADMEWalkthroughWithTenantctl runs tenantctl against the real one.

func envWith(dir string, vars map[string]string) Env {
	return Env{Dir: dir, Getenv: func(k string) string { return vars[k] }}
}

func runCLI(t *testing.T, env Env, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, env, &out, &errOut)
	return code, out.String(), errOut.String()
}

// devstackDir writes what a running make dev leaves in its state directory.
func devstackDir(t *testing.T, api string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "operator.jwt")
	os.WriteFile(tokenFile, []byte("dev-operator-token\n"), 0o600)
	ep, _ := json.Marshal(map[string]string{"api": api, "operator_token_file": tokenFile})
	os.WriteFile(filepath.Join(dir, "endpoints.json"), ep, 0o644)
	return dir
}

func TestTokenAndEndpointResolution(t *testing.T) {
	var gotAuth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		fmt.Fprint(w, `{"id":"tenant_a","state":"ACTIVE"}`)
	}))
	defer srv.Close()
	ds := devstackDir(t, srv.URL)
	tokenFile := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tokenFile, []byte("  from-file\n"), 0o600)

	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"make dev out of the box", map[string]string{"TENANTFLOW_DEVSTACK_DIR": ds}, nil, "Bearer dev-operator-token"},
		{"env token over the dev token", map[string]string{"TENANTFLOW_DEVSTACK_DIR": ds, "TENANTFLOW_TOKEN": "from-env"}, nil, "Bearer from-env"},
		{"--token-file over the env", map[string]string{"TENANTFLOW_DEVSTACK_DIR": ds, "TENANTFLOW_TOKEN": "from-env"}, []string{"--token-file", tokenFile}, "Bearer from-file"},
		{"--token over everything", map[string]string{"TENANTFLOW_DEVSTACK_DIR": ds, "TENANTFLOW_TOKEN": "from-env"}, []string{"--token", "from-flag", "--token-file", tokenFile}, "Bearer from-flag"},
		{"explicit endpoint and env token", map[string]string{"TENANTFLOW_ENDPOINT": srv.URL, "TENANTFLOW_TOKEN": "from-env"}, nil, "Bearer from-env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotAuth.Store("")
			args := append([]string{"tenants", "show", "tenant_a"}, tt.args...)
			code, _, stderr := runCLI(t, envWith(t.TempDir(), tt.vars), args...)
			if code != 0 || gotAuth.Load() != tt.want {
				t.Errorf("exit %d, Authorization %q, want %q (stderr %s)", code, gotAuth.Load(), tt.want, stderr)
			}
		})
	}

	// The dev token never goes to an endpoint that is not this machine, nor to a local
	// endpoint other than the devstack's.
	for _, ep := range []string{"https://api.example.com", "http://127.0.0.1:1"} {
		c, err := resolve(&globals{endpoint: ep}, envWith(t.TempDir(), map[string]string{"TENANTFLOW_DEVSTACK_DIR": ds}))
		if err != nil || c.token != "" {
			t.Errorf("endpoint %s: token %q (%v), want none", ep, c.token, err)
		}
	}
	// .devstack is found from a subdirectory of the repository.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, ".devstack"), 0o700)
	os.WriteFile(filepath.Join(root, ".devstack", "operator.jwt"), []byte("walked-up"), 0o600)
	sub := filepath.Join(root, "shared", "tenant")
	os.MkdirAll(sub, 0o700)
	c, err := resolve(&globals{}, envWith(sub, nil))
	if err != nil || c.token != "walked-up" || c.endpoint != "http://127.0.0.1:3000" {
		t.Errorf("from a subdirectory: %+v %v", c, err)
	}
}

func TestExitCodes(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	var srvURL string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tenants/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(404)
		fmt.Fprint(w, `{"type":"urn:tenantflow:problem:not-found","title":"Not found","status":404,"detail":"no tenant nope"}`)
	})
	mux.HandleFunc("POST /tenants/{id}/upgrade", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(202)
		fmt.Fprintf(w, `{"operation_id":"op_%s","status":"RUNNING"}`, r.PathValue("id"))
	})
	mux.HandleFunc("GET /operations/{id}", func(w http.ResponseWriter, r *http.Request) {
		status := map[string]string{"op_failing": "FAILED", "op_slow": "RUNNING"}[r.PathValue("id")]
		fmt.Fprintf(w, `{"operation_id":%q,"tenant_id":"t","kind":"upgrade","status":%q,"error":"PaymentFailed","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","compensation_incomplete":["billing"]}`, r.PathValue("id"), status)
	})
	mux.HandleFunc("GET /tenants/{id}/exports/{ex}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"export_id":"exp_1","tenant_id":"t","status":"completed","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","size_bytes":5,"sha256":%q,"download_url":"%s/file"}`, sum, srvURL)
	})
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	dir := t.TempDir()
	env := envWith(dir, map[string]string{"TENANTFLOW_ENDPOINT": srv.URL, "TENANTFLOW_TOKEN": "t"})

	tests := []struct {
		args   []string
		code   int
		output string // in stdout+stderr
	}{
		{[]string{}, ExitUsage, "usage: tenantctl"},
		{[]string{"nope"}, ExitUsage, `unknown command "nope"`},
		{[]string{"upgrade"}, ExitUsage, "upgrade takes TENANT"},
		{[]string{"upgrade", "t"}, ExitUsage, "--plan is required"},
		{[]string{"tenants", "show", "t", "-o", "yaml"}, ExitUsage, "want table or json"},
		{[]string{"help", "downgrade"}, ExitOK, "--at-period-end"},
		{[]string{"tenants", "show", "nope"}, ExitError, "404 Not found: no tenant nope"},
		{[]string{"upgrade", "slow", "--plan", "starter", "--quiet"}, ExitOK, "op_slow\n"},
		{[]string{"upgrade", "failing", "--plan", "starter", "--wait", "--progress", "lines"}, ExitFailed, "FAILED: PaymentFailed"},
		{[]string{"operations", "wait", "op_slow", "--timeout", "300ms", "--progress", "none"}, ExitTimeout, "deadline exceeded"},
		{[]string{"operations", "show", "op_failing", "-o", "json"}, ExitOK, `"compensation_incomplete": [`},
		{[]string{"exports", "download", "t", "exp_1", "--file", "x.gz"}, ExitVerify, "the API reports 5 bytes with sha256 " + sum},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, env, tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.output) {
			t.Errorf("tenantctl %s: exit %d (want %d), output lacks %q:\n%s%s", strings.Join(tt.args, " "), code, tt.code, tt.output, out, errOut)
		}
	}
	// A download that fails verification leaves no file under the name asked for.
	if _, err := os.Stat(filepath.Join(dir, "x.gz")); !os.IsNotExist(err) {
		t.Errorf("x.gz exists after a failed verification: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".x.gz.part-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestOverridesSendTheWholeSet(t *testing.T) {
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(bytes.Buffer)
		b.ReadFrom(r.Body)
		body.Store(r.Method + " " + r.URL.Path + " " + b.String())
		fmt.Fprint(w, `{"id":"t","state":"ACTIVE","overrides":{"limits":{"users":100,"storage_gb":"unlimited"},"features":{"sso":true},"reason":"deal 42","by":"operator","at":"2026-01-01T00:00:00Z"}}`)
	}))
	defer srv.Close()
	env := envWith(t.TempDir(), map[string]string{"TENANTFLOW_ENDPOINT": srv.URL, "TENANTFLOW_TOKEN": "t"})
	code, out, errOut := runCLI(t, env, "overrides", "t", "--reason", "deal 42", "--limit", "users=100", "--limit", "storage_gb=unlimited", "--feature", "sso=true")
	want := `PUT /tenants/t/overrides {"limits":{"users":100,"storage_gb":"unlimited"},"features":{"sso":true},"reason":"deal 42"}`
	if code != 0 || body.Load() != want {
		t.Fatalf("exit %d, sent %v, want %s\n%s", code, body.Load(), want, errOut)
	}
	if !strings.Contains(out, "users=100 storage_gb=unlimited sso=true (deal 42, by operator") {
		t.Errorf("the tenant's overrides are not shown:\n%s", out)
	}
	if code, _, errOut := runCLI(t, env, "overrides", "t", "--reason", "x", "--limit", "seats=3"); code != ExitUsage || !strings.Contains(errOut, `unknown limit "seats"`) {
		t.Errorf("unknown limit: exit %d %s", code, errOut)
	}
}
