package lambdasvc

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// instance is one function process (a Lambda "execution environment") with its own
// Runtime API server. It runs one invocation at a time, as in Lambda; concurrency
// comes from more instances.
type instance struct {
	fn   *function
	cmd  *exec.Cmd
	ln   net.Listener
	srv  *http.Server
	pid  int
	outs []*lineWriter

	work       chan *invocation // the next invocation, taken by GET .../next
	ready      chan struct{}    // closed on the first GET .../next: init finished
	readyOnce  sync.Once
	initFailed chan struct{} // closed on POST /runtime/init/error
	exited     chan struct{} // closed once the process has exited and been reaped
	stop       chan struct{} // closed to release blocked extension calls
	stopOnce   sync.Once

	mu        sync.Mutex
	current   *invocation // delivered to the process, no result yet
	initError []byte      // body of POST /runtime/init/error
	exitErr   error
}

// invocation is one request travelling to an instance.
type invocation struct {
	id        string
	payload   []byte
	deadline  time.Time
	traceID   string
	delivered bool         // the process received it (guarded by instance.mu)
	done      chan outcome // buffered 1
}

// outcome is what the runtime posted for an invocation.
type outcome struct {
	payload []byte
	errBody []byte // set when the runtime posted to /error
}

const runtimeAPIPrefix = "/2018-06-01/runtime/"

func (inst *instance) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimeAPIPrefix+"invocation/next", inst.next)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"invocation/{id}/response", inst.response)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"invocation/{id}/error", inst.invocationError)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"init/error", inst.initErr)
	// Minimal Extensions API: aws-lambda-go registers an internal extension when a
	// function enables SIGTERM handling, and must not fail to start locally.
	mux.HandleFunc("POST /2020-01-01/extension/register", inst.extensionRegister)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", inst.extensionNext)
	return mux
}

func (inst *instance) next(w http.ResponseWriter, r *http.Request) {
	inst.readyOnce.Do(func() { close(inst.ready) })
	select {
	case inv := <-inst.work:
		inst.mu.Lock()
		inst.current = inv
		inv.delivered = true
		inst.mu.Unlock()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", inst.fn.arn)
		h.Set("Lambda-Runtime-Trace-Id", inv.traceID)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
		// No answer while shutting down: the process is being killed anyway, and an
		// error status would only make the runtime log a misleading failure. The
		// connection ends when the process dies or reap closes the server.
	}
}

// take returns the in-flight invocation if id names it, clearing it.
func (inst *instance) take(id string) *invocation {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inv := inst.current
	if inv == nil || inv.id != id {
		return nil
	}
	inst.current = nil
	return inv
}

func (inst *instance) response(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inv := inst.take(r.PathValue("id"))
	if inv == nil {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in flight with this id")
		return
	}
	inv.done <- outcome{payload: body}
	w.WriteHeader(http.StatusAccepted)
}

func (inst *instance) invocationError(w http.ResponseWriter, r *http.Request) {
	body, err := errorBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inv := inst.take(r.PathValue("id"))
	if inv == nil {
		runtimeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in flight with this id")
		return
	}
	inv.done <- outcome{errBody: body}
	w.WriteHeader(http.StatusAccepted)
}

func (inst *instance) initErr(w http.ResponseWriter, r *http.Request) {
	body, err := errorBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inst.mu.Lock()
	first := inst.initError == nil
	if first {
		inst.initError = body
	}
	inst.mu.Unlock()
	if first {
		close(inst.initFailed)
	}
	w.WriteHeader(http.StatusAccepted)
}

func (inst *instance) extensionRegister(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Lambda-Extension-Identifier", newRequestID())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"functionName":    inst.fn.name,
		"functionVersion": "$LATEST",
		"handler":         inst.fn.cfg.Handler,
	})
}

func (inst *instance) extensionNext(w http.ResponseWriter, r *http.Request) {
	// No lifecycle events are delivered locally: block until the instance goes away.
	select {
	case <-r.Context().Done():
	case <-inst.stop:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"eventType":"SHUTDOWN","shutdownReason":"spindown"}`)
	}
}

// errorBody reads an error report: the JSON body aws-lambda-go posts
// ({"errorMessage","errorType",...}), which is passed through untouched. Runtimes
// that stream may instead report through trailers, and non-JSON bodies are wrapped,
// so callers always receive the {"errorType","errorMessage"} shape.
func errorBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		if b64 := r.Trailer.Get("Lambda-Runtime-Function-Error-Body"); b64 != "" {
			if dec, err := base64.StdEncoding.DecodeString(b64); err == nil {
				body = dec
			}
		}
	}
	var probe struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &probe) == nil && probe.ErrorType != "" {
		return body, nil
	}
	typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if typ == "" {
		typ = r.Trailer.Get("Lambda-Runtime-Function-Error-Type")
	}
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	return errorJSON(typ, string(body)), nil
}

func runtimeAPIError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorJSON(typ, msg))
}

// errorJSON renders the function-error shape in the field order aws-lambda-go uses.
func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}{msg, typ})
	return b
}

// kill ends the process group: the bootstrap and anything it started.
func (inst *instance) kill(sig syscall.Signal) {
	if inst.pid > 0 {
		_ = syscall.Kill(-inst.pid, sig)
	}
}

func (inst *instance) shutdown() {
	inst.stopOnce.Do(func() { close(inst.stop) })
}

// waitExit waits for the process to be reaped, escalating to SIGKILL after grace.
func (inst *instance) waitExit(grace time.Duration) {
	select {
	case <-inst.exited:
	case <-time.After(grace):
		inst.kill(syscall.SIGKILL)
		<-inst.exited
	}
}

// exitDescription renders how the process ended, as Lambda words it.
func (inst *instance) exitDescription() string {
	inst.mu.Lock()
	err := inst.exitErr
	inst.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "Runtime exited with error: " + ee.ProcessState.String()
	}
	if err != nil {
		return "Runtime exited with error: " + err.Error()
	}
	return "Runtime exited without providing a reason"
}

// newRequestID returns a random UUID v4, the format of Lambda request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTraceID returns an X-Ray trace header value.
func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[24:40])
}

// taskRoot is LAMBDA_TASK_ROOT: the directory holding the bootstrap.
func taskRoot(bootstrap string) string { return filepath.Dir(bootstrap) }
