package demo

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/dashboard/browsertest"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

const (
	// artifactsEnv names a directory where the screenshot is kept (CI uploads it).
	artifactsEnv = "EDGEMIGRATE_ARTIFACTS"
	// leadScreenshot is a copy of the screenshot for the closing note of the issue.
	leadScreenshot = "/tmp/demo-screenshot.png"
	// hangGuard only turns a hang into a failure; the test asserts no speed.
	hangGuard = 12 * time.Minute
)

// syncBuffer is the demo's terminal, read while the demo writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestE2EDemo runs the whole demo on two real clusters and checks that both scenarios
// succeed and are told in the terminal; meanwhile a headless Chromium loads the dashboard
// and checks that it draws both clusters, the car and a completed migration. Where real
// nodes can run (root, containerd, the images) the demo runs on real containers: then every
// mobility timeline also says how many of the car's requests it saw, none failed, and the
// dashboard's request panel shows them.
func TestE2EDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: starts real Kubernetes clusters; not run with -short")
	}
	if _, err := localcluster.FindBinDir(); err != nil {
		if errors.Is(err, localcluster.ErrToolsMissing) && os.Getenv(clustertest.RequireToolsEnv) != "1" {
			t.Skip("SKIP: real-cluster test needs the pinned binaries: " + err.Error())
		}
		t.Fatal(err)
	}
	binary := fleettest.Binary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		// A long duration: the test ends the run itself once it has seen what it checks.
		done <- Run(ctx, Options{Clusters: 2, Duration: time.Hour, Listener: ln, Out: out, Binary: binary})
	}()
	var runErr error
	finished := false
	defer func() {
		if !finished {
			cancel()
			<-done
		}
		t.Logf("demo output:\n%s", out.String())
	}()

	t.Run("browser", func(t *testing.T) {
		checkDashboard(t, url, out)
	})

	// Wait for the demo to say both scenarios are done (or to fail), then stop it as Ctrl-C would.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
waiting:
	for !strings.Contains(out.String(), "Both scenarios succeeded") {
		select {
		case runErr = <-done:
			finished = true
			break waiting
		case <-tick.C:
		}
	}
	if !finished {
		cancel()
		runErr = <-done
		finished = true
	}
	if runErr != nil {
		t.Fatalf("demo.Run: %v", runErr)
	}
	text := out.String()
	real := realMode(t, text)
	requests := ""
	if real {
		requests = `  requests: [1-9]\d*, 0 failed, p50 \S+, p99 \S+`
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`car requests: [1-9]\d* sent, [1-9]\d* ok, 0 failed`),
			// The offloaded profiler answers from the neighbour, the full cluster's gateway
			// redirecting its client there.
			regexp.MustCompile(`car-2 sent a telemetry window to edge-a's gateway: answered by demo/profiler-\S+ in edge-b \(via edge-a → edge-b\)`),
		} {
			if !want.MatchString(text) {
				t.Errorf("the demo's output has no line matching %s", want)
			}
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`car-1 service detector: edge-a → edge-b  \(ClientMobility\)  proposed \+\S+  decided \+\S+  ready \+\S+  source removed \+\S+` + requests),
		regexp.MustCompile(`car-1 service detector: edge-b → edge-a  \(ClientMobility\)  proposed \+\S+  decided \+\S+  ready \+\S+  source removed \+\S+` + requests),
		regexp.MustCompile(`service (segmenter|profiler): edge-a → edge-b  \(InsufficientResources\)  proposed \+\S+  decided \+\S+  ready \+\S+  source removed \+\S+`),
		regexp.MustCompile(`migrations: 3 completed, 0 failed`),
		regexp.MustCompile(`Stopping every process the demo started`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the demo's output has no line matching %s", want)
		}
	}
}

// realMode reads the demo's opening line on its mode: true for real containers.
func realMode(t *testing.T, text string) bool {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\S+  (Real containers: |kwok: )`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("the demo did not say whether it runs on real containers or on kwok")
	}
	if m[1] == "kwok: " {
		why := strings.SplitN(text[strings.Index(text, "kwok: "):], "\n", 2)[0]
		if os.Getenv(clustertest.RequireRealNodesEnv) == "1" {
			// CI provides real nodes: a demo that fell back to kwok hides a missing install.
			t.Errorf("the demo ran on kwok although %s=1: %s", clustertest.RequireRealNodesEnv, why)
		} else {
			t.Logf("NOTE: the demo ran on kwok, the car sending no request: %s", why)
		}
	}
	return m[1] != "kwok: "
}

// checkDashboard loads the dashboard in headless Chromium (skipping loudly without one)
// and waits until it draws both clusters, the car and a completed migration; on real
// containers, the car's requests too.
func checkDashboard(t *testing.T, url string, out *syncBuffer) {
	page := browsertest.Open(t, url, browsertest.Options{Timeout: 4 * time.Minute})
	err := page.WaitFor(`document.querySelectorAll('[data-cluster]').length >= 2 &&
		document.querySelector('[data-car="car-1"]') &&
		document.querySelector('[data-migration][data-phase="Completed"]')`)
	if err != nil {
		t.Fatal(err)
	}
	clusters, err := browsertest.Eval[string](page, `[...document.querySelectorAll('[data-cluster]')].map(e => e.dataset.cluster).sort().join(',')`)
	if err != nil {
		t.Fatal(err)
	}
	if clusters != "edge-a,edge-b" {
		t.Errorf("clusters drawn: %q, want edge-a,edge-b", clusters)
	}
	// The screenshot for people shows the end of both scenarios: three completed migrations.
	if err := page.WaitFor(`document.querySelectorAll('[data-migration][data-phase="Completed"]').length >= 3`); err != nil {
		t.Fatal(err)
	}
	if realMode(t, out.String()) {
		// The panel shows the requests State has: some sent, answered by both clusters, none failed.
		if err := page.WaitFor(`(() => { const r = document.querySelector('#requests [data-requests="car-1"]');
			return r && r.querySelectorAll(".strip .req").length > 0 && r.querySelectorAll(".byc [data-count]").length >= 2; })()`); err != nil {
			t.Fatal(err)
		}
		failed, err := browsertest.Eval[string](page, `document.querySelector('#requests [data-figure="failed"] b').textContent`)
		if err != nil {
			t.Fatal(err)
		}
		if failed != "0" {
			t.Errorf("the request panel shows %s failed requests, want 0", failed)
		}
	}
	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %q", errs)
	}

	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "demo-dashboard.png")
	if err := page.Screenshot(path); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s", path)
	png, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("%s is not a PNG", path)
	}
	if err := os.WriteFile(leadScreenshot, png, 0o644); err != nil {
		t.Logf("copying the screenshot to %s: %v", leadScreenshot, err)
	} else {
		t.Logf("copied to %s", leadScreenshot)
	}
}
