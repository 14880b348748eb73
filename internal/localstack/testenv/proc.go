// Package testenv starts the local emulators (moto, stripe-mock, the local Lambda and
// Step Functions services) that the project's tests run against. Every server listens on
// a random free 127.0.0.1 port and is stopped by the process that started it.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ToolsDir is the cache folder where the Makefile installs the pinned tools
// ($TENANTFLOW_TOOLS, else $XDG_CACHE_HOME/tenantflow, else ~/.cache/tenantflow).
func ToolsDir() string {
	if d := os.Getenv("TENANTFLOW_TOOLS"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "tenantflow")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "tenantflow")
}

// Tool returns the path of an installed tool below ToolsDir, or an error telling the
// reader how to install it.
func Tool(rel string) (string, error) {
	p := filepath.Join(ToolsDir(), rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not installed (run `make tools`): %w", p, err)
	}
	return p, nil
}

// Process is a child process started in its own process group so that Stop ends it
// and everything it spawned, and nothing else.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	once sync.Once
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep memory bounded for chatty servers
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartProcess starts name with args and env (added to the current environment) and
// waits until addr accepts TCP connections or timeout passes.
func StartProcess(name string, addr string, timeout time.Duration, env []string, bin string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	if err := WaitTCP(addr, timeout, p.done); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s did not listen on %s: %w\n%s", name, addr, err, p.Output())
	}
	return p, nil
}

// WaitTCP polls addr until it accepts a connection, the exited channel closes, or
// timeout passes.
func WaitTCP(addr string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Output returns what the process printed so far (for failure messages).
func (p *Process) Output() string { return p.out.String() }

// PID is the process id of the started command.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Stop ends the process group by PID (SIGTERM, then SIGKILL after 3 s) and waits.
func (p *Process) Stop() {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	})
}
