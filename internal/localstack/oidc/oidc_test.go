package oidc_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/oidc"
)

const (
	issuer   = "http://127.0.0.1/devstack"
	client   = "tenantflow-console"
	redirect = "http://127.0.0.1:3000/console/callback"
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-bytes"
)

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func setup(t *testing.T) (*jwtauth.Authority, *httptest.Server) {
	t.Helper()
	auth, err := jwtauth.New(jwtauth.Config{Issuer: issuer, Audience: []string{"tenantflow"}})
	if err != nil {
		t.Fatal(err)
	}
	// The provider needs the server's URL, so it is built once the server runs.
	var p *oidc.Provider
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.ServeHTTP(w, r) }))
	p = oidc.New(ts.URL, auth, nil)
	t.Cleanup(ts.Close)
	return auth, ts
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize runs the authorization request and returns the redirect's query.
func authorize(t *testing.T, ts *httptest.Server, params map[string]string) url.Values {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect}, "state": {"st1"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	res, err := noRedirect.Get(ts.URL + oidc.AuthorizePath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d, want a redirect", res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		t.Fatalf("redirected to %s", got)
	}
	return loc.Query()
}

func token(t *testing.T, ts *httptest.Server, form url.Values) (int, map[string]any) {
	t.Helper()
	res, err := http.PostForm(ts.URL+oidc.TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func redeem(code, v string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {client}, "code_verifier": {v}}
}

func TestDiscovery(t *testing.T) {
	_, ts := setup(t)
	res, err := http.Get(ts.URL + oidc.DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != issuer || d["authorization_endpoint"] != ts.URL+oidc.AuthorizePath || d["token_endpoint"] != ts.URL+oidc.TokenPath {
		t.Fatalf("discovery %v", d)
	}
	if m, _ := d["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Fatalf("challenge methods %v", d["code_challenge_methods_supported"])
	}
}

// TestCodeFlowOperatorAndTenant: the code redeemed with the right verifier gives a
// token the local authorizer accepts, for the operator or for the hinted tenant.
func TestCodeFlowOperatorAndTenant(t *testing.T) {
	auth, ts := setup(t)
	for hint, want := range map[string]map[string]string{
		"":                   {"sub": jwtauth.OperatorSubject, "scope": jwtauth.AdminScope},
		"operator":           {"sub": jwtauth.OperatorSubject, "scope": jwtauth.AdminScope},
		"tenant:tenant_acme": {"sub": "user@tenant_acme", jwtauth.TenantIDClaim: "tenant_acme"},
	} {
		q := authorize(t, ts, map[string]string{"login_hint": hint})
		if q.Get("state") != "st1" || q.Get("code") == "" {
			t.Fatalf("%q: redirect query %v", hint, q)
		}
		status, out := token(t, ts, redeem(q.Get("code"), verifier))
		if status != 200 || out["token_type"] != "Bearer" {
			t.Fatalf("%q: token %d %v", hint, status, out)
		}
		claims, err := auth.Verify("Bearer " + out["access_token"].(string))
		if err != nil {
			t.Fatalf("%q: the local authorizer refuses the token: %v", hint, err)
		}
		for k, v := range want {
			if got, _ := claims[k].(string); got != v {
				t.Errorf("%q: claim %s = %q, want %q", hint, k, got, v)
			}
		}
		if hint == "tenant:tenant_acme" && claims["scope"] != nil {
			t.Errorf("a tenant token carries scope %v", claims["scope"])
		}
		// A code works once.
		if status, out := token(t, ts, redeem(q.Get("code"), verifier)); status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("%q: second redemption %d %v", hint, status, out)
		}
	}
}

// TestWrongVerifierRefused: PKCE is checked, and a failed attempt burns the code.
func TestWrongVerifierRefused(t *testing.T) {
	_, ts := setup(t)
	q := authorize(t, ts, nil)
	other := strings.Repeat("a", 43)
	status, out := token(t, ts, redeem(q.Get("code"), other))
	if status != 400 || out["error"] != "invalid_grant" || !strings.Contains(out["error_description"].(string), "code_verifier") {
		t.Fatalf("wrong verifier: %d %v", status, out)
	}
	if status, out := token(t, ts, redeem(q.Get("code"), verifier)); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("the right verifier after a wrong one: %d %v", status, out)
	}
	// No verifier at all, another redirect URI, another client.
	for name, mutate := range map[string]func(url.Values){
		"no verifier":     func(f url.Values) { f.Del("code_verifier") },
		"other redirect":  func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:3000/elsewhere") },
		"other client":    func(f url.Values) { f.Set("client_id", "someone") },
		"other grant":     func(f url.Values) { f.Set("grant_type", "client_credentials") },
		"unknown code":    func(f url.Values) { f.Set("code", "nope") },
		"short verifier!": func(f url.Values) { f.Set("code_verifier", "abc") },
	} {
		q := authorize(t, ts, nil)
		f := redeem(q.Get("code"), verifier)
		mutate(f)
		if status, out := token(t, ts, f); status != 400 || out["error"] == nil {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
}

// TestAuthorizeRefusals: no PKCE or plain PKCE goes back as an error; a redirect URI
// off this machine is never redirected to.
func TestAuthorizeRefusals(t *testing.T) {
	_, ts := setup(t)
	for name, params := range map[string]map[string]string{
		"no challenge":  {"code_challenge": ""},
		"plain method":  {"code_challenge_method": "plain"},
		"token flow":    {"response_type": "token"},
		"bad hint":      {"login_hint": "root"},
		"bad tenant id": {"login_hint": "tenant:A B"},
	} {
		q := authorize(t, ts, params)
		if q.Get("error") == "" || q.Get("code") != "" || q.Get("state") != "st1" {
			t.Errorf("%s: redirect query %v", name, q)
		}
	}
	for _, ru := range []string{"https://evil.example/cb", "javascript:alert(1)", ""} {
		q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {ru}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
		res, err := noRedirect.Get(ts.URL + oidc.AuthorizePath + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %q: %d Location %q", ru, res.StatusCode, res.Header.Get("Location"))
		}
	}
}
