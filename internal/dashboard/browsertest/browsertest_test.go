package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Skip and Fatal instead of ending the test.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }

func TestChromiumMissing(t *testing.T) {
	tests := []struct {
		name      string
		require   string
		wantSkip  bool
		wantFatal bool
	}{
		{"skips loudly", "", true, false},
		{"required fails", "1", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "no-such-chromium"))
			t.Setenv(EnvRequire, tt.require)
			r := &recorder{TB: t}
			if path := Chromium(r); path != "" {
				t.Errorf("Chromium() = %q, want none", path)
			}
			const reason = "SKIP: real-browser test: chromium not found; apt-get install chromium"
			if got := strings.Contains(r.skipped, reason); got != tt.wantSkip {
				t.Errorf("skipped %q, want skip=%v with %q", r.skipped, tt.wantSkip, reason)
			}
			if got := strings.Contains(r.fatal, reason); got != tt.wantFatal {
				t.Errorf("fatal %q, want fatal=%v with %q", r.fatal, tt.wantFatal, reason)
			}
		})
	}
}

func TestChromiumFromEnv(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvChromium, exe)
	if got := Chromium(t); got != exe {
		t.Errorf("Chromium() = %q, want %q", got, exe)
	}
}

// TestE2EBrowserLoad drives a real Chromium: a page that changes itself after loading,
// a wait for the change, values read back and a PNG saved.
func TestE2EBrowserLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: real-browser test; not run with -short")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><p id="n">0</p><script>
			let n = 0;
			const timer = setInterval(() => { document.getElementById("n").textContent = ++n; if (n === 3) clearInterval(timer); }, 20);
		</script></body></html>`)
	}))
	t.Cleanup(srv.Close)

	shot := filepath.Join(t.TempDir(), "shots", "page.png")
	values, err := Load(t, srv.URL, `document.getElementById("n").textContent === "3"`, 30*time.Second,
		map[string]string{"n": `+document.getElementById("n").textContent`, "title": `document.title`}, shot)
	if err != nil {
		t.Fatal(err)
	}
	if values["n"] != 3.0 || values["title"] != "" {
		t.Errorf("values = %v, want n=3 and an empty title", values)
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot starts with %q, want a PNG", png[:min(8, len(png))])
	}
}

func TestE2EBrowserWaitForTimesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: real-browser test; not run with -short")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><script>console.error("boom")</script></body></html>`)
	}))
	t.Cleanup(srv.Close)
	p := Open(t, srv.URL, Options{Timeout: 300 * time.Millisecond})
	err := p.WaitFor(`window.neverSet === true`)
	if err == nil || !strings.Contains(err.Error(), "condition never held") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("WaitFor = %v, want a timeout naming the page's console error", err)
	}
}
