//go:build browser

package main

// The operator console in a real browser: headless Chromium (internal/localstack/
// browser) against one devstack, the way an operator uses it. The console signs in
// through the devstack's OpenID Connect endpoints (authorization code with PKCE), reads
// and changes everything through the HTTP API with that token, and each scenario
// checks what the page shows against what the API says. Faults are injected from
// outside (the local Lambda service), as the flow tests do.
//
// One devstack and one browser serve every scenario, so the suite costs one stack
// start; scenarios use different example tenants and do not depend on each other's
// order except where a comment says so.
//
// With TENANTFLOW_CONSOLE_SHOTS=<dir> (make console-shots) the scenarios also save one
// PNG per view there, under fixed names.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tenantflow/tenantflow/internal/localstack/browser"
	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d`)

// ShotsEnv names the directory make console-shots writes the views' PNGs into.
const ShotsEnv = "TENANTFLOW_CONSOLE_SHOTS"

// consoleSuite is what every scenario shares.
type consoleSuite struct {
	r       *Running
	b       *browser.Browser
	api     string // the HTTP API's base URL
	console string // the console's URL, without a trailing slash (Running.ConsoleURL)
	admin   string // the operator's token, for the API calls the checks make
	shots   string // "" unless make console-shots
}

func TestConsoleInBrowser(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	logs := &testLog{}
	r, err := Serve(ctx, ServeOptions{StateDir: t.TempDir(), Port: 0, RetryIntervalsZero: true, NoSchedules: true, Out: logs})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	defer func() {
		r.Close()
		if t.Failed() && !testing.Verbose() {
			t.Logf("devstack output:\n%s", logs.String())
		}
	}()
	stackUp := time.Since(began)
	s := &consoleSuite{r: r, api: r.APIURL, console: r.ConsoleURL, admin: r.OperatorToken, shots: os.Getenv(ShotsEnv)}
	shotDir := filepath.Join(testenv.RepoRoot(), ".console-shots", "failures")
	if s.shots != "" {
		shotDir = filepath.Join(s.shots, "failures")
	}
	if s.b, err = browser.Start(ctx, browser.Options{ShotDir: shotDir, Timeout: 30 * time.Second}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	defer s.b.Close()

	t.Run("sign-in", s.signIn)
	t.Run("overview-counts", s.overviewCounts)
	t.Run("tenants", s.tenants)
	t.Run("upgrade", s.upgrade)
	t.Run("blocked-downgrade", s.blockedDowngrade)
	t.Run("attention-and-retry", s.attentionAndRetry)
	t.Run("export-download", s.exportDownload)
	t.Run("tenant-view-isolated", s.tenantIsolated)
	t.Run("certificate", s.certificate)
	t.Logf("console browser suite: %s (stack start %s, scenarios %s)", time.Since(began).Round(time.Millisecond),
		stackUp.Round(time.Millisecond), (time.Since(began) - stackUp).Round(time.Millisecond))
}

// open signs a new page in as the operator (the console does so at once in the
// devstack) and opens path under the console, waiting for view.
func (s *consoleSuite) open(t *testing.T, path, view string) *browser.Page {
	t.Helper()
	p := s.b.NewPage(t)
	p.Go(s.console + strings.TrimSuffix(path, "/"))
	waitView(t, p, view)
	return p
}

// waitView waits until the console shows view with its data loaded, and checks the
// view shows no value a template let through as such ("null", "undefined", ...).
func waitView(t *testing.T, p *browser.Page, view string) {
	t.Helper()
	p.Wait("the "+view+" view, loaded", fmt.Sprintf(`(m => !!m && m.getAttribute('aria-busy') === 'false')(document.querySelector('main[data-view=%q]'))`, view))
	var junk []string
	p.Eval(`(m => [m, ...m.querySelectorAll('*')])(document.querySelector('main')).flatMap(e => [...e.childNodes])
	  .filter(n => n.nodeType === Node.TEXT_NODE && /^\s*(null|undefined|NaN|\[object Object\])\s*$/.test(n.textContent)).map(n => n.parentElement.tagName + ': ' + n.textContent.trim())`, &junk)
	if len(junk) > 0 {
		t.Errorf("the %s view shows raw values: %q", view, junk)
	}
}

// attr reads an attribute of the first element matching css ("" when absent).
func attr(p *browser.Page, css, name string) string {
	var v string
	p.Eval(fmt.Sprintf(`(e => e ? (e.getAttribute(%q) || '') : '')(document.querySelector(%q))`, name, css), &v)
	return v
}

// shot saves the page as <shots>/<name>.png in make console-shots.
func (s *consoleSuite) shot(t *testing.T, p *browser.Page, name string) {
	t.Helper()
	if s.shots != "" {
		t.Logf("view %s: %s", name, p.ShotTo(filepath.Join(s.shots, name+".png")))
	}
}

// apiGet calls the API as the operator and decodes its JSON answer.
func (s *consoleSuite) apiGet(t *testing.T, path string, out any) {
	t.Helper()
	res := call(t, "GET", s.api+path, s.admin, "")
	if res.status != 200 {
		t.Fatalf("GET %s: %d %s", path, res.status, res.raw)
	}
	if err := json.Unmarshal([]byte(res.raw), out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// signIn: a fresh browser opening the console goes through the devstack's
// authorization endpoint with a PKCE S256 challenge, and redeems the code with the
// verifier that matches it; the console then says who is signed in.
func (s *consoleSuite) signIn(t *testing.T) {
	p := s.b.NewPage(t)
	var mu sync.Mutex
	var authorize *url.URL
	var tokenBody string
	requests := chromedp.Events(p.Context(), network.RequestWillBeSent)
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			u, err := url.Parse(ev.Request.URL)
			if err != nil {
				continue
			}
			mu.Lock()
			switch {
			case strings.HasSuffix(u.Path, "/oauth2/authorize") && authorize == nil:
				authorize = u
			case strings.HasSuffix(u.Path, "/oauth2/token") && ev.Request.Method == "POST":
				for _, e := range ev.Request.PostDataEntries {
					tokenBody += string(e.Bytes)
				}
			}
			mu.Unlock()
		}
	}()
	p.Go(s.console)
	waitView(t, p, "overview")
	if who := p.Text("whoami"); who != "operator" {
		t.Errorf("signed in as %q, want operator", who)
	}
	if loc := p.Location(); strings.Contains(loc, "code=") || strings.Contains(loc, "/callback") {
		t.Errorf("the console stays on %s; the code must not stay in the address bar", loc)
	}
	mu.Lock()
	defer mu.Unlock()
	if authorize == nil {
		t.Fatal("the console never went to the authorization endpoint")
	}
	q := authorize.Query()
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		t.Errorf("authorize request %s: want response_type=code, an S256 code_challenge and a state", authorize)
	}
	form, _ := url.ParseQuery(tokenBody)
	verifier := form.Get("code_verifier")
	sum := sha256.Sum256([]byte(verifier))
	if form.Get("grant_type") != "authorization_code" || verifier == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
		t.Errorf("token request %q: want grant_type=authorization_code and the verifier of challenge %s", tokenBody, q.Get("code_challenge"))
	}
}

// overviewCounts: every count of the overview is the API's /stats.
func (s *consoleSuite) overviewCounts(t *testing.T) {
	p := s.open(t, "/", "overview")
	var stats struct {
		TenantsByState map[string]int `json:"tenants_by_state"`
		Operations     map[string]int `json:"operations"`
	}
	s.apiGet(t, "/stats", &stats)
	if len(stats.TenantsByState) != len(tenant.States) {
		t.Errorf("/stats has %d states, want %d", len(stats.TenantsByState), len(tenant.States))
	}
	if stats.TenantsByState["ACTIVE"] == 0 {
		t.Errorf("/stats counts no ACTIVE tenant in the seeded stack: %v", stats.TenantsByState)
	}
	for _, st := range tenant.States {
		if got := p.Text("stat-" + string(st)); got != strconv.Itoa(stats.TenantsByState[string(st)]) {
			t.Errorf("overview %s = %q, /stats says %d", st, got, stats.TenantsByState[string(st)])
		}
	}
	for _, k := range []string{"running", "needs_attention", "scheduled"} {
		if got := p.Text("stat-ops-" + k); got != strconv.Itoa(stats.Operations[k]) {
			t.Errorf("overview operations %s = %q, /stats says %d", k, got, stats.Operations[k])
		}
	}
	if n := p.Count("attention-row"); n != stats.Operations["needs_attention"] {
		t.Errorf("needs-attention queue has %d rows, /stats says %d", n, stats.Operations["needs_attention"])
	}
	s.shot(t, p, "overview")
	p.ColorScheme("dark")
	p.Go(s.console)
	waitView(t, p, "overview")
	s.shot(t, p, "overview-dark")
}

// tenants: the list shows the tenants the API lists in the selected state, and the
// state filter changes it.
func (s *consoleSuite) tenants(t *testing.T) {
	p := s.open(t, "/tenants", "tenants")
	listed := func(state string) []string {
		var page struct {
			Tenants []struct {
				ID string `json:"id"`
			} `json:"tenants"`
		}
		s.apiGet(t, "/tenants?state="+state, &page)
		var ids []string
		for _, tn := range page.Tenants {
			ids = append(ids, tn.ID)
		}
		slices.Sort(ids)
		return ids
	}
	rows := `[...document.querySelectorAll('[data-testid="tenant-row"]')].map(r => r.getAttribute('data-tenant-id')).sort().join(' ')`
	var selected string
	p.Eval(`(e => e.value)(document.querySelector('[data-testid="tenants-state"]'))`, &selected)
	want := strings.Join(listed(selected), " ")
	if want == "" {
		t.Fatalf("the API lists no %q tenant", selected)
	}
	p.Wait("the rows of the API's "+selected+" tenants ("+want+")", fmt.Sprintf(`%s === %q`, rows, want))
	s.shot(t, p, "tenants")
	p.Select("State", "SUSPENDED")
	want = strings.Join(listed("SUSPENDED"), " ")
	if !strings.Contains(want, "tenant_suspended") {
		t.Fatalf("the API lists SUSPENDED %q, want tenant_suspended among them", want)
	}
	p.Wait("the rows of the API's SUSPENDED tenants ("+want+")", fmt.Sprintf(`%s === %q`, rows, want))
}

// upgrade: an upgrade confirmed in the console runs, the console follows the
// operation live to SUCCEEDED with its steps, and the API agrees on the plan.
func (s *consoleSuite) upgrade(t *testing.T) {
	p := s.open(t, "/tenants/tenant_techstart", "tenant")
	if got := p.Text("tenant-plan"); !strings.Contains(strings.ToLower(got), "free") {
		t.Fatalf("tenant_techstart shows plan %q, want free", got)
	}
	s.shot(t, p, "tenant")
	p.Click("Upgrade", browser.TestID("action-upgrade"))
	p.WaitTestID("action-dialog")
	p.Select("Plan", "starter")
	p.Click("the dialog's confirm", browser.TestID("dialog-confirm"))
	waitView(t, p, "operation")
	opID := attr(p, `main[data-view="operation"]`, "data-operation-id")
	if !strings.HasPrefix(opID, "op_") {
		t.Fatalf("operation view has operation id %q", opID)
	}
	p.WaitTestIDTextFor(90*time.Second, "op-status", "SUCCEEDED")
	p.Wait("every step shown as succeeded", `(rows => rows.length > 0 && rows.every(r => r.getAttribute('data-status') !== 'RUNNING'))([...document.querySelectorAll('[data-testid="step-row"]')])`)
	var steps struct {
		Steps []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"steps"`
	}
	s.apiGet(t, "/operations/"+opID+"/steps", &steps)
	if n := p.Count("step-row"); n != len(steps.Steps) || n == 0 {
		t.Errorf("the operation view shows %d steps, the API %d", n, len(steps.Steps))
	}
	for _, st := range steps.Steps {
		if got := attr(p, fmt.Sprintf(`[data-testid="step-row"][data-step-name=%q]`, st.Name), "data-status"); got != st.Status {
			t.Errorf("step %s shown %q, API says %q", st.Name, got, st.Status)
		}
	}
	if p.Count("op-live") != 0 {
		t.Errorf("the console still polls an operation that ended")
	}
	s.shot(t, p, "operation")
	var tn struct {
		Plan  string `json:"plan"`
		State string `json:"state"`
	}
	s.apiGet(t, "/tenants/tenant_techstart", &tn)
	if tn.Plan != "starter" || tn.State != "ACTIVE" {
		t.Errorf("after the upgrade the API says %s/%s, want starter/ACTIVE", tn.Plan, tn.State)
	}
}

