// Package browsertest runs pages in a real headless Chromium for tests: it finds the
// browser (skipping loudly when it is missing), loads a URL, waits until a JavaScript
// condition holds, evaluates expressions in the page and saves PNG screenshots.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvRequire set to "1" turns a missing browser into a failure instead of a skip (CI).
const EnvRequire = "EDGEMIGRATE_REQUIRE_BROWSER"

// EnvChromium names the browser binary to use instead of looking one up in PATH.
const EnvChromium = "EDGEMIGRATE_CHROMIUM"

// candidates are looked up in PATH in order; Debian's package installs "chromium".
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// Chromium returns the path of a Chromium (or Chrome) binary. Without one it skips the
// test, or fails it when EDGEMIGRATE_REQUIRE_BROWSER=1.
func Chromium(t testing.TB) string {
	t.Helper()
	path, err := find()
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("SKIP: real-browser test: chromium not found; apt-get install chromium (%v)", err)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s; %s=1 requires it", msg, EnvRequire)
		return ""
	}
	t.Skip(msg)
	return ""
}

func find() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvChromium, p, err)
		}
		return p, nil
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %v in PATH", candidates)
}

// Options configures a Page. Zero values take the defaults.
type Options struct {
	// Width and Height of the window in CSS pixels; default 1440×1000.
	Width, Height int
	// Timeout bounds each wait and evaluation; default 30s. It only turns a hang
	// into a failure: the tests assert no speed.
	Timeout time.Duration
}

// Page is one tab of a headless Chromium started for a test. It is closed, and the
// browser stopped, when the test ends.
type Page struct {
	t       testing.TB
	ctx     context.Context
	timeout time.Duration

	mu     sync.Mutex
	errors []string // console errors and uncaught exceptions
}

// Open starts a headless Chromium (skipping the test as Chromium does when there is
// none) and navigates to url.
func Open(t testing.TB, url string, o Options) *Page {
	t.Helper()
	exe := Chromium(t)
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 1440, 1000
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		// Tests run as root in containers: no sandbox, no GPU, and /dev/shm is small.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(o.Width, o.Height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	p := &Page{t: t, ctx: ctx, timeout: o.Timeout}

	consoleDone := make(chan struct{})
	messages := chromedp.Console(ctx) // starts the browser and subscribes before the page loads
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				p.mu.Lock()
				p.errors = append(p.errors, m.String())
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit, before t.TempDir is removed
		<-consoleDone
	})

	navCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := chromedp.Do(navCtx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("loading %s in Chromium (%s): %v", url, exe, err)
	}
	return p
}

// Errors returns the console errors and uncaught exceptions the page produced so far.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// WaitFor polls the JavaScript expression cond until it is truthy, failing after the
// page's timeout with the last evaluation error and the page's console errors.
func (p *Page) WaitFor(cond string) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	expr := "!!(" + cond + ")"
	var lastErr error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %s for %s: condition never held (last error: %v, console errors: %q)",
				p.timeout, cond, lastErr, p.Errors())
		case <-tick.C:
		}
	}
}

// Eval evaluates expr in the page and decodes its JSON value into T.
func Eval[T any](p *Page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		return v, fmt.Errorf("evaluating %s: %w", expr, err)
	}
	return v, nil
}

// Screenshot saves a PNG of the whole page to path, creating its directory.
func (p *Page) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		return fmt.Errorf("taking screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating screenshot directory: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("writing screenshot: %w", err)
	}
	return nil
}

// Load is the one-shot form: it opens url, waits until cond holds, evaluates each of
// exprs (name → JavaScript expression) and, when screenshot is not empty, saves a PNG
// there. The browser stays open until the test ends.
func Load(t testing.TB, url, cond string, timeout time.Duration, exprs map[string]string, screenshot string) (map[string]any, error) {
	t.Helper()
	p := Open(t, url, Options{Timeout: timeout})
	if err := p.WaitFor(cond); err != nil {
		return nil, err
	}
	values := make(map[string]any, len(exprs))
	for name, expr := range exprs {
		v, err := Eval[any](p, expr)
		if err != nil {
			return nil, fmt.Errorf("value %s: %w", name, err)
		}
		values[name] = v
	}
	if screenshot != "" {
		if err := p.Screenshot(screenshot); err != nil {
			return nil, err
		}
	}
	return values, nil
}
