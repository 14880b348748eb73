package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TB is the part of testing.TB a Page uses (a fake stands in for it in the harness's
// own tests of the failure path).
type TB interface {
	Helper()
	Name() string
	Failed() bool
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Page is one tab in a browser context of its own (its cookies, storage and
// downloads are its own), tied to a test: every action that fails, or waits longer
// than the browser's Timeout, fails the test with what it waited for, and when the
// test has failed by the time it ends the page is saved as a PNG and the page's
// console output is logged.
type Page struct {
	t         TB
	b         *Browser
	ctx       context.Context
	downloads string

	mu      sync.Mutex
	console []string
}

var shotSeq struct {
	sync.Mutex
	n map[string]int
}

// NewPage opens a tab for t; it closes when t ends.
func (b *Browser) NewPage(t TB) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	p := &Page{t: t, b: b, ctx: ctx}
	var err error
	if p.downloads, err = os.MkdirTemp("", "tenantflow-downloads-"); err != nil {
		cancel()
		t.Fatalf("browser: %v", err)
	}
	messages := chromedp.Console(ctx) // subscribes now: nothing the first page prints is lost
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("browser: open a tab: %v", err)
	}
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior:         cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		DownloadPath:     p.downloads,
		EventsEnabled:    new(true),
	}); err != nil {
		cancel()
		t.Fatalf("browser: allow downloads: %v", err)
	}
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			if len(p.console) < 200 {
				p.console = append(p.console, fmt.Sprintf("console.%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			if path, err := p.Shot("failed"); err != nil {
				t.Logf("browser: screenshot of the failed page: %v", err)
			} else {
				t.Logf("browser: the page at the failure (%s) is in %s", p.location(), path)
			}
			p.mu.Lock()
			if len(p.console) > 0 {
				t.Logf("browser: the page's console:\n  %s", strings.Join(p.console, "\n  "))
			}
			p.mu.Unlock()
		}
		cancel()
		os.RemoveAll(p.downloads)
	})
	return p
}

// Context is the tab's chromedp context, for actions the helpers do not cover.
func (p *Page) Context() context.Context { return p.ctx }

// do runs actions bounded by the browser's timeout and fails the test on error.
func (p *Page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.b.opts.Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %s (page %s): %v", what, p.location(), err)
	}
}

// Go opens url and waits for its load event.
func (p *Page) Go(url string) {
	p.t.Helper()
	p.do("open "+url, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression (promises awaited) and decodes its value
// into out (nil: ignored).
func (p *Page) Eval(js string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.b.opts.Timeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browser: evaluate %s: %v", js, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("browser: evaluate %s: decode %s: %v", js, raw, err)
		}
	}
}

// Wait polls a JavaScript expression until it is truthy (errors, as while a page
// loads, count as not yet) and returns its last value as JSON. what says in words
// what the test waits for; it is the failure message.
func (p *Page) Wait(what, js string) json.RawMessage {
	p.t.Helper()
	return p.WaitFor(p.b.opts.Timeout, what, js)
}

// WaitFor is Wait with its own bound (for flows that take longer than a page).
func (p *Page) WaitFor(timeout time.Duration, what, js string) json.RawMessage {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last json.RawMessage
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
		cancel()
		lastErr = err
		if err == nil {
			last = raw
			if truthy(raw) {
				return raw
			}
		}
		if p.ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		p.t.Fatalf("browser: waited %s for %s (page %s): last error %v", timeout, what, p.location(), lastErr)
	}
	p.t.Fatalf("browser: waited %s for %s (page %s): last value %s", timeout, what, p.location(), last)
	return nil
}

func truthy(raw json.RawMessage) bool {
	switch s := strings.TrimSpace(string(raw)); s {
	case "", "null", "false", "0", `""`, "undefined":
		return false
	default:
		return true
	}
}

// finders is the JavaScript that finds elements the way a person does: by
// data-testid, by the text of a label, by a button's name. It prefers the topmost
// open <dialog> (a modal makes the rest of the page inert, and its confirm button
// often has the same name as the button that opened it).
const finders = `const __tf = (() => {
  const norm = s => (s || '').replace(/\s+/g, ' ').trim();
  const visible = e => !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const roots = () => { const d = [...document.querySelectorAll('dialog[open]')]; return d.length ? [d[d.length - 1], document] : [document]; };
  const first = (sel, ok) => { for (const r of roots()) for (const e of r.querySelectorAll(sel)) if (visible(e) && ok(e)) return e; return null; };
  const labelText = l => { const c = l.cloneNode(true); c.querySelectorAll('input,select,textarea,button,option').forEach(n => n.remove()); return norm(c.textContent); };
  const name = e => norm(e.getAttribute('aria-label') || e.innerText || e.value || e.textContent);
  return {
    norm, visible,
    testid: id => first('[data-testid="' + CSS.escape(id) + '"]', () => true),
    label: want => {
      for (const r of roots()) {
        for (const l of r.querySelectorAll('label')) if (labelText(l) === want && l.control && visible(l.control)) return l.control;
        for (const e of r.querySelectorAll('[aria-label]')) if (norm(e.getAttribute('aria-label')) === want && visible(e) && !e.matches('button,a')) return e;
        for (const e of r.querySelectorAll('[aria-labelledby]')) {
          const t = e.getAttribute('aria-labelledby').split(/\s+/).map(id => norm((document.getElementById(id) || {}).textContent)).join(' ');
          if (t === want && visible(e)) return e;
        }
      }
      return null;
    },
    button: want => first('button,[role=button],input[type=submit],input[type=button]', e => name(e) === want),
    link: want => first('a[href],[role=link]', e => name(e) === want),
  };
})();`

