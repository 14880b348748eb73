package samlocal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ForkServerEnv names the environment variable that chooses how sam runs:
// TENANTFLOW_SAM_FORKSERVER=0 execs the venv's sam for every invocation; anything else
// (or unset) sends the invocations to one preloaded SAM CLI per Invoker
// (tools/sam_forkserver.py), which forks per invocation and runs the same sam code
// with the same arguments, minus the ~2 s of CPU each fresh sam spends importing.
const ForkServerEnv = "TENANTFLOW_SAM_FORKSERVER"

// How an Invoker runs sam (Row.Via).
const (
	ViaForkServer = "fork server"
	ViaExec       = "exec"
)

// errForkServerDown is a fork server that no longer accepts invocations: the Invoker
// goes back to exec'ing sam.
var errForkServerDown = errors.New("sam fork server unavailable")

// forkServer is a running tools/sam_forkserver.py: SAM CLI imported once, forking
// one child per invocation (see the script's doc for the protocol).
type forkServer struct {
	cmd   *exec.Cmd
	dir   string // private temp dir of the socket (and the children's output files)
	sock  string
	stdin io.WriteCloser // the server exits when this closes, so it dies with us
	done  chan struct{}  // closed when cmd has been waited for
	out   *cappedBuffer  // the server's own log (its children write elsewhere)
	once  sync.Once
}

// startForkServer starts script (tools/sam_forkserver.py) with python, for the sam
// console script sam, in the environment env (the one sam is exec'd with, so that what
// SAM CLI reads at import time is what it would read at invoke time), and waits until
// it listens. vary names the variables whose values may differ per invocation.
func startForkServer(python, script, sam, cwd string, env, vary []string, log io.Writer) (_ *forkServer, err error) {
	// The socket path must fit sockaddr_un (108 bytes): a short temp dir, not the
	// invoker's dir in the tool cache.
	dir, err := os.MkdirTemp("", "tf-samfs-")
	if err != nil {
		return nil, err
	}
	s := &forkServer{dir: dir, sock: filepath.Join(dir, "sam.sock"), done: make(chan struct{}), out: &cappedBuffer{max: 64 << 10}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	args := []string{script, "--sam", sam}
	for _, v := range vary {
		args = append(args, "--vary", v)
	}
	s.cmd = exec.Command(python, append(args, s.sock)...)
	s.cmd.Dir = cwd
	s.cmd.Env = env
	s.cmd.Stdout = io.MultiWriter(s.out, log)
	s.cmd.Stderr = s.cmd.Stdout
	s.cmd.WaitDelay = 5 * time.Second
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return nil, fmt.Errorf("start %s: %w", script, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	// The script renames the socket into place once it listens, so its existence
	// means ready. Importing SAM CLI takes seconds of CPU, more on a busy machine.
	deadline := time.After(2 * time.Minute)
	for {
		if _, err := os.Stat(s.sock); err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited before listening (%v): %s", script, s.cmd.ProcessState, s.out.String())
		case <-deadline:
			s.stop() // before reading out, which the process writes to until it is gone
			return nil, fmt.Errorf("%s did not listen on %s within 2 minutes: %s", script, s.sock, s.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// forkResponse is one line of the server's answer: first {"pid"}, then {"code",
// "stdout", "stderr"} (base64, which encoding/json decodes into []byte) or {"error"}.
type forkResponse struct {
	PID    int    `json:"pid"`
	Code   *int   `json:"code"`
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr"`
	Error  string `json:"error"`
}

// run runs `sam args` in a child of the server with environment env (KEY=value) in
// directory cwd and returns its stdout, its stderr and an error like exec's ("exit
// status 1") when sam failed. A server that cannot be reached gives an error wrapping
// errForkServerDown. When ctx ends first, the child is killed, as
// exec.CommandContext kills the sam it started.
func (s *forkServer) run(ctx context.Context, args, env []string, cwd string) (stdout, stderr []byte, err error) {
	envMap := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		envMap[k] = v
	}
	req, err := json.Marshal(map[string]any{"args": args, "env": envMap, "cwd": cwd})
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", s.sock)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%w: %v", errForkServerDown, err)
	}
	defer conn.Close()
	// The server forks as soon as it has read the request, and the child's first act
	// is to send its PID: that part is quick unless the server is stuck.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return nil, nil, fmt.Errorf("%w: send request: %v", errForkServerDown, err)
	}
	r := bufio.NewReaderSize(conn, 1<<20)
	var first forkResponse
	if err := readLine(r, &first); err != nil {
		return nil, nil, fmt.Errorf("%w: no answer to the request: %v", errForkServerDown, err)
	}
	if first.Error != "" {
		return nil, nil, fmt.Errorf("sam fork server refused the request: %s", first.Error)
	}
	pid := first.PID
	_ = conn.SetDeadline(time.Time{})
	stopKill := context.AfterFunc(ctx, func() {
		s.kill(pid)
		_ = conn.SetDeadline(time.Now())
	})
	defer stopKill()
	var res forkResponse
	if err := readLine(r, &res); err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("sam (fork server child %d) killed: %w", pid, ctx.Err())
		}
		return nil, nil, fmt.Errorf("sam (fork server child %d) ended without an answer: %v", pid, err)
	}
	if res.Error != "" || res.Code == nil {
		return res.Stdout, res.Stderr, fmt.Errorf("sam (fork server child %d) could not run: %s", pid, res.Error)
	}
	if *res.Code != 0 {
		err = fmt.Errorf("exit status %d", *res.Code)
	}
	return res.Stdout, res.Stderr, err
}

// kill asks the server to SIGKILL its child pid: the server, which reaps its
// children, knows whether pid is still one of them, so no reused PID gets the signal.
func (s *forkServer) kill(pid int) {
	conn, err := net.DialTimeout("unix", s.sock, 5*time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	raw, _ := json.Marshal(map[string]int{"kill": pid})
	if _, err := conn.Write(append(raw, '\n')); err == nil {
		var res forkResponse
		_ = readLine(bufio.NewReader(conn), &res)
	}
}

// stop ends the server by its PID (SIGTERM, SIGKILL after 5 s) and removes its
// directory. Children still running are not waited for: the Invoker is closed after
// its invocations.
func (s *forkServer) stop() {
	s.once.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.stdin.Close()
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		_ = os.RemoveAll(s.dir)
	})
}

func readLine(r *bufio.Reader, v any) error {
	line, err := r.ReadBytes('\n')
	if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
		return err
	}
	return json.Unmarshal(bytes.TrimSpace(line), v)
}

// cappedBuffer keeps the first max bytes written to it (the server's start-up log,
// for error messages); exec's copying goroutine is its only writer, and it is read
// once the process has been waited for.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string { return strings.TrimSpace(b.buf.String()) }
