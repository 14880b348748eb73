// Package oidc is devstack's stand-in for the deployment's OpenID Connect provider,
// so that the operator console's real sign-in code path (authorization code with
// PKCE S256, endpoints from discovery) runs on a developer's machine and in tests.
//
// It serves three endpoints next to the local HTTP API:
//
//	GET  /.well-known/openid-configuration   discovery
//	GET  /oauth2/authorize                   approves at once and redirects with a code
//	POST /oauth2/token                       redeems the code for tokens, PKCE verified
//
// There is no login form: /oauth2/authorize signs in as the operator, or as a
// tenant's own user when login_hint is "tenant:<id>". The tokens are minted by the
// local JWT authority (internal/localstack/jwtauth) with the issuer and audience the
// local gateway checks, so the API treats them exactly like the tokens of `devstack
// token`. Nothing here runs in a deployment.
package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Paths of the endpoints.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	AuthorizePath = "/oauth2/authorize"
	TokenPath     = "/oauth2/token"
	// JWKSPath is where the local gateway publishes the signing key.
	JWKSPath = "/.well-known/jwks.json"
)

// codeTTL is how long an authorization code may wait to be redeemed.
const codeTTL = time.Minute

// tokenTTL is the lifetime of the tokens the console gets.
const tokenTTL = time.Hour

// Minter signs claims into a JWT (*jwtauth.Authority).
type Minter interface {
	Mint(jwtauth.Claims) (string, error)
	Issuer() string
}

// Provider is the local OpenID provider. Build it with New; it is safe for concurrent use.
type Provider struct {
	base   string
	minter Minter
	now    func() time.Time

	mu    sync.Mutex
	codes map[string]grant
}

type grant struct {
	clientID, redirectURI, challenge string
	claims                           jwtauth.Claims
	expires                          time.Time
}

// New returns a provider whose endpoints live at baseURL (the local API's URL, e.g.
// http://127.0.0.1:3000) and whose tokens m signs. now may be nil (time.Now).
func New(baseURL string, m Minter, now func() time.Time) *Provider {
	if now == nil {
		now = time.Now
	}
	return &Provider{base: strings.TrimSuffix(baseURL, "/"), minter: m, now: now, codes: map[string]grant{}}
}

// DiscoveryURL is where the console finds this provider.
func (p *Provider) DiscoveryURL() string { return p.base + DiscoveryPath }

// Handles reports whether r is for one of the provider's endpoints.
func Handles(r *http.Request) bool {
	switch r.URL.Path {
	case DiscoveryPath, AuthorizePath, TokenPath:
		return true
	}
	return false
}

// ServeHTTP serves the three endpoints; anything else is a 404.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == DiscoveryPath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		p.discovery(w)
	case r.URL.Path == AuthorizePath && r.Method == http.MethodGet:
		p.authorize(w, r)
	case r.URL.Path == TokenPath && r.Method == http.MethodPost:
		p.token(w, r)
	case r.URL.Path == TokenPath && r.Method == http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (p *Provider) discovery(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.minter.Issuer(),
		"authorization_endpoint":                p.base + AuthorizePath,
		"token_endpoint":                        p.base + TokenPath,
		"jwks_uri":                              p.base + JWKSPath,
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{jwtauth.Algorithm},
		"scopes_supported":                      []string{"openid", jwtauth.AdminScope},
		// Not a standard field: tells the console it may offer "view as tenant",
		// which this provider serves through login_hint=tenant:<id>.
		"login_hint_tenant_supported": true,
	})
}

var challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// authorize approves at once. Errors in client_id or redirect_uri are shown here
// (redirecting to an unchecked URI would make this an open redirector); the others go
// back to the client as error=... on the redirect, as RFC 6749 says.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if clientID == "" {
		http.Error(w, "client_id is required", http.StatusBadRequest)
		return
	}
	ru, err := url.Parse(redirectURI)
	if err != nil || ru.Scheme != "http" || (ru.Hostname() != "127.0.0.1" && ru.Hostname() != "localhost") || ru.Fragment != "" {
		http.Error(w, "redirect_uri must be an http URL on 127.0.0.1 or localhost (this is the local provider)", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		v := ru.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		ru.RawQuery = v.Encode()
		http.Redirect(w, r, ru.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	if q.Get("code_challenge_method") != "S256" || !challengeRE.MatchString(q.Get("code_challenge")) {
		fail("invalid_request", "PKCE is required: code_challenge (S256, base64url of 32 bytes) and code_challenge_method=S256")
		return
	}
	claims, err := claimsFor(q.Get("login_hint"))
	if err != nil {
		fail("invalid_request", err.Error())
		return
	}
	code, err := randomToken()
	if err != nil {
		fail("server_error", "no randomness")
		return
	}
	p.mu.Lock()
	now := p.now()
	for c, g := range p.codes { // forget codes nobody redeemed
		if now.After(g.expires) {
			delete(p.codes, c)
		}
	}
	p.codes[code] = grant{clientID: clientID, redirectURI: redirectURI, challenge: q.Get("code_challenge"), claims: claims, expires: now.Add(codeTTL)}
	p.mu.Unlock()
	v := ru.Query()
	v.Set("code", code)
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	ru.RawQuery = v.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

// claimsFor reads login_hint: empty or "operator" is the operator, "tenant:<id>" a
// user of that tenant.
func claimsFor(hint string) (jwtauth.Claims, error) {
	switch {
	case hint == "" || hint == jwtauth.OperatorSubject:
		return jwtauth.OperatorClaims(), nil
	case strings.HasPrefix(hint, "tenant:"):
		id := strings.TrimPrefix(hint, "tenant:")
		if err := tenant.ValidateID(id); err != nil {
			return nil, fmt.Errorf("login_hint tenant:%s is not a tenant id", id)
		}
		return jwtauth.TenantClaims(id), nil
	}
	return nil, fmt.Errorf(`login_hint must be "operator" or "tenant:<id>"`)
}

// token redeems a code once: the client id and redirect URI must be the ones the
// code was issued to, and SHA-256 of code_verifier must be its code_challenge.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", "the body is not a form")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "authorization_code" {
		tokenError(w, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	p.mu.Lock()
	g, ok := p.codes[f.Get("code")]
	delete(p.codes, f.Get("code")) // one use, whatever comes next
	p.mu.Unlock()
	switch {
	case !ok || p.now().After(g.expires):
		tokenError(w, "invalid_grant", "the code is unknown, used or expired")
		return
	case f.Get("client_id") != g.clientID:
		tokenError(w, "invalid_grant", "the code was issued to another client")
		return
	case f.Get("redirect_uri") != g.redirectURI:
		tokenError(w, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	case !verifierRE.MatchString(f.Get("code_verifier")):
		tokenError(w, "invalid_grant", "code_verifier must be 43-128 unreserved characters")
		return
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		tokenError(w, "invalid_grant", "the code_verifier does not match the code_challenge")
		return
	}
	now := p.now()
	access := jwtauth.Claims{"exp": now.Add(tokenTTL), "iat": now, "nbf": now, "client_id": g.clientID}
	for k, v := range g.claims {
		access[k] = v
	}
	at, err := p.minter.Mint(access)
	if err != nil {
		tokenError(w, "server_error", "could not sign the token")
		return
	}
	idt, err := p.minter.Mint(jwtauth.Claims{"sub": g.claims["sub"], "aud": g.clientID, "exp": now.Add(tokenTTL), "iat": now, "nbf": now})
	if err != nil {
		tokenError(w, "server_error", "could not sign the token")
		return
	}
	scope := "openid"
	if s, ok := g.claims["scope"].(string); ok && s != "" {
		scope += " " + s
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "id_token": idt, "token_type": "Bearer", "expires_in": int(tokenTTL.Seconds()), "scope": scope,
	})
}

func tokenError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
