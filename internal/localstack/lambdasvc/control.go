package lambdasvc

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The read side of Lambda's control plane, so that `aws lambda list-functions
// --endpoint-url <Lambda URL of .devstack/endpoints.json>` and `aws lambda
// get-function` work against the local stack as against AWS:
//
//	GET /2015-03-31/functions/                         ListFunctions (Marker, MaxItems)
//	GET /2015-03-31/functions/{FunctionName}           GetFunction (Qualifier)
//	GET /2015-03-31/functions/{FunctionName}/configuration   GetFunctionConfiguration
//
// The configuration is the template's (runtime, handler, memory, timeout, role,
// architectures, environment variables) with the built bootstrap's size and SHA-256;
// the endpoints and credentials the local service adds to each process are not part
// of a function's configuration and are never listed. Only $LATEST exists.

// listPageMax is the most functions one ListFunctions page holds (Lambda's 50).
const listPageMax = 50

// listMaxItems is the largest MaxItems Lambda accepts.
const listMaxItems = 10000

// markerPrefix tells a marker this service handed out from anything else.
const markerPrefix = "lambdasvc-after:"

// functionConfiguration is Lambda's FunctionConfiguration as the REST JSON protocol
// writes it.
type functionConfiguration struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn"`
	Runtime          string            `json:"Runtime,omitempty"`
	Role             string            `json:"Role"`
	Handler          string            `json:"Handler,omitempty"`
	CodeSize         int64             `json:"CodeSize"`
	Description      string            `json:"Description"`
	Timeout          int               `json:"Timeout"`
	MemorySize       int               `json:"MemorySize"`
	LastModified     string            `json:"LastModified"`
	CodeSha256       string            `json:"CodeSha256"`
	Version          string            `json:"Version"`
	Environment      *environment      `json:"Environment,omitempty"`
	TracingConfig    map[string]string `json:"TracingConfig"`
	RevisionID       string            `json:"RevisionId"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage map[string]int    `json:"EphemeralStorage"`
	State            string            `json:"State"`
	LastUpdateStatus string            `json:"LastUpdateStatus"`
	LoggingConfig    map[string]string `json:"LoggingConfig"`
}

type environment struct {
	Variables map[string]string `json:"Variables"`
}

// codeInfo is what Lambda reports of a function's deployment package: here the
// bootstrap the service runs, hashed once per service (it does not change while the
// service runs).
type codeInfo struct {
	size     int64
	sha256   string
	modified time.Time
}

var codeInfos sync.Map // bootstrap path → func() (codeInfo, error)

func (f *function) code() (codeInfo, error) {
	v, _ := codeInfos.LoadOrStore(f.bootstrap, sync.OnceValues(func() (codeInfo, error) {
		fh, err := os.Open(f.bootstrap)
		if err != nil {
			return codeInfo{}, err
		}
		defer fh.Close()
		st, err := fh.Stat()
		if err != nil {
			return codeInfo{}, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, fh); err != nil {
			return codeInfo{}, err
		}
		return codeInfo{size: st.Size(), sha256: base64.StdEncoding.EncodeToString(h.Sum(nil)), modified: st.ModTime()}, nil
	}))
	return v.(func() (codeInfo, error))()
}

// configuration describes f as GetFunctionConfiguration does.
func (s *Service) configuration(f *function) (functionConfiguration, error) {
	ci, err := f.code()
	if err != nil {
		return functionConfiguration{}, fmt.Errorf("function %s: %w", f.name, err)
	}
	fc := f.cfg
	memory := fc.MemorySize
	if memory <= 0 {
		memory = 128
	}
	archs := fc.Architectures
	if len(archs) == 0 {
		archs = []string{"x86_64"}
	}
	role, _ := fc.Properties["Role"].(string)
	if role == "" {
		// SAM creates <LogicalId>Role when the function names none.
		role = "arn:aws:iam::" + s.cfg.AccountID + ":role/" + fc.LogicalID + "Role"
	}
	tracing, _ := fc.Properties["Tracing"].(string)
	if tracing == "" {
		tracing = "PassThrough"
	}
	desc, _ := fc.Properties["Description"].(string)
	storage := 512
	if es, ok := fc.Properties["EphemeralStorage"].(map[string]any); ok {
		switch n := es["Size"].(type) {
		case int:
			storage = n
		case float64:
			storage = int(n)
		}
	}
	out := functionConfiguration{
		FunctionName: f.name, FunctionArn: f.arn, Runtime: fc.Runtime, Role: role, Handler: fc.Handler,
		CodeSize: ci.size, Description: desc, Timeout: int(f.timeout / time.Second), MemorySize: memory,
		LastModified: ci.modified.UTC().Format("2006-01-02T15:04:05.000-0700"), CodeSha256: ci.sha256,
		Version: "$LATEST", TracingConfig: map[string]string{"Mode": tracing},
		RevisionID: revisionID(ci.sha256), PackageType: "Zip", Architectures: archs,
		EphemeralStorage: map[string]int{"Size": storage}, State: "Active", LastUpdateStatus: "Successful",
		LoggingConfig: map[string]string{"LogFormat": "Text", "LogGroup": "/aws/lambda/" + f.name},
	}
	if len(fc.Environment) > 0 {
		vars := make(map[string]string, len(fc.Environment))
		for k, v := range fc.Environment {
			vars[k] = v
		}
		out.Environment = &environment{Variables: vars}
	}
	return out, nil
}

// revisionID derives a stable UUID-shaped revision from the code's hash.
func revisionID(codeSHA string) string {
	h := sha256.Sum256([]byte(codeSHA))
	x := fmt.Sprintf("%x", h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// serveListFunctions is ListFunctions: every function sorted by name, at most
// min(MaxItems, 50) per page, NextMarker naming where the next page starts.
func (s *Service) serveListFunctions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := listPageMax
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > listMaxItems {
			awsError(w, http.StatusBadRequest, "InvalidParameterValueException",
				fmt.Sprintf("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and %d", v, listMaxItems))
			return
		}
		limit = min(n, listPageMax)
	}
	fns := append([]*function(nil), s.ordered...)
	sort.Slice(fns, func(i, j int) bool { return fns[i].name < fns[j].name })
	start := 0
	if m := q.Get("Marker"); m != "" {
		b, err := base64.RawURLEncoding.DecodeString(m)
		after, ok := strings.CutPrefix(string(b), markerPrefix)
		if err != nil || !ok {
			awsError(w, http.StatusBadRequest, "InvalidParameterValueException", "Invalid Marker: "+m)
			return
		}
		start = sort.Search(len(fns), func(i int) bool { return fns[i].name > after })
	}
	end := min(start+limit, len(fns))
	out := struct {
		Functions  []functionConfiguration `json:"Functions"`
		NextMarker *string                 `json:"NextMarker"`
	}{Functions: []functionConfiguration{}}
	for _, f := range fns[start:end] {
		c, err := s.configuration(f)
		if err != nil {
			awsError(w, http.StatusInternalServerError, "ServiceException", err.Error())
			return
		}
		out.Functions = append(out.Functions, c)
	}
	if end < len(fns) {
		m := base64.RawURLEncoding.EncodeToString([]byte(markerPrefix + fns[end-1].name))
		out.NextMarker = &m
	}
	writeJSON(w, http.StatusOK, out)
}

// latest resolves the {name} of a control-plane read and its Qualifier: only
// $LATEST exists locally; anything else is not found, as an unpublished version is.
func (s *Service) latest(w http.ResponseWriter, r *http.Request) (*function, bool) {
	name := r.PathValue("name")
	qualifier := r.URL.Query().Get("Qualifier")
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	base := strings.TrimPrefix(name, "arn:aws:lambda:")
	if i := strings.LastIndex(base, ":function:"); i >= 0 {
		base = base[i+len(":function:"):]
	}
	if n, q, ok := strings.Cut(base, ":"); ok {
		base = n
		if qualifier == "" {
			qualifier = q
		}
	}
	f, err := s.lookup(name)
	if err != nil || (qualifier != "" && qualifier != "$LATEST") {
		arn := "arn:aws:lambda:" + s.cfg.Region + ":" + s.cfg.AccountID + ":function:" + base
		if qualifier != "" {
			arn += ":" + qualifier
		}
		awsError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+arn)
		return nil, false
	}
	return f, true
}

// serveGetFunction is GetFunction: the configuration, where the code is, and tags.
func (s *Service) serveGetFunction(w http.ResponseWriter, r *http.Request) {
	f, ok := s.latest(w, r)
	if !ok {
		return
	}
	c, err := s.configuration(f)
	if err != nil {
		awsError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	tags := map[string]string{"lambda:createdBy": "SAM"}
	writeJSON(w, http.StatusOK, map[string]any{
		"Configuration": c,
		// Lambda answers a presigned S3 URL; locally the code is the bootstrap file.
		"Code": map[string]string{"RepositoryType": "S3", "Location": "file://" + f.bootstrap},
		"Tags": tags,
	})
}

// serveGetFunctionConfiguration is GetFunctionConfiguration.
func (s *Service) serveGetFunctionConfiguration(w http.ResponseWriter, r *http.Request) {
	f, ok := s.latest(w, r)
	if !ok {
		return
	}
	c, err := s.configuration(f)
	if err != nil {
		awsError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c)
}
