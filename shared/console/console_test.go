package console_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/console"
)

func newServer(t *testing.T) (*console.Server, *httptest.Server) {
	t.Helper()
	s, err := console.New(console.Config{Issuer: "https://idp.example.com/pool", ClientID: "console-client"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestIndexForClientRoutes: every console path that is not an asset or the config is
// index.html, with the versioned asset paths filled in and the security headers set.
func TestIndexForClientRoutes(t *testing.T) {
	s, ts := newServer(t)
	for _, p := range []string{"/console", "/console/", "/console/tenants", "/console/tenants/tenant_acme", "/console/operations/op_1", "/console/callback"} {
		res, body := get(t, ts.URL+p, nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if strings.Contains(body, "__ASSETS__") || !strings.Contains(body, `src="/console/v/`+s.Version()+`/app.js"`) {
			t.Fatalf("%s: index does not point at the versioned assets:\n%s", p, body)
		}
		if res.Header.Get("Content-Security-Policy") != s.CSP() || res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" {
			t.Fatalf("%s: headers %v", p, res.Header)
		}
		if res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: headers %v", p, res.Header)
		}
	}
}

// TestOnlyConsolePaths: paths that merely start with /console are not the console's.
func TestOnlyConsolePaths(t *testing.T) {
	s, _ := newServer(t)
	for _, p := range []string{"/consolex", "/tenants", "/"} {
		if r := s.Serve(p, "", "", http.Header{}); r.Status != http.StatusNotFound {
			t.Errorf("%s: %d", p, r.Status)
		}
	}
	// Under a stage the index points at the stage's assets.
	r := s.Serve("/console", "/dev", "", http.Header{})
	if r.Status != 200 || !strings.Contains(string(r.Body), `"/dev/console/v/`+s.Version()+`/app.css"`) {
		t.Fatalf("stage index: %d\n%s", r.Status, r.Body)
	}
}

// TestAssetsImmutable: each asset is served under its version with its content type
// and a year of immutable caching; its ETag answers 304; another version is a 404.
func TestAssetsImmutable(t *testing.T) {
	s, ts := newServer(t)
	names, err := console.Assets()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for _, n := range names {
		if n == "index.html" {
			continue
		}
		u := ts.URL + "/console/v/" + s.Version() + "/" + n
		res, body := get(t, u, nil)
		if res.StatusCode != 200 || body == "" {
			t.Fatalf("%s: %d", n, res.StatusCode)
		}
		if ct := want[filepath.Ext(n)]; ct != "" && res.Header.Get("Content-Type") != ct {
			t.Errorf("%s: Content-Type %q, want %q", n, res.Header.Get("Content-Type"), ct)
		}
		if res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", n, res.Header.Get("Cache-Control"))
		}
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no CSP", n)
		}
		res2, body2 := get(t, u, map[string]string{"If-None-Match": res.Header.Get("ETag")})
		if res2.StatusCode != http.StatusNotModified || body2 != "" {
			t.Errorf("%s: If-None-Match answered %d with %d bytes", n, res2.StatusCode, len(body2))
		}
		if res3, _ := get(t, ts.URL+"/console/v/0000000000000000/"+n, nil); res3.StatusCode != 404 || res3.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s under another version: %d %q", n, res3.StatusCode, res3.Header.Get("Cache-Control"))
		}
	}
	if res, _ := get(t, ts.URL+"/console/v/"+s.Version()+"/missing.js", nil); res.StatusCode != 404 {
		t.Errorf("missing asset: %d", res.StatusCode)
	}
}

func TestConfigJSON(t *testing.T) {
	s, err := console.New(console.Config{Issuer: "http://127.0.0.1/devstack", ClientID: "c1", DiscoveryURL: "http://127.0.0.1:3000/.well-known/openid-configuration"})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Serve("/console/config.json", "/dev", "", http.Header{})
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", r.Status, r.Header)
	}
	var cfg map[string]string
	if err := json.Unmarshal(r.Body, &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"issuer": "http://127.0.0.1/devstack", "client_id": "c1", "discovery_url": "http://127.0.0.1:3000/.well-known/openid-configuration",
		"scopes": "openid", "api_base": "/dev", "console_base": "/dev/console", "version": s.Version()}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config %s = %q, want %q", k, cfg[k], v)
		}
	}
	// Both origins may be connected to, nothing else.
	if !strings.Contains(s.CSP(), "connect-src 'self' http://127.0.0.1 http://127.0.0.1:3000;") {
		t.Errorf("CSP %q", s.CSP())
	}
	// A token endpoint on another origin (Cognito's hosted domain) is added when named.
	c, err := console.New(console.Config{Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x", ClientID: "c",
		TokenOrigin: "https://tenantflow.auth.eu-west-1.amazoncognito.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.CSP(), "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com https://tenantflow.auth.eu-west-1.amazoncognito.com;") {
		t.Errorf("CSP %q", c.CSP())
	}
}