// js returns an expression that evaluates body with the finders in scope.
func js(body string, args ...any) string {
	quoted := make([]any, len(args))
	for i, a := range args {
		b, _ := json.Marshal(a)
		quoted[i] = string(b)
	}
	return "(() => { " + finders + " return (" + fmt.Sprintf(body, quoted...) + "); })()"
}

// TestID is a selector for the first visible element with data-testid id.
func TestID(id string) chromedp.JSPath { return chromedp.JSPath(js("__tf.testid(%s)", id)) }

// Label is a selector for the visible form control whose <label> (or aria-label)
// reads text, whitespace collapsed.
func Label(text string) chromedp.JSPath { return chromedp.JSPath(js("__tf.label(%s)", text)) }

// Button is a selector for the visible button whose name (aria-label or text) is text.
func Button(text string) chromedp.JSPath { return chromedp.JSPath(js("__tf.button(%s)", text)) }

// Link is a selector for the visible link whose name is text.
func Link(text string) chromedp.JSPath { return chromedp.JSPath(js("__tf.link(%s)", text)) }

// WaitTestID waits until an element with data-testid id is visible.
func (p *Page) WaitTestID(id string) {
	p.t.Helper()
	p.Wait("a visible [data-testid="+id+"]", js("!!__tf.testid(%s)", id))
}

