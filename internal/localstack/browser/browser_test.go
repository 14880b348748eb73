//go:build browser

package browser

import (
	"context"
	"crypto/sha256"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
)

// page is a small stand-in for a console view: labelled controls, a button that
// opens a modal <dialog> whose confirm button has the same name, text that appears
// later, a dark scheme, and two kinds of download (an attachment the server sends,
// and a blob the page builds, as the console does with an export it fetched).
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title>
<style>
  body { background: #fff; color: #000 }
  @media (prefers-color-scheme: dark) { body { background: #000; color: #fff } }
</style></head>
<body>
<main data-view="test">
  <label for="plan">Target plan</label>
  <select id="plan"><option value="basic">Basic</option><option value="pro">Pro</option></select>
  <label>Reason <input name="reason"></label>
  <label><input type="checkbox" id="at-end"> At period end</label>
  <button type="button" id="open">Upgrade</button>
  <p data-testid="status">idle</p>
  <p data-testid="hidden" hidden>never shown</p>
  <a href="/file" data-testid="dl-server">server file</a>
  <button type="button" id="blob">Download blob</button>
  <p data-testid="scheme"></p>
</main>
<dialog id="confirm"><p>Sure?</p><button type="button" id="yes">Upgrade</button></dialog>
<script>
  const status = document.querySelector('[data-testid=status]');
  document.getElementById('open').onclick = () => document.getElementById('confirm').showModal();
  document.getElementById('yes').onclick = () => {
    document.getElementById('confirm').close();
    const plan = document.getElementById('plan').value;
    const reason = document.querySelector('[name=reason]').value;
    const atEnd = document.getElementById('at-end').checked;
    status.textContent = 'working';
    setTimeout(() => { status.textContent = 'done: ' + plan + ' / ' + reason + ' / end=' + atEnd; }, 400);
  };
  document.getElementById('blob').onclick = () => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob(['made in the page\n'], {type: 'application/json'}));
    a.download = 'made.json';
    document.body.append(a); a.click(); a.remove();
  };
  document.querySelector('[data-testid=scheme]').textContent =
    matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  console.log('harness page loaded');
</script>
</body></html>`

const fileBody = "the server's file\n"

var (
	startOnce sync.Once
	shared    *Browser
	startErr  error
)

// start runs one browser for the package's tests (a start costs about a second).
func start(t *testing.T) *Browser {
	t.Helper()
	startOnce.Do(func() {
		shared, startErr = Start(context.Background(), Options{ShotDir: filepath.Join(os.TempDir(), "tenantflow-browser-harness-shots"), Timeout: 10 * time.Second})
	})
	if startErr != nil {
		t.Fatalf("start the browser: %v", startErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

func server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, page)
		case "/file":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="server.txt"`)
			fmt.Fprint(w, fileBody)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPageActions(t *testing.T) {
	b := start(t)
	srv := server(t)
	p := b.NewPage(t)
	p.Go(srv.URL + "/")

	if got := p.Text("status"); got != "idle" {
		t.Errorf("status = %q, want idle", got)
	}
	if n := p.Count("hidden"); n != 0 {
		t.Errorf("Count(hidden) = %d, want 0 (it is not visible)", n)
	}
	p.Select("Target plan", "Pro")
	p.Fill("Reason", "more seats")
	p.SetChecked("At period end", true)
	// The page's Upgrade opens the dialog; the second Upgrade is the dialog's own.
	// With the keyboard: Enter on the focused button opens the dialog, Escape closes it.
	p.Focus("the page's Upgrade", Button("Upgrade"))
	p.Press(kb.Enter)
	p.Wait("the dialog to open", `document.getElementById('confirm').open`)
	p.Press(kb.Escape)
	p.Wait("the dialog to close", `!document.getElementById('confirm').open`)
	p.ClickButton("Upgrade")
	p.Wait("the dialog to open", `document.getElementById('confirm').open`)
	p.ClickButton("Upgrade")
	if got, want := p.WaitTestIDText("status", "done"), "done: pro / more seats / end=true"; got != want {
		t.Errorf("status = %q, want %q", got, want)
	}

	d := p.Download(func() { p.Click("the server file link", TestID("dl-server")) })
	if d.Name != "server.txt" || string(d.Data) != fileBody {
		t.Errorf("server download = %q %q, want server.txt %q", d.Name, d.Data, fileBody)
	}
	d = p.Download(func() { p.ClickButton("Download blob") })
	if d.Name != "made.json" || string(d.Data) != "made in the page\n" || !strings.HasPrefix(d.URL, "blob:") {
		t.Errorf("blob download = %q %q from %s", d.Name, d.Data, d.URL)
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(d.Data)); len(sum) != 64 {
		t.Errorf("sha256 %s", sum)
	}

	p.ColorScheme("dark")
	p.Go(srv.URL + "/")
	if got := p.Text("scheme"); got != "dark" {
		t.Errorf("with the dark scheme emulated the page sees %q", got)
	}
}

