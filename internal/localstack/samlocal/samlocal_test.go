package samlocal

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// TestWriteTemplate: the copy sam runs differs from template.yaml only in each
// function's architecture, code and build metadata, and still resolves strictly.
func TestWriteTemplate(t *testing.T) {
	root := testenv.RepoRoot()
	dst := filepath.Join(t.TempDir(), "template.yaml")
	if err := WriteTemplate(filepath.Join(root, "template.yaml"), dst, "/builds"); err != nil {
		t.Fatal(err)
	}
	orig, err := samtemplate.Load(filepath.Join(root, "template.yaml"), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	local, err := samtemplate.Load(dst, samtemplate.Options{})
	if err != nil {
		t.Fatalf("the copy does not resolve: %v", err)
	}
	want, _ := orig.Functions()
	got, err := local.Functions()
	if err != nil || len(got) != len(want) || len(got) == 0 {
		t.Fatalf("functions %d, want %d (%v)", len(got), len(want), err)
	}
	for i, f := range got {
		w := want[i]
		if f.CodeURI != "/builds/"+f.LogicalID || len(f.Architectures) != 1 || f.Architectures[0] != LambdaArch() || f.BuildMethod != "" {
			t.Errorf("%s: CodeUri %q, Architectures %v, BuildMethod %q", f.LogicalID, f.CodeURI, f.Architectures, f.BuildMethod)
		}
		if len(f.Environment) != len(w.Environment) || f.Timeout != w.Timeout || f.MemorySize != w.MemorySize || f.Handler != w.Handler {
			t.Errorf("%s differs beyond code and architecture", f.LogicalID)
		}
		for k, v := range w.Environment {
			if f.Environment[k] != v {
				t.Errorf("%s: %s = %q, want %q", f.LogicalID, k, f.Environment[k], v)
			}
		}
	}
	raw, _ := os.ReadFile(dst)
	if !strings.Contains(string(raw), "!Ref") {
		t.Error("the copy lost the CloudFormation short tags")
	}
}

// TestTemplateDeclaresEndpoints: --env-vars sets only declared variables, so every
// function must declare the endpoint variables, empty (unset for the SDK) by default.
func TestTemplateDeclaresEndpoints(t *testing.T) {
	tpl, err := samtemplate.Load(filepath.Join(testenv.RepoRoot(), "template.yaml"), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fns, _ := tpl.Functions()
	for _, f := range fns {
		for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN", "STRIPE_API_BASE"} {
			if v, ok := f.Environment[k]; !ok || v != "" {
				t.Errorf("%s: %s declared %v with %q, want declared and empty", f.LogicalID, k, ok, v)
			}
		}
	}
}

func TestLastJSONAndErrorDocument(t *testing.T) {
	out := []byte("some line\n{\"statusCode\":200}\n\n")
	if got := string(lastJSON(out)); got != `{"statusCode":200}` {
		t.Errorf("lastJSON = %q", got)
	}
	if lastJSON([]byte("no json here")) != nil {
		t.Error("lastJSON found JSON in plain text")
	}
	if !isErrorDocument([]byte(`{"errorMessage":"boom","errorType":"wrapError"}`)) {
		t.Error("error document not recognised")
	}
	if isErrorDocument([]byte(`{"errorMessage":"x","errorType":"y","statusCode":500}`)) {
		t.Error("an answer with more fields is not an error document")
	}
}

func TestForwarder(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong "+r.URL.Path) }))
	defer srv.Close()
	f, relayed, err := forward("127.0.0.1", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if host, _, _ := net.SplitHostPort(strings.TrimPrefix(relayed, "http://")); host != "127.0.0.1" || relayed == srv.URL {
		t.Fatalf("relayed URL %q", relayed)
	}
	resp, err := http.Get(relayed + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "pong /ping" {
		t.Errorf("body %q", body)
	}
}