// Text returns the visible text of the element with data-testid id (waiting for it),
// whitespace collapsed.
func (p *Page) Text(id string) string {
	p.t.Helper()
	var s string
	if err := json.Unmarshal(p.Wait("a visible [data-testid="+id+"]", js("(e => e && (__tf.norm(e.innerText) || ' '))(__tf.testid(%s))", id)), &s); err != nil {
		p.t.Fatalf("browser: text of %s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

// WaitTestIDText waits until the element with data-testid id shows text containing
// want, and returns its whole text.
func (p *Page) WaitTestIDText(id, want string) string {
	p.t.Helper()
	return p.WaitTestIDTextFor(p.b.opts.Timeout, id, want)
}

// WaitTestIDTextFor is WaitTestIDText with its own bound.
func (p *Page) WaitTestIDTextFor(timeout time.Duration, id, want string) string {
	p.t.Helper()
	var s string
	raw := p.WaitFor(timeout, fmt.Sprintf("[data-testid=%s] to show %q", id, want),
		js("(e => e && __tf.norm(e.innerText).includes(%s) && __tf.norm(e.innerText))(__tf.testid(%s))", want, id))
	_ = json.Unmarshal(raw, &s)
	return s
}

// WaitText waits until the page's visible text contains want.
func (p *Page) WaitText(want string) {
	p.t.Helper()
	p.Wait(fmt.Sprintf("the page to show %q", want), js("__tf.norm(document.body && document.body.innerText).includes(%s)", want))
}

// Count returns how many visible elements have data-testid id (without waiting).
func (p *Page) Count(id string) int {
	p.t.Helper()
	var n int
	p.Eval(js("[...document.querySelectorAll('[data-testid=\"' + CSS.escape(%s) + '\"]')].filter(__tf.visible).length", id), &n)
	return n
}

// Texts returns the visible texts of every visible element with data-testid id
// (without waiting).
func (p *Page) Texts(id string) []string {
	p.t.Helper()
	var out []string
	p.Eval(js("[...document.querySelectorAll('[data-testid=\"' + CSS.escape(%s) + '\"]')].filter(__tf.visible).map(e => __tf.norm(e.innerText))", id), &out)
	return out
}

// Click clicks the element sel finds (waiting until it is visible) with the mouse.
func (p *Page) Click(what string, sel chromedp.JSPath) {
	p.t.Helper()
	p.do("click "+what, chromedp.Click(sel, chromedp.NodeVisible))
}

// ClickButton clicks the visible button named text (in the open dialog first).
func (p *Page) ClickButton(text string) {
	p.t.Helper()
	p.Click("the button "+text, Button(text))
}

// Fill replaces the value of the field labelled label by typing value into it.
func (p *Page) Fill(label, value string) {
	p.t.Helper()
	p.do("fill "+label, chromedp.WaitVisible(Label(label)), chromedp.Evaluate[chromedp.Void](js(
		"(e => { e.focus(); e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); })(__tf.label(%s))", label)),
		chromedp.SendKeys(Label(label), value))
}

// Select chooses, in the <select> labelled label, the option whose value or text is
// choice, as a person picking it would (input and change events).
func (p *Page) Select(label, choice string) {
	p.t.Helper()
	var ok bool
	p.Wait("the field "+label, js("!!__tf.label(%s)", label))
	p.Eval(js(`(e => {
	  const o = [...e.options].find(o => o.value === %s || __tf.norm(o.textContent) === %s);
	  if (!o) return false;
	  e.focus(); e.value = o.value;
	  e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));
	  return true; })(__tf.label(%s))`, choice, choice, label), &ok)
	if !ok {
		p.t.Fatalf("browser: the select %q has no option %q", label, choice)
	}
}

// SetChecked sets the checkbox or radio labelled label to on, by clicking it if
// it is not already.
func (p *Page) SetChecked(label string, on bool) {
	p.t.Helper()
	var checked bool
	p.Wait("the field "+label, js("!!__tf.label(%s)", label))
	p.Eval(js("__tf.label(%s).checked", label), &checked)
	if checked != on {
		p.Click("the box "+label, Label(label))
	}
}

// Focus moves the keyboard focus to the element sel finds, as Tab would.
func (p *Page) Focus(what string, sel chromedp.JSPath) {
	p.t.Helper()
	p.do("focus "+what, chromedp.Focus(sel, chromedp.NodeVisible))
}

// Press types keys on the keyboard into whatever has the focus (kb.Enter,
// kb.Escape, kb.Tab, or text).
func (p *Page) Press(keys string) {
	p.t.Helper()
	p.do(fmt.Sprintf("press %q", keys), chromedp.KeyEvent(keys))
}

// Download is a file the browser saved.
type Download struct {
	// Name is the file name the page suggested (Content-Disposition or <a download>).
	Name string
	// Data is its content.
	Data []byte
	// URL is where it came from (a blob: URL for a file the page built itself).
	URL string
}

// Download runs trigger (a click, usually) and waits until the browser has saved
// the one download it starts.
func (p *Page) Download(trigger func()) Download {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.b.opts.Timeout)
	defer cancel()
	// Subscribed before the trigger, so no event is missed.
	begins := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadProgress)
	trigger()
	var d Download
	var guid string
	for ev, err := range begins {
		if err != nil {
			p.t.Fatalf("browser: no download began (page %s): %v", p.location(), err)
		}
		guid, d.Name, d.URL = ev.GUID, ev.SuggestedFilename, ev.URL
		break
	}
	for ev, err := range progress {
		if err != nil {
			p.t.Fatalf("browser: download %s did not complete: %v", d.Name, err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			p.t.Fatalf("browser: download %s was canceled", d.Name)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			break
		}
	}
	data, err := os.ReadFile(filepath.Join(p.downloads, guid))
	if err != nil {
		p.t.Fatalf("browser: read download %s: %v", d.Name, err)
	}
	d.Data = data
	return d
}

// ColorScheme makes the page see prefers-color-scheme: scheme ("dark" or "light").
func (p *Page) ColorScheme(scheme string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.b.opts.Timeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	}); err != nil {
		p.t.Fatalf("browser: emulate prefers-color-scheme %s: %v", scheme, err)
	}
}

// Location is the page's current URL.
func (p *Page) Location() string {
	p.t.Helper()
	return p.location()
}

func (p *Page) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Shot saves a PNG of the whole page as <ShotDir>/<test>-<name>.png (a number added
// when the name repeats within a test) and returns its path.
func (p *Page) Shot(name string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", err
	}
	return p.save(unsafeName.ReplaceAllString(p.t.Name(), "_")+"-"+unsafeName.ReplaceAllString(name, "_"), png)
}

// ShotTo saves a PNG of the whole page at path (its directory created) and returns
// path; for screenshots with fixed names (make console-shots).
func (p *Page) ShotTo(path string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("browser: screenshot %s: %v", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
	return path
}

func (p *Page) save(base string, png []byte) (string, error) {
	shotSeq.Lock()
	if shotSeq.n == nil {
		shotSeq.n = map[string]int{}
	}
	shotSeq.n[base]++
	if n := shotSeq.n[base]; n > 1 {
		base = fmt.Sprintf("%s-%d", base, n)
	}
	shotSeq.Unlock()
	if err := os.MkdirAll(p.b.opts.ShotDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(p.b.opts.ShotDir, base+".png")
	return path, os.WriteFile(path, png, 0o644)
}