// blockedDowngrade: the action dialog works from the keyboard; a downgrade the
// tenant's usage does not fit shows every violation the API gives, in words, and
// changes nothing.
func (s *consoleSuite) blockedDowngrade(t *testing.T) {
	// What the API answers to the same request (a 422 starts nothing).
	res := call(t, "POST", s.api+"/tenants/tenant_enterprise/downgrade", s.admin, `{"plan":"starter"}`)
	if res.status != 422 {
		t.Fatalf("API downgrade of tenant_enterprise to starter: %d %s, want 422", res.status, res.raw)
	}
	violations, _ := res.body["violations"].([]any)
	if len(violations) == 0 {
		t.Fatalf("the 422 lists no violations: %s", res.raw)
	}
	p := s.open(t, "/tenants/tenant_enterprise", "tenant")
	// By keyboard: Enter on the focused button opens the dialog with the focus in it,
	// Escape closes it.
	p.Focus("Downgrade", browser.TestID("action-downgrade"))
	p.Press(kb.Enter)
	p.Wait("the action dialog open with the focus inside it", `(d => !!d && d.open && d.contains(document.activeElement))(document.querySelector('[data-testid="action-dialog"]'))`)
	p.Press(kb.Escape)
	p.Wait("the dialog closed by Escape", `(d => !d || !d.open)(document.querySelector('[data-testid="action-dialog"]'))`)
	p.Click("Downgrade", browser.TestID("action-downgrade"))
	p.WaitTestID("action-dialog")
	p.Select("Plan", "starter")
	p.SetChecked("Now", true)
	p.Click("the dialog's confirm", browser.TestID("dialog-confirm"))
	p.WaitTestID("violations")
	shown := p.Texts("violation")
	if len(shown) != len(violations) {
		t.Errorf("the dialog shows %d violations %q, the API %d", len(shown), shown, len(violations))
	}
	for _, v := range violations {
		m, _ := v.(map[string]any)
		limit, _ := m["limit"].(string)
		if !slices.ContainsFunc(shown, func(s string) bool { return strings.Contains(strings.ReplaceAll(s, ",", ""), fmt.Sprint(m["max"])) }) || limit == "" {
			t.Errorf("no violation shown for %v: %q", m, shown)
		}
	}
	if problem := p.Text("dialog-problem"); strings.Contains(problem, "{") || strings.Contains(problem, "urn:") {
		t.Errorf("the problem is shown as JSON, not as a sentence: %q", problem)
	}
	s.shot(t, p, "dialog-422")
	var tn struct {
		Plan  string `json:"plan"`
		State string `json:"state"`
	}
	s.apiGet(t, "/tenants/tenant_enterprise", &tn)
	if tn.Plan != "professional" || tn.State != "ACTIVE" {
		t.Errorf("after a refused downgrade the API says %s/%s", tn.Plan, tn.State)
	}
}

