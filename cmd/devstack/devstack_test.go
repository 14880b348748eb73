package main

// End-to-end: devstack starts in-process on random ports with a temporary state
// directory, and everything is driven the way a developer drives it: over real HTTP
// through the gateway, and through the token, fire and invoke commands.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/internal/localstack/oidc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// testLog keeps the devstack's output (bounded), streams it with -v, and is printed
// when a test fails.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	if testing.Verbose() {
		os.Stderr.Write(p)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 4<<20 {
		l.buf.Reset()
	}
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, token, body string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiResponse{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestDevstack(t *testing.T) {
	stateDir := t.TempDir()
	logs := &testLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := Serve(ctx, ServeOptions{StateDir: stateDir, Port: 0, RetryIntervalsZero: true, BulkData: true, Out: logs})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			r.Close()
		}
		if t.Failed() && !testing.Verbose() {
			t.Logf("devstack output:\n%s", logs.String())
		}
	}()
	if !strings.Contains(logs.String(), "serving on "+r.APIURL) {
		t.Errorf("no quickstart naming %s in the output", r.APIURL)
	}

	// The state directory has what the quickstart promises.
	tok, err := os.ReadFile(filepath.Join(stateDir, OperatorTokenFile))
	if err != nil || strings.TrimSpace(string(tok)) != r.OperatorToken {
		t.Errorf("operator.jwt = %q, %v", tok, err)
	}
	if fi, err := os.Stat(filepath.Join(stateDir, OperatorTokenFile)); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("operator.jwt mode %v, want 0600", fi.Mode().Perm())
	}
	ep, err := readEndpoints(ctx, stateDir)
	if err != nil {
		t.Fatalf("endpoints.json: %v", err)
	}
	if ep.API != r.APIURL || ep.PID != os.Getpid() || ep.Lambda == "" || ep.SFN == "" || ep.Moto == "" || ep.AccessKeyID == "" || ep.SecretAccessKey == "" || ep.Stripe == "" {
		t.Errorf("endpoints.json = %+v", ep)
	}
	// A second devstack on the same state directory refuses to start.
	if _, err := Serve(ctx, ServeOptions{StateDir: stateDir, Port: 0, Out: io.Discard}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Serve: err = %v, want already running", err)
	}

	// stripe-event signs an event with the secret endpoints.json names and POSTs it
	// through the gateway without a token (the webhook route is public): unpaid for
	// a tenant suspended already is applied as no_change.
	if ep.StripeWebhookSecret == "" {
		t.Error("endpoints.json has no stripe_webhook_secret")
	} else if res, err := SendStripeEvent(ctx, StripeEventOptions{StateDir: stateDir, StripeEventSpec: stack.StripeEventSpec{Type: "customer.subscription.updated", Status: "unpaid", TenantID: "tenant_suspended"}}); err != nil {
		t.Errorf("stripe-event: %v", err)
	} else if res.Status != 200 || !strings.Contains(string(res.Body), `"no_change"`) {
		t.Errorf("stripe-event: %d %s", res.Status, res.Body)
	}

	api := r.APIURL
	admin := r.OperatorToken

	// What make dev promises besides the API: every bucket of the template exists, and
	// tenant_enterprise has its 10,000+ application items for exports and purges.
	t.Run("resources", func(t *testing.T) {
		cfg := ep.motoConfig()
		if len(ep.Buckets) == 0 {
			t.Fatal("endpoints.json lists no buckets; template.yaml declares ExportsBucket")
		}
		s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
		for _, b := range ep.Buckets {
			if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); err != nil {
				t.Errorf("bucket %s: %v", b, err)
			}
		}
		db := dynamodb.NewFromConfig(cfg)
		q := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{TableName: aws.String(ep.DataTable), Select: ddbtypes.SelectCount,
			KeyConditionExpression:    aws.String("tenant_id = :t"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":t": &ddbtypes.AttributeValueMemberS{Value: "tenant_enterprise"}}})
		n := int32(0)
		for q.HasMorePages() {
			page, err := q.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += page.Count
		}
		if n < 10_000 {
			t.Errorf("tenant_enterprise has %d data items, want at least 10,000", n)
		}
	})

	// The console is served by ApiFunction without a token, points at the local OpenID
	// provider, and the provider's PKCE code flow yields a token the API accepts.
	t.Run("console", func(t *testing.T) {
		if !strings.Contains(logs.String(), r.ConsoleURL) || ep.Console != r.ConsoleURL {
			t.Errorf("the quickstart or endpoints.json does not name the console %s", r.ConsoleURL)
		}
		page := call(t, "GET", r.ConsoleURL+"/tenants/tenant_acme", "", "")
		if page.status != 200 || !strings.Contains(page.raw, "/console/v/") || page.header.Get("Content-Security-Policy") == "" {
			t.Fatalf("console page = %d %v %s", page.status, page.header, page.raw)
		}
		cfg := call(t, "GET", r.ConsoleURL+"/config.json", "", "")
		disco, _ := cfg.body["discovery_url"].(string)
		if cfg.status != 200 || disco != api+oidc.DiscoveryPath || cfg.body["issuer"] != r.Authority.Issuer() {
			t.Fatalf("config.json = %d %s", cfg.status, cfg.raw)
		}
		d := call(t, "GET", disco, "", "")
		authz, _ := d.body["authorization_endpoint"].(string)
		tokenURL, _ := d.body["token_endpoint"].(string)
		if d.body["issuer"] != r.Authority.Issuer() || authz == "" || tokenURL == "" {
			t.Fatalf("discovery = %s", d.raw)
		}
		verifier := strings.Repeat("v", 50)
		sum := sha256.Sum256([]byte(verifier))
		redirect := r.ConsoleURL + "/callback"
		q := url.Values{"response_type": {"code"}, "client_id": {"tenantflow-console"}, "redirect_uri": {redirect}, "state": {"s"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "login_hint": {"tenant:tenant_acme"}}
		nr := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := nr.Get(authz + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		code := loc.Query().Get("code")
		if res.StatusCode != http.StatusFound || code == "" {
			t.Fatalf("authorize = %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		tr, err := http.PostForm(tokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {"tenantflow-console"}, "code_verifier": {verifier}})
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(tr.Body).Decode(&tok)
		tr.Body.Close()
		if tr.StatusCode != 200 || tok.AccessToken == "" {
			t.Fatalf("token = %d", tr.StatusCode)
		}
		// The tenant's own token: its tenant yes, another one no.
		if res := call(t, "GET", api+"/tenants/tenant_acme", tok.AccessToken, ""); res.status != 200 {
			t.Errorf("console token on tenant_acme = %d %s", res.status, res.raw)
		}
		if res := call(t, "GET", api+"/tenants/tenant_enterprise", tok.AccessToken, ""); res.status != 403 {
			t.Errorf("console token of tenant_acme on tenant_enterprise = %d %s", res.status, res.raw)
		}
	})

	t.Run("http", func(t *testing.T) {
		res := call(t, "GET", api+"/tenants/tenant_acme", admin, "")
		if res.status != 200 || res.body["plan"] != "starter" || res.body["state"] != "ACTIVE" {
			t.Fatalf("GET tenant_acme = %d %s", res.status, res.raw)
		}
		if res := call(t, "GET", api+"/tenants/tenant_acme", "", ""); res.status != 401 || res.header.Get("Www-Authenticate") == "" {
			t.Errorf("without a token = %d %s", res.status, res.raw)
		}
		if res := call(t, "GET", api+"/tenants/tenant_acme", "not-a-jwt", ""); res.status != 401 {
			t.Errorf("with a malformed token = %d %s", res.status, res.raw)
		}
		acme, err := r.Authority.TenantToken("tenant_acme")
		if err != nil {
			t.Fatal(err)
		}
		if res := call(t, "GET", api+"/tenants/tenant_enterprise", acme, ""); res.status != 403 {
			t.Errorf("tenant_acme token on tenant_enterprise = %d %s", res.status, res.raw)
		}

		up := call(t, "POST", api+"/tenants/tenant_techstart/upgrade", admin, `{"plan":"starter"}`)
		opID, _ := up.body["operation_id"].(string)
		if up.status != 202 || opID == "" {
			t.Fatalf("upgrade = %d %s", up.status, up.raw)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			op := call(t, "GET", api+"/operations/"+opID, admin, "")
			if op.status != 200 {
				t.Fatalf("GET operation = %d %s", op.status, op.raw)
			}
			if op.body["status"] == "SUCCEEDED" {
				break
			}
			if op.body["status"] != "RUNNING" || time.Now().After(deadline) {
				t.Fatalf("operation = %s", op.raw)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if res := call(t, "GET", api+"/tenants/tenant_techstart", admin, ""); res.body["plan"] != "starter" || res.body["state"] != "ACTIVE" {
			t.Errorf("tenant_techstart after upgrade = %s", res.raw)
		}

		down := call(t, "POST", api+"/tenants/tenant_enterprise/downgrade", admin, `{"plan":"starter"}`)
		violations, _ := down.body["violations"].([]any)
		if down.status != 422 || len(violations) != 3 || !strings.HasPrefix(down.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("blocked downgrade = %d %s", down.status, down.raw)
		}
	})

	t.Run("token", func(t *testing.T) {
		for _, args := range [][]string{
			{"token", "--scope", "tenants/admin", "--state-dir", stateDir},
			{"token", "--tenant", "tenant_acme", "--state-dir", stateDir},
		} {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
			}
			res := call(t, "GET", api+"/tenants/tenant_acme", strings.TrimSpace(stdout.String()), "")
			if res.status != 200 {
				t.Errorf("%v token on tenant_acme = %d %s", args, res.status, res.raw)
			}
		}
		var stdout, stderr bytes.Buffer
		run([]string{"token", "--tenant", "tenant_acme", "--state-dir", stateDir}, &stdout, &stderr)
		if res := call(t, "GET", api+"/tenants/tenant_techstart", strings.TrimSpace(stdout.String()), ""); res.status != 403 {
			t.Errorf("tenant token on another tenant = %d", res.status)
		}
	})

	t.Run("fire", func(t *testing.T) {
		const when = "2030-01-02T03:04:05Z"
		var stdout, stderr bytes.Buffer
		if code := run([]string{"fire", "DowngradeSweepFunction", "--time", when, "--state-dir", stateDir}, &stdout, &stderr); code != 0 {
			t.Fatalf("fire: exit %d: %s%s", code, stdout.String(), stderr.String())
		}
		var res struct {
			Now     time.Time `json:"now"`
			Read    *int      `json:"read"`
			Started []string  `json:"started"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("fire printed %q: %v", stdout.String(), err)
		}
		if res.Now.Format(time.RFC3339) != when || res.Read == nil {
			t.Errorf("DowngradeSweepFunction returned %s, want now = %s", stdout.String(), when)
		}
		if code := run([]string{"fire", "ApiFunction", "--state-dir", stateDir}, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), "DowngradeSweepFunction") {
			t.Errorf("fire of a function without a schedule: exit %d, %s", code, stderr.String())
		}
	})

	// end-retention is how the README's walkthrough sees a purge: a purge never runs
	// before purge_after by the clock, however late the sweep's event time.
	t.Run("end-retention", func(t *testing.T) {
		var stderr bytes.Buffer
		if code := run([]string{"end-retention", "--tenant", "tenant_enterprise", "--state-dir", stateDir}, io.Discard, &stderr); code != 1 ||
			!strings.Contains(stderr.String(), "only a DELETED tenant") {
			t.Errorf("end-retention of an ACTIVE tenant: exit %d, %s", code, stderr.String())
		}
		del := call(t, "DELETE", api+"/tenants/tenant_enterprise", admin, "")
		if del.status != 202 {
			t.Fatalf("delete = %d %s", del.status, del.raw)
		}
		waitState(t, api, admin, "tenant_enterprise", "DELETED")
		var stdout bytes.Buffer
		if code := run([]string{"fire", "PurgeSweepFunction", "--time", "2099-01-01T00:00:00Z", "--state-dir", stateDir}, &stdout, &stderr); code != 0 ||
			strings.Contains(stdout.String(), "op_") {
			t.Errorf("a sweep at 2099 inside the retention: exit %d, %q (want no purge started)", code, stdout.String())
		}
		stdout.Reset()
		if code := run([]string{"end-retention", "--tenant", "tenant_enterprise", "--state-dir", stateDir}, &stdout, &stderr); code != 0 {
			t.Fatalf("end-retention: exit %d, %s", code, stderr.String())
		}
		stdout.Reset()
		if code := run([]string{"fire", "PurgeSweepFunction", "--state-dir", stateDir}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "op_") {
			t.Fatalf("the sweep after end-retention: exit %d, %q, want one purge started", code, stdout.String())
		}
		waitState(t, api, admin, "tenant_enterprise", "PURGED")
	})

	t.Run("invoke", func(t *testing.T) {
		fixtures, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "events", "api", "*.json"))
		if len(fixtures) == 0 {
			t.Fatal("no events/api fixtures")
		}
		for _, f := range fixtures {
			res, err := Invoke(ctx, InvokeOptions{StateDir: stateDir, Function: "ApiFunction", EventPath: f, Log: logs})
			if err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
				continue
			}
			if res.Where != ep.Lambda {
				t.Errorf("%s ran on %q, want the running devstack %s", filepath.Base(f), res.Where, ep.Lambda)
			}
			var resp events.APIGatewayV2HTTPResponse
			if res.FunctionError != "" || json.Unmarshal(res.Payload, &resp) != nil || resp.StatusCode == 0 {
				t.Errorf("%s: not an API Gateway response: %s %s", filepath.Base(f), res.FunctionError, res.Payload)
			}
		}
		// The other functions' fixtures: the function is the event's directory. Step
		// fixtures may fail on this state (a function error); invoking must not.
		others, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "events", "*", "*.json"))
		for _, f := range others {
			if filepath.Base(filepath.Dir(f)) == "api" {
				continue
			}
			if _, err := Invoke(ctx, InvokeOptions{StateDir: stateDir, EventPath: f, Log: logs}); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
		// The command prints the payload and exits 0; a function error exits 1.
		var stdout, stderr bytes.Buffer
		getTenant := filepath.Join(testenv.RepoRoot(), "events", "api", "get-tenant.json")
		if code := run([]string{"invoke", "ApiFunction", getTenant, "--state-dir", stateDir}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"statusCode": 200`) {
			t.Errorf("invoke get-tenant: exit %d, %s%s", code, stdout.String(), stderr.String())
		}
		if err := r.Stack.Lambda.InjectFault("ApiFunction", 1, "Boom", "injected"); err != nil {
			t.Fatal(err)
		}
		stdout.Reset()
		if code := run([]string{"invoke", getTenant, "--state-dir", stateDir}, &stdout, io.Discard); code != 1 || !strings.Contains(stdout.String(), `"errorType": "Boom"`) {
			t.Errorf("invoke with a function error: exit %d, %s", code, stdout.String())
		}
	})

	// Stop: every process the stack started is gone, and endpoints.json with it.
	pids := r.Stack.PIDs()
	if len(pids) < 4 {
		t.Errorf("stack PIDs = %v, want at least moto, stripe-mock, stepfunctions and a function", pids)
	}
	cancel() // the context ending stops it, like Ctrl-C
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("devstack did not stop within 30 s of its context ending")
	}
	closed = true
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after stop (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(filepath.Join(stateDir, EndpointsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("endpoints.json left behind: %v", err)
	}
	if res, err := http.Get(api + "/tenants/tenant_acme"); err == nil {
		res.Body.Close()
		t.Errorf("API still answers after stop: %s", res.Status)
	}
}

// TestInvokeFreshStack is `make invoke` without a running devstack: a fresh, seeded
// stack runs the one event and stops.
func TestInvokeFreshStack(t *testing.T) {
	logs := &testLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Invoke(ctx, InvokeOptions{
		StateDir: t.TempDir(), Function: "api",
		EventPath: filepath.Join(testenv.RepoRoot(), "events", "api", "get-tenant.json"), Log: logs,
	})
	if err != nil {
		t.Fatalf("Invoke: %v\n%s", err, logs.String())
	}
	var resp events.APIGatewayV2HTTPResponse
	if res.Where != "fresh stack" || json.Unmarshal(res.Payload, &resp) != nil || resp.StatusCode != 200 {
		t.Errorf("fresh invoke of get-tenant = %s %s %s", res.Where, res.FunctionError, res.Payload)
	}
}

// waitState polls the tenant until it is in state (at most a minute).
func waitState(t *testing.T, api, token, id, state string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res := call(t, "GET", api+"/tenants/"+id, token, "")
		if res.body["state"] == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after a minute, want %s: %s", id, res.body["state"], state, res.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
