package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// initProbe is the smallest Lambda Runtime API that can time a cold start: it only
// notes when the process first asks for an invocation (GET .../invocation/next, which
// aws-lambda-go calls once main reaches lambda.Start: init is over) and what it posts
// to .../init/error. It never hands out an invocation; the process is killed once it
// has asked. lambdasvc's Runtime API is not used because it is built around serving
// invocations and keeps its timing to itself.
type initProbe struct {
	ln  net.Listener
	srv *http.Server

	once   sync.Once
	ready  chan time.Time // the arrival of the first next call
	failed chan string    // the body of an init error
}

func newInitProbe() (*initProbe, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &initProbe{ln: ln, ready: make(chan time.Time, 1), failed: make(chan string, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		p.once.Do(func() { p.ready <- at })
		<-r.Context().Done() // no invocation: the process is killed while it waits
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<10))
		select {
		case p.failed <- string(body):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *initProbe) addr() string { return p.ln.Addr().String() }

func (p *initProbe) close() { _ = p.srv.Close() }

// initTimeout is Lambda's bound on the init phase.
const initTimeout = 10 * time.Second

// measureInit starts bootstrap once with env and returns the time from starting the
// process to its first next call. The process is killed (with its process group)
// and reaped before it returns, so no start overlaps the next.
func measureInit(ctx context.Context, bootstrap string, env []string) (time.Duration, error) {
	probe, err := newInitProbe()
	if err != nil {
		return 0, err
	}
	defer probe.close()
	var out bytes.Buffer // stdout and stderr, written by exec's copiers until Wait
	cmd := exec.Command(bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append(append([]string{}, env...), "AWS_LAMBDA_RUNTIME_API="+probe.addr())
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var exitErr error
	reaped := false
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if !reaped {
			<-exited
		}
	}()
	timer := time.NewTimer(initTimeout)
	defer timer.Stop()
	select {
	case at := <-probe.ready:
		return at.Sub(start), nil
	case body := <-probe.failed:
		return 0, fmt.Errorf("init error: %s", strings.TrimSpace(body))
	case exitErr = <-exited:
		reaped = true
		return 0, fmt.Errorf("exited during init (%v): %s", exitErr, tail(out.String(), 600))
	case <-timer.C:
		return 0, fmt.Errorf("init did not finish within %s", initTimeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// tail returns the last n bytes of s, which is where a failing init says why.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