// attentionAndRetry: an upgrade whose commit and both compensations fail ends FAILED
// with its compensation incomplete; it appears in the overview's needs-attention
// queue; once the faults are gone, Retry in the console finishes the compensation
// and the queue is empty again.
func (s *consoleSuite) attentionAndRetry(t *testing.T) {
	lambda := s.r.Stack.Lambda
	defer lambda.ClearFaults()
	for _, fn := range []string{"PlanCommitFunction", "PlanRollbackBillingFunction", "PlanRollbackProvisionFunction"} {
		if err := lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault", Message: "injected in " + fn}); err != nil {
			t.Fatal(err)
		}
	}
	p := s.open(t, "/tenants/tenant_acme", "tenant")
	p.Click("Upgrade", browser.TestID("action-upgrade"))
	p.WaitTestID("action-dialog")
	p.Select("Plan", "professional")
	p.Click("the dialog's confirm", browser.TestID("dialog-confirm"))
	waitView(t, p, "operation")
	opID := attr(p, `main[data-view="operation"]`, "data-operation-id")
	p.WaitTestIDTextFor(90*time.Second, "op-status", "FAILED")
	p.WaitTestID("op-needs-attention")
	p.WaitTestIDText("op-compensation-incomplete", "billing")
	p.WaitTestIDText("op-compensation-incomplete", "entitlements")
	// The failed step says what went wrong in words: the Lambda error's message, not
	// the JSON Step Functions carries it in.
	var stepErr string
	p.Eval(`(e => e ? e.innerText : '')(document.querySelector('[data-testid="step-row"][data-step-name="Commit"] [data-testid="step-error"]'))`, &stepErr)
	if !strings.Contains(stepErr, "injected in PlanCommitFunction") || strings.Contains(stepErr, `"errorMessage"`) {
		t.Errorf("the Commit step's error reads %q, want the message in words", stepErr)
	}

	p.Go(s.console)
	waitView(t, p, "overview")
	p.Wait("the operation in the needs-attention queue", fmt.Sprintf(`!!document.querySelector('[data-testid="attention-row"][data-operation-id=%q]')`, opID))
	if got := p.Text("stat-ops-needs_attention"); got != "1" {
		t.Errorf("overview needs_attention = %q, want 1", got)
	}
	s.shot(t, p, "overview-attention")

	lambda.ClearFaults()
	p.Click("the queued operation", chromedp.JSPath(fmt.Sprintf(`document.querySelector('[data-testid="attention-row"][data-operation-id=%q] a')`, opID)))
	waitView(t, p, "operation")
	s.shot(t, p, "operation-attention")
	p.Click("Retry", browser.TestID("action-retry"))
	if p.Count("action-dialog") > 0 {
		p.Click("the dialog's confirm", browser.TestID("dialog-confirm"))
	}
	p.WaitFor(90*time.Second, "the operation followed to its end, needing no attention", `(m => !!m && m.getAttribute('aria-busy') === 'false'
	  && !m.querySelector('[data-testid="op-needs-attention"]') && !m.querySelector('[data-testid="op-live"]')
	  && (st => !!st && !['RUNNING', ''].includes(st.innerText.trim()))(m.querySelector('[data-testid="op-status"]')))(document.querySelector('main[data-view="operation"]'))`)
	if got := p.Text("op-status"); got != "FAILED" {
		t.Errorf("after the retry the operation is %q, want FAILED (the upgrade itself failed)", got)
	}
	var op map[string]any
	s.apiGet(t, "/operations/"+opID, &op)
	if op["needs_attention"] == true || op["compensation_incomplete"] != nil {
		t.Errorf("after the retry the API still says %v", op)
	}
	p.Go(s.console)
	waitView(t, p, "overview")
	if n := p.Count("attention-row"); n != 0 {
		t.Errorf("the needs-attention queue still has %d rows", n)
	}
}

