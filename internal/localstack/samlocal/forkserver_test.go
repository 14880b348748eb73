package samlocal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// TestForkServerMatchesExec: sam run by the fork server answers as the sam console
// script does (stdout, stderr, exit status), for a command that succeeds and one that
// fails inside `sam local invoke` (a function the template lacks), and SAM uses the
// credentials of the request, not the server's: it reads them per invocation. SAM
// looks up the account (STS) and pings the container runtime before it looks for the
// function, so a stub answers each; no Docker is needed.
func TestForkServerMatchesExec(t *testing.T) {
	sam, err := testenv.Tool("venv/bin/sam")
	if err != nil {
		t.Fatal(err)
	}
	python, err := testenv.Tool("venv/bin/python")
	if err != nil {
		t.Fatal(err)
	}
	sts := newSTSStub()
	defer sts.Close()
	dir := t.TempDir()
	tpl := filepath.Join(dir, "template.yaml")
	if err := os.WriteFile(tpl, []byte(minimalTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	docker := newDockerStub(t, filepath.Join(dir, "docker.sock"))
	defer docker.Close()
	inv := &Invoker{sam: sam, dir: dir, cfg: Config{
		DockerHost:  "unix://" + filepath.Join(dir, "docker.sock"),
		STSEndpoint: sts.URL,
		Credentials: map[string]testenv.Credentials{"Fn": {AccessKeyID: "AKIAFUNCTIONKEY", SecretAccessKey: "fn-secret"}},
	}}
	var serverLog bytes.Buffer
	srv, err := startForkServer(python, filepath.Join(testenv.RepoRoot(), "tools", "sam_forkserver.py"), sam, dir,
		inv.samEnv(""), perInvocationEnv, &lockedWriter{w: &serverLog})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, tc := range []struct {
		name string
		args []string
		fail bool
	}{
		{"version", []string{"--version"}, false},
		{"no such function", []string{"local", "invoke", "NoSuchFunction", "--template-file", tpl, "--region", testenv.Region}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := inv.samEnv("Fn")
			sts.reset()
			start := time.Now()
			cmd := exec.CommandContext(ctx, sam, tc.args...)
			cmd.Dir, cmd.Env = dir, env
			var wantOut, wantErr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &wantOut, &wantErr
			wantRunErr := cmd.Run()
			execTime := time.Since(start)
			execKeys := sts.reset()

			start = time.Now()
			gotOut, gotErr, gotRunErr := srv.run(ctx, tc.args, env, dir)
			t.Logf("exec %v, fork server %v", execTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			forkKeys := sts.reset()

			if errString(gotRunErr) != errString(wantRunErr) {
				t.Errorf("fork server: %v, exec: %v", gotRunErr, wantRunErr)
			}
			if (wantRunErr != nil) != tc.fail {
				t.Errorf("exec: %v (want failure %v); stderr %s", wantRunErr, tc.fail, wantErr.String())
			}
			if !bytes.Equal(gotOut, wantOut.Bytes()) {
				t.Errorf("stdout: fork server %q, exec %q", gotOut, wantOut.Bytes())
			}
			if !bytes.Equal(gotErr, wantErr.Bytes()) {
				t.Errorf("stderr: fork server %q, exec %q", gotErr, wantErr.Bytes())
			}
			if tc.fail && !bytes.Contains(gotErr, []byte("Function NoSuchFunction not found in template")) {
				t.Errorf("stderr does not name the function: %q", gotErr)
			}
			if strings.Join(forkKeys, ",") != strings.Join(execKeys, ",") {
				t.Errorf("STS was called with keys %v by the fork server, %v by exec", forkKeys, execKeys)
			}
			for _, k := range forkKeys {
				if k != "AKIAFUNCTIONKEY" {
					t.Errorf("SAM called STS with key %q, not the request's", k)
				}
			}
			if tc.fail && len(forkKeys) == 0 {
				t.Error("sam local invoke never asked STS for the account (the credentials went unchecked)")
			}
		})
	}

	t.Run("refuses other environment", func(t *testing.T) {
		_, _, err := srv.run(ctx, []string{"--version"}, append(inv.samEnv("Fn"), "SAM_CLI_CONTAINER_CONNECTION_TIMEOUT=1"), dir)
		if err == nil || !strings.Contains(err.Error(), "SAM_CLI_CONTAINER_CONNECTION_TIMEOUT") {
			t.Errorf("a request with an import-time variable changed: %v", err)
		}
	})

	srv.stop()
	if _, _, err := srv.run(ctx, []string{"--version"}, inv.samEnv("Fn"), dir); !errors.Is(err, errForkServerDown) {
		t.Errorf("run after stop: %v, want errForkServerDown", err)
	}
	if !strings.Contains(serverLog.String(), "listening on") {
		t.Errorf("server log: %s", serverLog.String())
	}
}

// TestForkServerChildIsLikeExec: what a child sees of its process (environment, with
// the request's credentials and the interpreter's own LC_CTYPE; cwd; argv; sys.path[0];
// stdin) and what it gives back (stdout, stderr, exit status) are what the console
// script exec'd with the same environment sees and gives; and a run whose context
// ends gets its child killed. A stand-in console script names the entry point, so it
// can print them.
func TestForkServerChildIsLikeExec(t *testing.T) {
	python, err := testenv.Tool("venv/bin/python")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(bin, "sam")
	files := map[string]string{
		script: "#!" + python + "\nimport sys\nfrom envdump import main\nif __name__ == \"__main__\":\n    sys.exit(main())\n",
		filepath.Join(bin, "envdump.py"): `import json, os, sys, time
def main():
    if sys.argv[1:2] == ["sleep"]:
        open(sys.argv[2], "w").write(str(os.getpid()))
        time.sleep(120)
    print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv, "path0": sys.path[0],
                      "stdin": os.read(0, 16).decode(), "stdout_tty": sys.stdout.isatty()}, sort_keys=True))
    print("to stderr", file=sys.stderr)
    sys.exit(3)
`,
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	inv := &Invoker{cfg: Config{DockerHost: "unix:///nonexistent.sock", STSEndpoint: "http://127.0.0.1:9",
		Credentials: map[string]testenv.Credentials{"Fn": {AccessKeyID: "AKIAFUNCTIONKEY", SecretAccessKey: "fn-secret"}}}}
	srv, err := startForkServer(python, filepath.Join(testenv.RepoRoot(), "tools", "sam_forkserver.py"), script, dir,
		inv.samEnv(""), perInvocationEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	work := t.TempDir()
	args := []string{"local", "invoke", "Fn", "--event", "a b.json"}
	cmd := exec.Command(script, args...)
	cmd.Dir, cmd.Env = work, inv.samEnv("Fn")
	var wantOut, wantErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &wantOut, &wantErr
	wantRunErr := cmd.Run()
	gotOut, gotErr, gotRunErr := srv.run(context.Background(), args, inv.samEnv("Fn"), work)
	if errString(gotRunErr) != errString(wantRunErr) || errString(wantRunErr) != "exit status 3" {
		t.Errorf("fork server: %v, exec: %v", gotRunErr, wantRunErr)
	}
	if !bytes.Equal(gotOut, wantOut.Bytes()) {
		t.Errorf("stdout:\nfork server %s\nexec        %s", gotOut, wantOut.Bytes())
	}
	if !bytes.Equal(gotErr, wantErr.Bytes()) {
		t.Errorf("stderr: fork server %q, exec %q", gotErr, wantErr.Bytes())
	}
	if !bytes.Contains(gotOut, []byte(`"AWS_ACCESS_KEY_ID": "AKIAFUNCTIONKEY"`)) {
		t.Errorf("the child does not have the request's credentials: %s", gotOut)
	}

	// A context that ends kills the child, as exec.CommandContext kills sam.
	pidFile := filepath.Join(work, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := srv.run(ctx, []string{"sleep", pidFile}, inv.samEnv("Fn"), work)
		done <- err
	}()
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		raw, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(string(raw))
	}
	if pid == 0 {
		t.Fatal("the sleeping child never wrote its PID")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	// The server reaps the killed child, after which its PID is gone.
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still exists after the cancel", pid)
		}
	}
}

const minimalTemplate = `AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
`

// newDockerStub answers the container runtime's ping on a unix socket at path, which
// is all sam local invoke asks of it before it looks for the function.
func newDockerStub(t *testing.T, path string) *httptest.Server {
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.44")
		if strings.HasSuffix(r.URL.Path, "/version") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ApiVersion":"1.44","MinAPIVersion":"1.24","Version":"27.0.0","Os":"linux","Arch":"amd64"}`)
			return
		}
		_, _ = io.WriteString(w, "OK")
	}))
	srv.Listener.Close() // the loopback listener it made, unused
	srv.Listener = l
	srv.Start()
	return srv
}

// stsStub answers GetCallerIdentity and records the access key each request was
// signed with.
type stsStub struct {
	*httptest.Server
	mu   sync.Mutex
	keys []string
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/`)

func newSTSStub() *stsStub {
	s := &stsStub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			s.mu.Lock()
			s.keys = append(s.keys, m[1])
			s.mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/fn</Arn><UserId>AIDAFN</UserId><Account>123456789012</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`)
	}))
	return s
}

// reset returns the keys recorded so far and forgets them.
func (s *stsStub) reset() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.keys
	s.keys = nil
	return keys
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// lockedWriter serialises writes from exec's copying goroutine with the test's read
// at the end (the server is stopped, and its output drained, by then).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
