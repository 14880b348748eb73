// Package console serves the operator console: a few static files (HTML, CSS and
// plain JavaScript modules, no build step) embedded in the API function's binary and
// answered on the HTTP API's /console routes, which carry no JWT authorizer. The
// console itself holds no data and no secret: it signs the user in against the
// deployment's OpenID Connect issuer (authorization code with PKCE, in the browser)
// and then calls the same HTTP API with that user's bearer token, so the API's
// scoping is the console's scoping.
//
// URLs, below the API's base path (the stage prefix, if any):
//
//	/console                  index.html: the console's start (its overview)
//	/console/config.json      the runtime configuration (issuer, client id, bases)
//	/console/v/<version>/...  the assets, immutable: <version> is a hash of them all
//	/console/...              anything else is index.html too (client-side routes)
//
// The start is /console, not /console/: a greedy {proxy+} route needs at least one
// segment, so /console/ may reach no route at all, and the console never links there.
//
// Every answer carries a strict Content-Security-Policy: scripts, styles and images
// only from the console itself, and connections only to the API and the issuer.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
)

//go:embed assets
var embedded embed.FS

// BudgetBytes is the most the embedded assets may weigh together, uncompressed. The
// console is read by operators on any network and must stay small enough to read
// and review; a test keeps the budget.
const BudgetBytes = 150 * 1024

// Prefix is the console's path below the API base.
const Prefix = "/console"

// assetsPlaceholder is replaced in index.html by the versioned asset path.
const assetsPlaceholder = "__ASSETS__"

// Config is the console's runtime configuration: ApiFunction's CONSOLE_* variables.
type Config struct {
	// Issuer is the OpenID Connect issuer the API's JWT authorizer trusts (JwtIssuer).
	Issuer string
	// ClientID is the console's public client at the issuer (no secret: PKCE).
	ClientID string
	// DiscoveryURL is where the issuer's metadata is; empty means the standard
	// Issuer + "/.well-known/openid-configuration".
	DiscoveryURL string
	// Scopes are requested at sign-in, space separated; empty means "openid".
	Scopes string
	// TokenOrigin is the origin of the issuer's token endpoint when it is neither the
	// issuer's nor the discovery document's (Cognito's hosted domain): the browser
	// POSTs the code there, so connect-src must allow it. Empty adds nothing.
	TokenOrigin string
}

// ConfigFromEnv reads Config from CONSOLE_ISSUER, CONSOLE_CLIENT_ID,
// CONSOLE_DISCOVERY_URL, CONSOLE_SCOPES and CONSOLE_TOKEN_ORIGIN.
func ConfigFromEnv(getenv func(string) string) Config {
	return Config{
		Issuer: getenv("CONSOLE_ISSUER"), ClientID: getenv("CONSOLE_CLIENT_ID"),
		DiscoveryURL: getenv("CONSOLE_DISCOVERY_URL"), Scopes: getenv("CONSOLE_SCOPES"),
		TokenOrigin: getenv("CONSOLE_TOKEN_ORIGIN"),
	}
}

// Server answers the console's routes. It is immutable once built and safe for
// concurrent use.
type Server struct {
	cfg     Config
	version string
	files   map[string]file // by name below assets/, e.g. "app.js"
	index   []byte          // index.html with the placeholder left in
	csp     string
}

type file struct {
	body  []byte
	ctype string
	etag  string
}