// exportDownload: an export requested in the console is followed to its end; the
// file the browser downloads has the sha256 the console shows and the API gives.
func (s *consoleSuite) exportDownload(t *testing.T) {
	p := s.open(t, "/tenants/tenant_techstart/exports", "exports")
	p.Click("Request export", browser.TestID("action-export"))
	if p.Count("action-dialog") > 0 {
		p.Click("the dialog's confirm", browser.TestID("dialog-confirm"))
	}
	row := `[data-testid="export-row"][data-status="completed"]`
	p.WaitFor(90*time.Second, "a completed export", fmt.Sprintf(`!!document.querySelector(%q)`, row))
	exportID := attr(p, row, "data-export-id")
	shown := p.Text("export-sha256")
	s.shot(t, p, "exports")
	var job struct {
		SHA256    string `json:"sha256"`
		SizeBytes int64  `json:"size_bytes"`
	}
	s.apiGet(t, "/tenants/tenant_techstart/exports/"+exportID, &job)
	d := p.Download(func() { p.Click("the download link", browser.TestID("export-download")) })
	sum := sha256.Sum256(d.Data)
	got := hex.EncodeToString(sum[:])
	if got != job.SHA256 || !strings.Contains(shown, job.SHA256) || int64(len(d.Data)) != job.SizeBytes {
		t.Errorf("downloaded %d bytes with sha256 %s; the console shows %q, the API %s (%d bytes)", len(d.Data), got, shown, job.SHA256, job.SizeBytes)
	}
}