// Each page is its own browser context: what one stores, another does not see.
func TestPagesAreIsolated(t *testing.T) {
	b := start(t)
	srv := server(t)
	p1, p2 := b.NewPage(t), b.NewPage(t)
	p1.Go(srv.URL + "/")
	p2.Go(srv.URL + "/")
	p1.Eval(`sessionStorage.setItem('k', 'one'); localStorage.setItem('k', 'one'); true`, nil)
	var got []any
	p2.Eval(`[sessionStorage.getItem('k'), localStorage.getItem('k')]`, &got)
	if got[0] != nil || got[1] != nil {
		t.Errorf("the second page sees the first page's storage: %v", got)
	}
}

// The browser reaches nothing but loopback: a name resolves to nothing at once.
func TestNoNetwork(t *testing.T) {
	b := start(t)
	p := b.NewPage(t)
	var msg string
	start := time.Now()
	p.Eval(`fetch('http://example.com/').then(() => 'fetched', e => 'failed: ' + e.message)`, &msg)
	if !strings.HasPrefix(msg, "failed") || time.Since(start) > 5*time.Second {
		t.Errorf("fetch of a public name: %q after %s, want a quick failure", msg, time.Since(start))
	}
}

// fakeTB records a failure as a test would, so the failure path can be checked
// without failing this test.
type fakeTB struct {
	name     string
	failed   bool
	logs     []string
	cleanups []func()
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }
func (f *fakeTB) Failed() bool { return f.failed }
func (f *fakeTB) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Logf(format, args...)
	f.failed = true
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// A wait that never comes true fails the test with what it waited for, and the page
// is then saved as a PNG whose path the log names, with the page's console.
func TestFailureLeavesAScreenshot(t *testing.T) {
	b := start(t)
	srv := server(t)
	ft := &fakeTB{name: "TestHarness/fails"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := b.NewPage(ft)
		p.Go(srv.URL + "/")
		p.WaitFor(time.Second, "a status that never comes", `false`)
	}()
	<-done
	ft.end()
	if !ft.failed {
		t.Fatal("a wait that never came true did not fail the test")
	}
	log := strings.Join(ft.logs, "\n")
	if !strings.Contains(log, "waited 1s for a status that never comes") {
		t.Errorf("failure message does not say what it waited for:\n%s", log)
	}
	if !strings.Contains(log, "harness page loaded") {
		t.Errorf("failure log has no page console:\n%s", log)
	}
	path := filepath.Join(b.ShotDir(), "TestHarness_fails-failed.png")
	if !strings.Contains(log, path) {
		t.Fatalf("failure log names no screenshot %s:\n%s", path, log)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer os.Remove(path)
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 800 || r.Dy() < 600 {
		t.Errorf("screenshot is %v, want the 1280×900 window", r)
	}
}
