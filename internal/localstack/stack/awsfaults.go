package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// AWSFaults is a fault-injecting reverse proxy between the functions in
// FaultedFunctions and the AWS endpoints they write to: DynamoDB (moto) and Step
// Functions (the local service). Both speak the AWS JSON protocol, so a request is
// routed, and matched by a rule, on its X-Amz-Target header ("DynamoDB_20120810.
// UpdateItem", "AWSStepFunctions.StartExecution") and its body. Without rules it only
// forwards; a rule refuses a request with an AWS error, or drops it unanswered after a
// hook ran (which may kill the caller: the API dying between two of its writes). The
// functions carry no test code: the fault is in what their endpoints answer.
type AWSFaults struct {
	ln       net.Listener
	srv      *http.Server
	dynamodb *httputil.ReverseProxy
	sfn      *httputil.ReverseProxy

	mu    sync.Mutex
	rules []*AWSFault
}

// FaultedFunctions are the functions whose DynamoDB and Step Functions calls go
// through Stack.AWSFaults: the API, whose writes around StartExecution the stuck
// operation tests break.
var FaultedFunctions = []string{"ApiFunction"}

// AWSFault is one rule. The first rule that matches a request decides it.
type AWSFault struct {
	// Operations are the API operations it applies to, as X-Amz-Target ends
	// ("StartExecution", "TransactWriteItems", "UpdateItem"); empty: every one.
	Operations []string
	// Contains, when set, must occur in the request body (a tenant or operation id).
	Contains string
	// Count is how many matching requests it takes: N > 0, or -1 for all until
	// cleared.
	Count int
	// OnMatch, when set, runs with the request body when a request matches, before
	// it is answered or dropped (e.g. to arm the next fault, or to kill the calling
	// function).
	OnMatch func(body []byte)
	// Drop leaves the request unforwarded and closes its connection without an
	// answer. Otherwise the answer is the AWS error Status (default 500) with
	// ErrorType (default "InternalFailure") and Message.
	Drop               bool
	Status             int
	ErrorType, Message string
}

// startAWSFaults listens on a random loopback port and forwards DynamoDB requests to
// dynamodbURL and Step Functions requests to sfnURL.
func startAWSFaults(dynamodbURL, sfnURL string) (*AWSFaults, error) {
	du, err := url.Parse(dynamodbURL)
	if err != nil {
		return nil, fmt.Errorf("aws faults: %w", err)
	}
	su, err := url.Parse(sfnURL)
	if err != nil {
		return nil, fmt.Errorf("aws faults: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("aws faults: %w", err)
	}
	f := &AWSFaults{ln: ln, dynamodb: httputil.NewSingleHostReverseProxy(du), sfn: httputil.NewSingleHostReverseProxy(su)}
	f.srv = &http.Server{Handler: f}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// URL is the endpoint the faulted functions are given.
func (f *AWSFaults) URL() string { return "http://" + f.ln.Addr().String() }

// Close stops the proxy.
func (f *AWSFaults) Close() { _ = f.srv.Close() }

// Add arms a rule after the ones already armed.
func (f *AWSFaults) Add(r AWSFault) {
	if r.Count == 0 {
		r.Count = 1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
}

// Clear removes every rule.
func (f *AWSFaults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// take returns the rule that decides a request (consuming one of its Count), or nil.
func (f *AWSFaults) take(op string, body []byte) *AWSFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if len(r.Operations) > 0 && !slices.Contains(r.Operations, op) {
			continue
		}
		if r.Contains != "" && !bytes.Contains(body, []byte(r.Contains)) {
			continue
		}
		if r.Count > 0 {
			if r.Count--; r.Count == 0 {
				f.rules = slices.Delete(f.rules, i, i+1)
			}
		}
		return r
	}
	return nil
}

func (f *AWSFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	service, op, _ := strings.Cut(target, ".")
	proxy := f.dynamodb
	if strings.HasPrefix(service, "AWSStepFunctions") {
		proxy = f.sfn
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rule := f.take(op, body)
	if rule == nil {
		proxy.ServeHTTP(w, r)
		return
	}
	if rule.OnMatch != nil {
		rule.OnMatch(body)
	}
	if rule.Drop {
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
	status, typ, msg := rule.Status, rule.ErrorType, rule.Message
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if typ == "" {
		typ = "InternalFailure"
	}
	if msg == "" {
		msg = "fault injected by the local stack"
	}
	doc, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_, _ = w.Write(doc)
}