// tenantIsolated: a tenant's own session sees its tenant and nothing of another's:
// no overview, and another tenant's page is refused with a sentence.
func (s *consoleSuite) tenantIsolated(t *testing.T) {
	p := s.b.NewPage(t)
	p.Go(s.console + "?login_hint=" + url.QueryEscape("tenant:tenant_acme"))
	waitView(t, p, "tenant")
	if who := p.Text("whoami"); who != "tenant tenant_acme" {
		t.Errorf("signed in as %q, want tenant tenant_acme", who)
	}
	if id := attr(p, `main[data-view="tenant"]`, "data-tenant-id"); id != "tenant_acme" {
		t.Errorf("a tenant session lands on %q, want its own tenant", id)
	}
	p.Go(s.console + "/tenants/tenant_enterprise")
	p.WaitTestID("problem")
	problem := p.Text("problem")
	var body string
	p.Eval(`document.body.innerText`, &body)
	if strings.Contains(body, "Enterprise Solutions") || strings.Contains(body, "professional") {
		t.Errorf("tenant_acme's session shows tenant_enterprise's data: %q", body)
	}
	if strings.Contains(problem, "{") || problem == "" {
		t.Errorf("the refusal is not a sentence: %q", problem)
	}
	p.Go(s.console + "/tenants")
	p.Wait("the tenant list loaded (or refused)", `!!document.querySelector('main[data-view][aria-busy="false"]') || !!document.querySelector('[data-testid="problem"]')`)
	var others []string
	p.Eval(`[...document.querySelectorAll('[data-testid="tenant-row"]')].map(r => r.getAttribute('data-tenant-id')).filter(id => id !== 'tenant_acme')`, &others)
	if len(others) > 0 {
		t.Errorf("tenant_acme's session lists other tenants: %v", others)
	}
	if n := p.Count("stat-ACTIVE"); n != 0 {
		t.Errorf("a tenant session shows the operator's overview counts")
	}
}