// New checks cfg and loads the embedded assets. A console without an issuer or a
// client id could not sign anyone in, so that is an error at cold start.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("console: issuer and client id are required (CONSOLE_ISSUER, CONSOLE_CLIENT_ID)")
	}
	if cfg.DiscoveryURL == "" {
		cfg.DiscoveryURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
	}
	if cfg.Scopes == "" {
		cfg.Scopes = "openid"
	}
	origins := []string{"'self'"}
	for _, raw := range []string{cfg.Issuer, cfg.DiscoveryURL, cfg.TokenOrigin} {
		if raw == "" {
			continue
		}
		o, err := origin(raw)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		if !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	s := &Server{cfg: cfg, files: map[string]file{}}
	names, err := Assets()
	if err != nil {
		return nil, err
	}
	all := sha256.New()
	for _, name := range names {
		body, err := embedded.ReadFile("assets/" + name)
		if err != nil {
			return nil, err
		}
		if name == "index.html" {
			s.index = body
			continue
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) { // the system's MIME table may lack these or differ
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		if ctype == "" {
			return nil, fmt.Errorf("console: no content type for asset %s", name)
		}
		fmt.Fprintf(all, "%s\x00%d\x00", name, len(body))
		all.Write(body)
		s.files[name] = file{body: body, ctype: ctype, etag: etag(body)}
	}
	if s.index == nil {
		return nil, errors.New("console: assets/index.html is not embedded")
	}
	s.version = hex.EncodeToString(all.Sum(nil))[:16]
	s.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
		"connect-src " + strings.Join(origins, " ") + "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return s, nil
}

// Assets lists the embedded files by name below assets/, sorted.
func Assets() ([]string, error) {
	var names []string
	err := fs.WalkDir(embedded, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, strings.TrimPrefix(p, "assets/"))
		return nil
	})
	sort.Strings(names)
	return names, err
}

// Version is the hash of every asset, the immutable path segment of /console/v/.
func (s *Server) Version() string { return s.version }

// CSP is the Content-Security-Policy of every answer.
func (s *Server) CSP() string { return s.csp }

// Response is one answer of the console.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Serve answers a GET of p, the request path below the API base (starting with
// /console); base is the API's base path as the browser sees it ("" or "/<stage>"),
// query the raw query string, and reqHeader the request's headers (If-None-Match).
func (s *Server) Serve(p, base, query string, reqHeader http.Header) Response {
	h := http.Header{}
	h.Set("Content-Security-Policy", s.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	// The sign-in returns with ?code= in the URL: no Referer may carry it away.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")

	rest, ok := strings.CutPrefix(p, Prefix)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return s.notFound(h)
	}
	switch {
	case rest == "/config.json":
		body, _ := json.Marshal(map[string]string{
			"issuer": s.cfg.Issuer, "client_id": s.cfg.ClientID, "discovery_url": s.cfg.DiscoveryURL,
			"scopes": s.cfg.Scopes, "api_base": base, "console_base": base + Prefix, "version": s.version,
		})
		return s.conditional(h, reqHeader, "application/json", body, "no-cache")
	case strings.HasPrefix(rest, "/v/"):
		ver, name, _ := strings.Cut(strings.TrimPrefix(rest, "/v/"), "/")
		f, found := s.files[name]
		if ver != s.version || !found {
			// An old version (a page loaded before a deployment) finds nothing rather
			// than today's file under yesterday's name; the page reload fixes it.
			return s.notFound(h)
		}
		return s.conditional(h, reqHeader, f.ctype, f.body, "public, max-age=31536000, immutable")
	default:
		body := bytes.ReplaceAll(s.index, []byte(assetsPlaceholder), []byte(base+Prefix+"/v/"+s.version))
		return s.conditional(h, reqHeader, "text/html; charset=utf-8", body, "no-cache")
	}
}

func (s *Server) conditional(h, reqHeader http.Header, ctype string, body []byte, cache string) Response {
	tag := etag(body)
	h.Set("ETag", tag)
	h.Set("Cache-Control", cache)
	if inm := reqHeader.Get("If-None-Match"); inm != "" && matchesETag(inm, tag) {
		return Response{Status: http.StatusNotModified, Header: h}
	}
	h.Set("Content-Type", ctype)
	return Response{Status: http.StatusOK, Header: h, Body: body}
}

func (s *Server) notFound(h http.Header) Response {
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	return Response{Status: http.StatusNotFound, Header: h, Body: []byte("not found\n")}
}

// ServeHTTP serves the console at /console on an API without a base path (tests,
// local tools). GET and HEAD only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	res := s.Serve(r.URL.Path, "", r.URL.RawQuery, r.Header)
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.Status)
	if r.Method == http.MethodGet {
		_, _ = w.Write(res.Body)
	}
}

func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

func matchesETag(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

// origin returns scheme://host[:port] of an absolute http(s) URL.
func origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
