package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

func TestRequestFigures(t *testing.T) {
	for _, tc := range []struct {
		w    car.Window
		want string
	}{
		{car.Window{Requests: 57, Latency: car.Latency{P50: 3100 * time.Microsecond, P99: 12 * time.Millisecond}}, "requests: 57, 0 failed, p50 3.1ms, p99 12ms"},
		{car.Window{Requests: 2, Failed: 2}, "requests: 2, 2 failed"},
		{car.Window{}, "requests: 0, 0 failed"},
	} {
		if got := requestFigures(tc.w); got != tc.want {
			t.Errorf("requestFigures(%+v) = %q, want %q", tc.w, got, tc.want)
		}
	}
}

func TestDashboardRequests(t *testing.T) {
	st := car.Stats{Sent: 5, OK: 4, Failed: 1, ByCluster: map[string]int{"edge-a": 4}, FailedBy: map[string]int{"http 503": 1},
		Window: car.Window{Span: 10 * time.Second, Rate: 0.5, Failed: 1, Latency: car.Latency{P50: 2 * time.Millisecond, P99: 9 * time.Millisecond}}}
	recent := []car.Result{{Seq: 3, Cluster: "edge-a", Status: 200, Latency: 1500 * time.Microsecond}, {Seq: 4, Status: 503, Reason: "http 503"}}
	r := dashboardRequests("car-1", st, recent)
	if r.Car != "car-1" || r.Sent != 5 || r.OK != 4 || r.Failed != 1 || r.WindowS != 10 || r.RatePerS != 0.5 || r.WindowFailed != 1 ||
		r.P50Ms != 2 || r.P99Ms != 9 || r.ByCluster["edge-a"] != 4 || r.FailedBy["http 503"] != 1 {
		t.Errorf("dashboardRequests = %+v", r)
	}
	if len(r.Recent) != 2 || !r.Recent[0].OK || r.Recent[0].Cluster != "edge-a" || r.Recent[0].LatencyMs != 1.5 || r.Recent[1].OK || r.Recent[1].Status != 503 {
		t.Errorf("recent = %+v", r.Recent)
	}
}

func TestModeLine(t *testing.T) {
	m := detectMode(context.Background(), Options{Kwok: true}, t.TempDir())
	if m.real || !strings.HasPrefix(m.String(), "kwok: ") || !strings.Contains(m.String(), "--kwok") {
		t.Errorf("with --kwok: %+v %q, want kwok saying why", m, m)
	}
	t.Setenv(localcluster.ImagesDirEnv, "")
	m = detectMode(context.Background(), Options{}, t.TempDir()) // no images there
	if m.real || !strings.HasPrefix(m.String(), "kwok: ") || m.why == "" {
		t.Errorf("without images: %q, want kwok with the reason", m)
	}
	real := mode{real: true, classifier: "edgemigrate.local/classifier:0.1.0"}
	if s := real.String(); !strings.HasPrefix(s, "Real containers: ") || !strings.Contains(s, real.classifier) {
		t.Errorf("real: %q", s)
	}
}