// TestCSPIsStrict: no inline script or style, no eval, nothing from elsewhere.
func TestCSPIsStrict(t *testing.T) {
	s, _ := newServer(t)
	csp := s.CSP()
	for _, must := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self' https://idp.example.com;", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, must) {
			t.Errorf("CSP %q lacks %q", csp, must)
		}
	}
	tokens := strings.Fields(strings.ReplaceAll(csp, ";", " "))
	for _, never := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "https:", "http:", "data:"} {
		if slices.Contains(tokens, never) && !(never == "data:" && strings.Contains(csp, "img-src 'self' data:;")) {
			t.Errorf("CSP %q allows %q", csp, never)
		}
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for name, cfg := range map[string]console.Config{
		"no issuer":        {ClientID: "c"},
		"no client":        {Issuer: "https://i.example"},
		"relative issuer":  {Issuer: "/devstack", ClientID: "c"},
		"ftp discovery":    {Issuer: "https://i.example", ClientID: "c", DiscoveryURL: "ftp://x/y"},
		"bad token origin": {Issuer: "https://i.example", ClientID: "c", TokenOrigin: "not a url"},
		"issuer no scheme": {Issuer: "i.example", ClientID: "c"},
	} {
		if _, err := console.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// sourceFiles lists the files of the assets directory on disk.
func sourceFiles(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := fs.WalkDir(os.DirFS("assets"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join("assets", p))
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEveryAssetEmbedded: the binary holds every file of assets/, and every module
// import and every reference of index.html names one of them.
func TestEveryAssetEmbedded(t *testing.T) {
	src := sourceFiles(t)
	names, err := console.Assets()
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for n := range src {
		onDisk = append(onDisk, n)
	}
	slices.Sort(onDisk)
	if !slices.Equal(onDisk, names) {
		t.Fatalf("embedded %v, on disk %v", names, onDisk)
	}
	imports := regexp.MustCompile(`(?m)^import[^'"]*['"]\./([^'"]+)['"]`)
	refs := regexp.MustCompile(`__ASSETS__/([A-Za-z0-9_.-]+)`)
	for n, b := range src {
		var found [][]string
		switch filepath.Ext(n) {
		case ".js":
			found = imports.FindAllStringSubmatch(string(b), -1)
		case ".html":
			found = refs.FindAllStringSubmatch(string(b), -1)
			if len(found) < 2 {
				t.Errorf("%s references %d assets, want the stylesheet and the script", n, len(found))
			}
		}
		for _, m := range found {
			if !slices.Contains(names, m[1]) {
				t.Errorf("%s refers to %s, which is not embedded", n, m[1])
			}
		}
	}
}

// TestNoAbsoluteURLs: the console fetches nothing from anywhere but its own API and
// the issuer of config.json, so no asset may name an absolute http(s) URL.
func TestNoAbsoluteURLs(t *testing.T) {
	abs := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|https?://`)
	for n, b := range sourceFiles(t) {
		for i, line := range strings.Split(string(b), "\n") {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "//") || strings.HasPrefix(trimmed, "/*") || strings.HasPrefix(trimmed, "*") {
				continue // comments
			}
			if m := abs.FindString(line); m != "" {
				t.Errorf("%s:%d: absolute URL %q", n, i+1, m)
			}
		}
	}
}

// TestAssetBudget keeps the console small: every embedded file together, uncompressed.
func TestAssetBudget(t *testing.T) {
	total := 0
	for n, b := range sourceFiles(t) {
		total += len(b)
		t.Logf("%-12s %6d bytes", n, len(b))
	}
	t.Logf("total %d of %d bytes", total, console.BudgetBytes)
	if total > console.BudgetBytes {
		t.Fatalf("the console's assets weigh %d bytes, over the budget of %d", total, console.BudgetBytes)
	}
}
