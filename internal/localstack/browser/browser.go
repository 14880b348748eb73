// Package browser drives a headless Chromium from Go tests (through chromedp, over the
// DevTools pipe, so the browser opens no debugging port) and gives tests the few
// actions an operator takes in the console: open a page, wait for an element by its
// data-testid or its label, click a button by its text, fill a field, download a file.
// Every wait is bounded and, when a test fails, the page it was on is saved as a PNG,
// so a failure in CI can be seen and not only read.
package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecEnv names an environment variable that, when set, is the Chromium (or Chrome)
// binary to run instead of the one found on the machine.
const ExecEnv = "TENANTFLOW_CHROMIUM"

// debianBinary is the browser itself in Debian's chromium package. /usr/bin/chromium
// is a shell wrapper that adds flags from /etc/chromium.d (extensions, Google API
// keys) that a test browser does not want, so the binary is run directly when it is
// there.
const debianBinary = "/usr/lib/chromium/chromium"

// ExecPath returns the browser binary to run: $TENANTFLOW_CHROMIUM, Debian's chromium,
// or the first of the usual names found on PATH. Its error says how to install one.
func ExecPath() (string, error) {
	if p := os.Getenv(ExecEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("%s=%s is not an executable: %w", ExecEnv, p, err)
		}
		return p, nil
	}
	if _, err := os.Stat(debianBinary); err == nil {
		return debianBinary, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found: run `make chromium` (installs Debian's chromium) or set " + ExecEnv + " to a Chrome/Chromium binary")
}

// Options configure Start.
type Options struct {
	// ShotDir receives the screenshots of failed tests (and Page.Shot's); default
	// os.TempDir()/tenantflow-shots.
	ShotDir string
	// Width and Height of the window in CSS pixels (default 1280×900).
	Width, Height int
	// Log receives the browser's own output (default: discarded).
	Log io.Writer
	// Timeout bounds each wait of a Page (default 30 s).
	Timeout time.Duration
}

// Browser is one running headless Chromium with a fresh profile. Its tabs (Pages)
// share nothing but the process: each has its own browser context, so cookies and
// storage of one never reach another.
type Browser struct {
	ctx     context.Context
	cancel  context.CancelFunc
	opts    Options
	dataDir string
}

// Start launches the browser and returns once it answers. Close stops it.
//
// The flags keep it quiet and local: headless, no sandbox when run as root (Chromium
// refuses to start otherwise), no GPU, no QUIC, no first-run, sync, component or
// background traffic, and a host resolver that fails every name but localhost, so a
// page that tried to fetch from the network would fail at once rather than wait.
func Start(ctx context.Context, opts Options) (*Browser, error) {
	path, err := ExecPath()
	if err != nil {
		return nil, err
	}
	if opts.Width == 0 {
		opts.Width, opts.Height = 1280, 900
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.ShotDir == "" {
		opts.ShotDir = filepath.Join(os.TempDir(), "tenantflow-shots")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	dataDir, err := os.MkdirTemp("", "tenantflow-chromium-")
	if err != nil {
		return nil, err
	}
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dataDir),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("no-sandbox", os.Getuid() == 0),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"),
		chromedp.WindowSize(opts.Width, opts.Height),
		chromedp.CombinedOutput(opts.Log),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.WithoutCancel(ctx), flags...)
	bctx, bcancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: bctx, opts: opts, dataDir: dataDir, cancel: func() {
		bcancel()
		allocCancel()
		os.RemoveAll(dataDir)
	}}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	started := make(chan error, 1)
	// The first action starts the process and binds it to bctx (not to startCtx, which
	// would end the browser with the start's deadline), so the start is bounded by
	// waiting for it here.
	go func() { started <- chromedp.Do(bctx) }()
	select {
	case err = <-started:
	case <-startCtx.Done():
		err = fmt.Errorf("chromium did not start within a minute: %w", startCtx.Err())
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return b, nil
}

// Close stops the browser and removes its profile.
func (b *Browser) Close() {
	if b.cancel != nil {
		b.cancel()
	}
}

// ShotDir is where the screenshots go.
func (b *Browser) ShotDir() string { return b.opts.ShotDir }
