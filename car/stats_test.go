package car

import (
	"maps"
	"math"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/geo"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestLatencies(t *testing.T) {
	ok := func(ds ...int) []Result {
		var rs []Result
		for _, d := range ds {
			rs = append(rs, Result{Latency: ms(d)})
		}
		return rs
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name    string
		results []Result
		want    Latency
	}{
		{"none", nil, Latency{}},
		{"one", ok(7), Latency{ms(7), ms(7), ms(7)}},
		{"unsorted", ok(30, 10, 20), Latency{ms(20), ms(30), ms(30)}},
		{"1..100", ok(hundred...), Latency{ms(50), ms(99), ms(100)}},
		{"failures left out", append(ok(5), Result{Latency: ms(999), Reason: ReasonTransport}), Latency{ms(5), ms(5), ms(5)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := latencies(tc.results); got != tc.want {
				t.Errorf("latencies = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int, cluster, reason string, lat int) Result {
		return Result{Start: t0.Add(time.Duration(s) * time.Second), Cluster: cluster, Reason: reason, Latency: ms(lat)}
	}
	results := []Result{
		at(0, "a", "", 100),
		at(5, "a", "", 1),
		at(6, "b", "", 3),
		at(7, "", "http 503", 0),
		at(9, "b", "", 2),
	}
	w := window(results, t0.Add(10*time.Second), 5*time.Second)
	want := Window{Span: 5 * time.Second, Requests: 3, Failed: 1, Rate: 0.6, Latency: Latency{ms(2), ms(3), ms(3)},
		ByCluster: map[string]int{"b": 2}}
	if w.Requests != want.Requests || w.Failed != want.Failed || math.Abs(w.Rate-want.Rate) > 1e-9 || w.Latency != want.Latency || !maps.Equal(w.ByCluster, want.ByCluster) {
		t.Errorf("window = %+v, want %+v", w, want)
	}
	c := &Car{results: results}
	if b := c.Between(t0.Add(5*time.Second), t0.Add(7*time.Second)); b.Requests != 3 || b.Failed != 1 || b.ByCluster["a"] != 1 || b.Latency.P99 != ms(3) {
		t.Errorf("Between 5s and 7s = %+v, want the 3 requests started then, 1 failed", b)
	}
	if w := window(nil, t0, time.Second); w.Requests != 0 || w.Rate != 0 {
		t.Errorf("empty window = %+v", w)
	}
}

func TestSummary(t *testing.T) {
	s := Stats{Sent: 4, OK: 3, Failed: 1, Latency: Latency{ms(2), ms(9), ms(9)},
		ByCluster: map[string]int{"edge-b": 1, "edge-a": 2}, FailedBy: map[string]int{"http 503": 1}}
	got := s.Summary()
	want := []string{"requests: 4 sent, 3 ok, 1 failed", "latency: p50 2ms, p99 9ms, max 9ms", "served by: edge-a 2, edge-b 1", "failed: http 503 1"}
	if len(got) != len(want) {
		t.Fatalf("summary %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestRoute(t *testing.T) {
	r, err := ParseRoute("0,0; 0,0.01 ;0.01,0.01")
	if err != nil {
		t.Fatal(err)
	}
	leg := geo.Distance(r[0], r[1])
	tests := []struct {
		name   string
		metres float64
		want   geo.Point
	}{
		{"before the start", -5, r[0]},
		{"start", 0, r[0]},
		{"half the first leg", leg / 2, geo.Point{Lat: 0, Lon: 0.005}},
		{"corner", leg, r[1]},
		{"into the second leg", leg + geo.Distance(r[1], r[2])/4, geo.Point{Lat: 0.0025, Lon: 0.01}},
		{"beyond the end", 1e9, r[2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.At(tc.metres)
			if geo.Distance(got, tc.want) > 0.01 {
				t.Errorf("At(%v) = %s, want %s", tc.metres, got, tc.want)
			}
		})
	}
	if math.Abs(r.Length()-leg-geo.Distance(r[1], r[2])) > 1e-6 {
		t.Errorf("Length = %v", r.Length())
	}
	for _, bad := range []string{"", ";", "0,0;91,0", "0;0"} {
		if _, err := ParseRoute(bad); err == nil {
			t.Errorf("ParseRoute(%q): want an error", bad)
		}
	}
}

func TestParseCluster(t *testing.T) {
	c, err := ParseCluster("edge-a=http://10.0.0.1:8443/base@35.888, 128.611,1500")
	want := Cluster{ID: "edge-a", Gateway: "http://10.0.0.1:8443/base", Site: geo.Point{Lat: 35.888, Lon: 128.611}, RadiusM: 1500}
	if err != nil || c != want {
		t.Fatalf("ParseCluster = %+v, %v; want %+v", c, err, want)
	}
	for _, bad := range []string{"", "edge-a", "=http://h@1,2,3", "a=http://h", "a=http://h@1,2", "a=http://h@1,2,x", "a=http://h@1,2,-5", "a=http://h@95,2,5"} {
		if _, err := ParseCluster(bad); err == nil {
			t.Errorf("ParseCluster(%q): want an error", bad)
		}
	}
}
func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		ds   []time.Duration
		p    int
		want time.Duration
	}{
		{ds, 50, 50 * time.Millisecond},
		{ds, 99, 99 * time.Millisecond},
		{ds, 100, 100 * time.Millisecond},
		{ds[:1], 99, 100 * time.Millisecond},
		{nil, 50, 0},
	} {
		if got := Percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("Percentile(%d values, %d) = %s, want %s", len(tc.ds), tc.p, got, tc.want)
		}
	}
	if ds[0] != 100*time.Millisecond {
		t.Errorf("Percentile sorted its argument")
	}
}
