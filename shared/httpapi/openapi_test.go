package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"gopkg.in/yaml.v3"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// openapi.yaml at the repository root describes every route of the template and every
// answer of the handler: TestOpenAPIRoutesMatchTemplate compares its paths with the
// HttpApi events of every function in template.yaml (read at test time, so a route
// added anywhere must be described), and TestFixtures validates each fixture's answer
// against it (validateAgainstSpec).

var (
	specOnce sync.Once
	spec     *openapi3.T
	specErr  error
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		l := openapi3.NewLoader()
		spec, specErr = l.LoadFromFile(filepath.Join(testenv.RepoRoot(), "openapi.yaml"))
		if specErr == nil {
			specErr = spec.Validate(context.Background())
		}
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return spec
}

func TestOpenAPISpecIsValid(t *testing.T) {
	doc := loadSpec(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
}

// allTemplateRoutes are the route keys of every HttpApi event of every function.
func allTemplateRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	res := lookup(doc.Content[0], "Resources")
	var keys []string
	for i := 1; res != nil && i < len(res.Content); i += 2 {
		evs := lookup(res.Content[i], "Properties", "Events")
		if evs == nil || evs.Kind != yaml.MappingNode {
			continue
		}
		for j := 1; j < len(evs.Content); j += 2 {
			e := evs.Content[j]
			if typ := lookup(e, "Type"); typ == nil || typ.Value != "HttpApi" {
				continue
			}
			m, p := lookup(e, "Properties", "Method"), lookup(e, "Properties", "Path")
			if m == nil || p == nil {
				t.Fatalf("%s: HttpApi event %s without Method or Path", res.Content[i-1].Value, evs.Content[j-1].Value)
			}
			keys = append(keys, strings.ToUpper(m.Value)+" "+p.Value)
		}
	}
	sort.Strings(keys)
	return keys
}

func TestOpenAPIRoutesMatchTemplate(t *testing.T) {
	doc := loadSpec(t)
	var inSpec []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec = append(inSpec, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(inSpec)
	declared := allTemplateRoutes(t)
	for _, k := range declared {
		if !slices.Contains(inSpec, k) {
			t.Errorf("template.yaml route %s is not in openapi.yaml", k)
		}
	}
	for _, k := range inSpec {
		if !slices.Contains(declared, k) {
			t.Errorf("openapi.yaml describes %s, which template.yaml does not route", k)
		}
	}
}

// validateAgainstSpec checks a handler answer to the event raw against openapi.yaml:
// its status is declared for the operation and its body matches the schema.
func validateAgainstSpec(t *testing.T, raw []byte, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	doc := loadSpec(t)
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	method, path, ok := strings.Cut(ev.RouteKey, " ")
	if !ok {
		return // $default: no route of the API, so nothing in the spec to match
	}
	item := doc.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		t.Fatalf("openapi.yaml has no operation %s", ev.RouteKey)
	}
	u := &url.URL{Path: ev.RawPath, RawQuery: ev.RawQueryString}
	req, err := http.NewRequest(method, u.String(), strings.NewReader(ev.Body))
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{}
	for k, v := range resp.Headers {
		header.Set(k, v)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: ev.PathParameters,
			Route: &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: item.GetOperation(method)},
		},
		Status: resp.StatusCode, Header: header,
		Body:    bodyReader(resp.Body),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("answer %d to %s does not match openapi.yaml: %v\nbody %s", resp.StatusCode, ev.RouteKey, err, resp.Body)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func bodyReader(s string) nopCloser { return nopCloser{bytes.NewReader([]byte(s))} }
