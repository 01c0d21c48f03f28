package dashboard

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/dashboard/browsertest"
)

// EnvArtifacts names a folder where tests leave files for people to look at (CI uploads it).
const envArtifacts = "EDGEMIGRATE_ARTIFACTS"

// circle is a coverage circle as drawn, in SVG user units.
type circle struct {
	ID    string  `json:"id"`
	CX    float64 `json:"cx"`
	CY    float64 `json:"cy"`
	R     float64 `json:"r"`
	Label string  `json:"label"`
}

// TestE2EBrowserDashboard serves a synthetic demo state, loads the page in a real
// headless Chromium and checks what it draws, then publishes an update and checks that
// the page shows it without reloading.
func TestE2EBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: real-browser test; not run with -short")
	}
	browsertest.Chromium(t) // skip (or fail under EDGEMIGRATE_REQUIRE_BROWSER=1) before starting anything

	s := New(Options{})
	first, second := syntheticState(t0, 0), syntheticState(t0, 1)
	s.Publish(first)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("dashboard server: %v", err)
		}
	})

	page := browsertest.Open(t, "http://"+ln.Addr().String()+"/", browsertest.Options{Width: 1440, Height: 1000})
	stamp := func(st State) string { return st.Time.Format(time.RFC3339Nano) }
	if err := page.WaitFor(`document.body.dataset.updated === "` + stamp(first) + `"`); err != nil {
		t.Fatal(err)
	}

	t.Run("coverage circles", func(t *testing.T) {
		circles, err := browsertest.Eval[[]circle](page, `[...document.querySelectorAll("#map [data-cluster]")].map(g => {
			const c = g.querySelector("circle");
			return {id: g.dataset.cluster, cx: +c.getAttribute("cx"), cy: +c.getAttribute("cy"), r: +c.getAttribute("r"),
				label: g.querySelector("text").textContent};
		})`)
		if err != nil {
			t.Fatal(err)
		}
		if len(circles) != 2 || circles[0].ID != "edge-a" || circles[1].ID != "edge-b" {
			t.Fatalf("coverage circles = %+v, want edge-a and edge-b", circles)
		}
		for _, c := range circles {
			if c.Label != c.ID || c.R <= 10 || c.CX-c.R < 0 || c.CX+c.R > 800 || c.CY-c.R < 0 || c.CY+c.R > 520 {
				t.Errorf("circle %+v: want labelled with its id, visibly large and inside the 800×520 map", c)
			}
		}
		// Same radius in metres gives the same radius on the map; edge-b lies east (right).
		if a, b := circles[0], circles[1]; a.R != b.R || b.CX <= a.CX {
			t.Errorf("edge-a %+v, edge-b %+v: want equal radii and edge-b right of edge-a", a, b)
		}
	})

	t.Run("car inside its serving cluster", func(t *testing.T) {
		inside, err := browsertest.Eval[map[string]any](page, `(() => {
			const car = document.querySelector('#map [data-car="car-1"]');
			const m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(car.getAttribute("transform"));
			const [x, y] = [+m[1], +m[2]];
			const dist = id => { const c = document.querySelector('#map [data-cluster="' + id + '"] circle');
				return Math.hypot(x - c.getAttribute("cx"), y - c.getAttribute("cy")) / c.getAttribute("r"); };
			return {a: dist("edge-a"), b: dist("edge-b"), track: document.querySelectorAll("#map .track").length,
				link: document.querySelectorAll("#map .link").length};
		})()`)
		if err != nil {
			t.Fatal(err)
		}
		// The car is 0.0126° of longitude east of edge-a's edge, inside edge-b's 1.5 km.
		if inside["a"].(float64) <= 1 || inside["b"].(float64) >= 1 || inside["track"] != 1.0 || inside["link"] != 1.0 {
			t.Errorf("car: %v; want outside edge-a (a>1), inside edge-b (b<1), one track, one link to its cluster", inside)
		}
	})

	t.Run("cluster panels", func(t *testing.T) {
		got, err := browsertest.Eval[map[string]any](page, `({
			nodes: document.querySelectorAll("#clusters .node").length,
			services: document.querySelectorAll("#clusters .svc").length,
			fullBars: document.querySelectorAll('[data-cluster-panel="edge-a"] .bar.full').length,
			migrated: [...document.querySelectorAll('[data-cluster-panel="edge-b"] .pill.from')].map(e => e.textContent).join(","),
			usedSlots: document.querySelectorAll('[data-cluster-panel="edge-a"] .slot.used').length,
		})`)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"nodes": 4.0, "services": 4.0, "fullBars": 1.0, "migrated": "from edge-a,from edge-a", "usedSlots": 7.0}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})

	t.Run("completed migration row", func(t *testing.T) {
		row, err := browsertest.Eval[map[string]any](page, `(() => {
			const r = document.querySelector('#timeline [data-migration="mig-1"]');
			return r && {phase: r.dataset.phase, steps: [...r.querySelectorAll(".step b")].map(b => b.textContent).join(","),
				durations: [...r.querySelectorAll(".step i")].map(i => i.textContent).join(",")};
		})()`)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"phase": "Completed", "steps": "Proposed,Decided,DestinationReady,Completed",
			"durations": "+12.0 ms,+28.0 ms,+260 ms,+121 ms"}
		for k, v := range want {
			if row[k] != v {
				t.Errorf("mig-1 row %s = %v, want %v", k, row[k], v)
			}
		}
	})

	t.Run("request panel", func(t *testing.T) {
		got, err := browsertest.Eval[map[string]any](page, `(() => {
			const box = document.querySelector('#requests [data-requests="car-1"]');
			const fig = k => box.querySelector('[data-figure="' + k + '"] b').textContent;
			const fill = id => getComputedStyle(document.querySelector('#map [data-cluster="' + id + '"] circle')).fill;
			const strip = [...box.querySelectorAll(".strip .req")];
			return {rate: fig("rate"), p50: fig("p50"), p99: fig("p99"), failed: fig("failed"),
				counts: [...box.querySelectorAll(".byc .count")].map(e => e.textContent).join(","),
				strip: strip.length, fails: strip.filter(e => e.classList.contains("fail")).length,
				// each answered request in its cluster's colour, the one of its coverage circle
				coloured: strip.filter(e => !e.classList.contains("fail") &&
					getComputedStyle(e).backgroundColor === fill(e.dataset.servedBy)).length};
		})()`)
		if err != nil {
			t.Fatal(err)
		}
		r := first.Requests[0]
		want := map[string]any{"rate": "5.0", "p50": "3.2 ms", "p99": "41.0 ms", "failed": "1",
			"counts": "edge-a 25,edge-b 14,http 503 1", "strip": float64(len(r.Recent)), "fails": 1.0, "coloured": float64(len(r.Recent) - 1)}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("request panel %s = %v, want %v", k, got[k], v)
			}
		}
	})

	t.Run("ledger and narration", func(t *testing.T) {
		n, err := browsertest.Eval[[]float64](page, `[document.querySelectorAll("#ledger .lrow").length, document.querySelectorAll("#log .logline").length]`)
		if err != nil {
			t.Fatal(err)
		}
		if n[0] != float64(len(first.Ledger)) || n[1] != float64(len(first.Log)) {
			t.Errorf("ledger rows, log lines = %v, want %d, %d", n, len(first.Ledger), len(first.Log))
		}
	})

	carBefore, err := browsertest.Eval[string](page, `document.querySelector('[data-car="car-1"]').getAttribute("transform")`)
	if err != nil {
		t.Fatal(err)
	}
	s.Publish(second)
	t.Run("live update", func(t *testing.T) {
		if err := page.WaitFor(`document.body.dataset.updated === "` + stamp(second) + `"`); err != nil {
			t.Fatal(err)
		}
		got, err := browsertest.Eval[map[string]any](page, `({
			phase: document.querySelector('[data-migration="mig-2"]').dataset.phase,
			car: document.querySelector('[data-car="car-1"]').getAttribute("transform"),
			ledger: document.querySelectorAll("#ledger .lrow").length,
			strip: document.querySelectorAll('#requests [data-requests="car-1"] .strip .req').length,
		})`)
		if err != nil {
			t.Fatal(err)
		}
		if got["phase"] != "Completed" || got["car"] == carBefore || got["ledger"] != float64(len(second.Ledger)) ||
			got["strip"] != float64(len(second.Requests[0].Recent)) {
			t.Errorf("after the update: %v; want mig-2 Completed, the car moved from %s, %d ledger rows, %d recent requests",
				got, carBefore, len(second.Ledger), len(second.Requests[0].Recent))
		}
	})

	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %q", errs)
	}
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "dashboard-synthetic.png")
	if err := page.Screenshot(path); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