// certificate: a purged tenant's deletion certificate is rendered, and the file the
// console saves is the API's signed JSON byte for byte.
func (s *consoleSuite) certificate(t *testing.T) {
	const id = "tenant_suspended"
	if res := call(t, "DELETE", s.api+"/tenants/"+id, s.admin, ""); res.status != 202 {
		t.Fatalf("delete %s: %d %s", id, res.status, res.raw)
	}
	waitState(t, s.api, s.admin, id, "DELETED")
	var stderr bytes.Buffer
	if code := run([]string{"end-retention", "--tenant", id, "--state-dir", s.r.StateDir}, io.Discard, &stderr); code != 0 {
		t.Fatalf("end-retention: %s", stderr.String())
	}
	if code := run([]string{"fire", "PurgeSweepFunction", "--state-dir", s.r.StateDir}, io.Discard, &stderr); code != 0 {
		t.Fatalf("fire PurgeSweepFunction: %s", stderr.String())
	}
	waitState(t, s.api, s.admin, id, "PURGED")
	res := call(t, "GET", s.api+"/tenants/"+id+"/deletion-certificate", s.admin, "")
	if res.status != 200 {
		t.Fatalf("certificate: %d %s", res.status, res.raw)
	}
	p := s.open(t, "/tenants/"+id+"/certificate", "certificate")
	if got := p.Text("cert-tenant"); !strings.Contains(got, id) {
		t.Errorf("certificate of %q, want %s", got, id)
	}
	if sha, _ := res.body["sha256"].(string); sha == "" || !strings.Contains(p.Text("cert-sha256"), sha) {
		t.Errorf("certificate sha256 shown %q, API %v", p.Text("cert-sha256"), res.body["sha256"])
	}
	// What outlives the purge reads as sentences, its dates as dates, not RFC 3339.
	for _, r := range p.Texts("cert-retained") {
		if rfc3339.MatchString(r) || !strings.HasSuffix(r, ".") {
			t.Errorf("retained item %q: want a sentence with a readable date", r)
		}
	}
	s.shot(t, p, "certificate")
	d := p.Download(func() { p.Click("Download signed JSON", browser.TestID("cert-download")) })
	if d.Name != "deletion-certificate-"+id+".json" || string(d.Data) != res.raw {
		t.Errorf("downloaded %s (%d bytes), want deletion-certificate-%s.json equal to the API's body (%d bytes)", d.Name, len(d.Data), id, len(res.raw))
	}
}
