package car

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/geo"
)

const (
	carID    = "car-1"
	carToken = "token-of-car-1"
	// hangGuard only turns a hang into a failure; no test asserts a speed.
	hangGuard = 30 * time.Second
)

// gateway is a real HTTP server playing a cluster's public endpoint: it records what it
// is sent and answers the service path as its current behaviour says.
type gateway struct {
	id  string
	srv *httptest.Server

	mu        sync.Mutex
	behave    func(g *gateway, w http.ResponseWriter, r *http.Request, body []byte)
	bodies    []string
	auth      []string
	paths     []string
	locations []geo.Point
}

func newGateway(t *testing.T, id string) *gateway {
	g := &gateway{id: id, behave: serve}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.auth = append(g.auth, r.Header.Get("Authorization"))
		if r.Method == http.MethodPut && r.URL.Path == "/v1/clients/"+carID+"/location" {
			var p geo.Point
			if err := json.Unmarshal(body, &p); err != nil {
				g.mu.Unlock()
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			g.locations = append(g.locations, p)
			g.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		g.bodies = append(g.bodies, string(body))
		g.paths = append(g.paths, r.URL.RequestURI())
		behave := g.behave
		g.mu.Unlock()
		behave(g, w, r, body)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) set(b func(*gateway, http.ResponseWriter, *http.Request, []byte)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.behave = b
}

func (g *gateway) served() (bodies, paths []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.bodies), slices.Clone(g.paths)
}

// serve proxies to a pod of the gateway's cluster: it echoes the body.
func serve(g *gateway, w http.ResponseWriter, _ *http.Request, body []byte) {
	w.Header().Set(api.HeaderCluster, g.id)
	w.Header().Set(api.HeaderPod, "demo/detector-"+g.id)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"echo":%q}`, body)
}

// redirectTo answers 307 to the same path and query at to+suffix.
func redirectTo(to *gateway, suffix string) func(*gateway, http.ResponseWriter, *http.Request, []byte) {
	return func(_ *gateway, w http.ResponseWriter, r *http.Request, _ []byte) {
		loc := to.srv.URL + r.URL.Path
		if suffix != "" {
			loc = to.srv.URL + suffix
		}
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

func status(code int, msg string, clusterHeader bool) func(*gateway, http.ResponseWriter, *http.Request, []byte) {
	return func(g *gateway, w http.ResponseWriter, _ *http.Request, _ []byte) {
		if clusterHeader {
			w.Header().Set(api.HeaderCluster, g.id)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":%q}`, msg)
	}
}

// fleet: three gateways 11 km apart on the equator, each covering 2 km.
type fleet struct {
	a, b, c *gateway
	foreign *gateway // a server that is no cluster's gateway
}

func newFleet(t *testing.T) *fleet {
	return &fleet{a: newGateway(t, "edge-a"), b: newGateway(t, "edge-b"), c: newGateway(t, "edge-c"), foreign: newGateway(t, "evil")}
}

func site(i int) geo.Point { return geo.Point{Lat: 0, Lon: 0.1 * float64(i)} }

func (f *fleet) clusters() []Cluster {
	var out []Cluster
	for i, g := range []*gateway{f.a, f.b, f.c} {
		out = append(out, Cluster{ID: g.id, Gateway: g.srv.URL, Site: site(i), RadiusM: 2000})
	}
	return out
}

func newCar(t *testing.T, f *fleet, mod func(*Options)) *Car {
	t.Helper()
	o := Options{ID: carID, Token: carToken, Clusters: f.clusters(), Every: time.Second,
		NewRequest: func(seq int) Request {
			return Request{Path: "/infer", ContentType: "application/json", Body: fmt.Appendf(nil, "%d", seq)}
		}}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func infer(body string) Request {
	return Request{Path: "/infer?v=1", ContentType: "application/json", Body: []byte(body)}
}

func TestDo(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fleet)
		// want
		ok         bool
		reason     string
		status     int
		cluster    string
		via        []string
		errHas     string
		bodiesAt   map[string]int // gateway id → service requests it received
		foreignHit bool
	}{{
		name:     "proxied by the covering cluster",
		setup:    func(f *fleet) {},
		ok:       true,
		status:   200,
		cluster:  "edge-a",
		via:      []string{"edge-a"},
		bodiesAt: map[string]int{"edge-a": 1},
	}, {
		name:     "307 to the serving cluster, body re-sent",
		setup:    func(f *fleet) { f.a.set(redirectTo(f.b, "")) },
		ok:       true,
		status:   200,
		cluster:  "edge-b",
		via:      []string{"edge-a", "edge-b"},
		bodiesAt: map[string]int{"edge-a": 1, "edge-b": 1},
	}, {
		name:       "307 to a foreign host is refused",
		setup:      func(f *fleet) { f.a.set(redirectTo(f.foreign, "")) },
		reason:     ReasonForeignRedirect,
		status:     307,
		via:        []string{"edge-a"},
		errHas:     "refused",
		bodiesAt:   map[string]int{"edge-a": 1},
		foreignHit: false,
	}, {
		name:     "307 to a gateway's other path is refused",
		setup:    func(f *fleet) { f.a.set(redirectTo(f.b, "/v1/clients/car-2/service/infer")) },
		reason:   ReasonForeignRedirect,
		status:   307,
		via:      []string{"edge-a"},
		bodiesAt: map[string]int{"edge-a": 1},
	}, {
		name: "redirect loop ends",
		setup: func(f *fleet) {
			f.a.set(redirectTo(f.b, ""))
			f.b.set(redirectTo(f.a, ""))
		},
		reason:   ReasonTooManyRedirects,
		status:   307,
		via:      []string{"edge-a", "edge-b", "edge-a", "edge-b"},
		bodiesAt: map[string]int{"edge-a": 2, "edge-b": 2},
	}, {
		name:     "503 without a ready pod is a failure with the reason",
		setup:    func(f *fleet) { f.a.set(status(http.StatusServiceUnavailable, "no Ready pod of demo/detector", false)) },
		reason:   "http 503",
		status:   503,
		via:      []string{"edge-a"},
		errHas:   "no Ready pod of demo/detector",
		bodiesAt: map[string]int{"edge-a": 1},
	}, {
		name:     "the service's own 404 passes through",
		setup:    func(f *fleet) { f.a.set(status(http.StatusNotFound, "no such model", true)) },
		reason:   "http 404",
		status:   404,
		cluster:  "edge-a",
		via:      []string{"edge-a"},
		bodiesAt: map[string]int{"edge-a": 1},
	}, {
		name:     "a gateway's 404 without a last server is a failure",
		setup:    func(f *fleet) { f.a.set(status(http.StatusNotFound, "unknown client", false)) },
		reason:   "http 404",
		status:   404,
		via:      []string{"edge-a"},
		bodiesAt: map[string]int{"edge-a": 1},
	}, {
		name:     "401",
		setup:    func(f *fleet) { f.a.set(status(http.StatusUnauthorized, "bad token", false)) },
		reason:   "http 401",
		status:   401,
		via:      []string{"edge-a"},
		bodiesAt: map[string]int{"edge-a": 1},
	}, {
		name:   "no answer",
		setup:  func(f *fleet) { f.a.srv.Close() },
		reason: ReasonTransport,
		via:    []string{"edge-a"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t)
			tc.setup(f)
			c := newCar(t, f, nil)
			ctx := context.Background()
			if err := c.MoveTo(ctx, site(0)); err != nil && tc.reason != ReasonTransport {
				t.Fatal(err)
			}
			res := c.Do(ctx, infer("pixels"))
			if res.OK() != tc.ok || res.Reason != tc.reason || res.Status != tc.status || res.Cluster != tc.cluster || !slices.Equal(res.Via, tc.via) {
				t.Fatalf("result %+v (body %s)\nwant ok %v reason %q status %d cluster %q via %v", res, res.Body, tc.ok, tc.reason, tc.status, tc.cluster, tc.via)
			}
			if tc.errHas != "" && !strings.Contains(res.Err, tc.errHas) {
				t.Errorf("Err = %q, want it to say %q", res.Err, tc.errHas)
			}
			if tc.ok {
				if want := `{"echo":"pixels"}`; string(res.Body) != want || res.Pod != "demo/detector-"+tc.cluster {
					t.Errorf("body %s pod %q, want %s from demo/detector-%s", res.Body, res.Pod, want, tc.cluster)
				}
			}
			for _, g := range []*gateway{f.a, f.b, f.c} {
				bodies, paths := g.served()
				if len(bodies) != tc.bodiesAt[g.id] {
					t.Errorf("%s got %d service requests %v, want %d", g.id, len(bodies), paths, tc.bodiesAt[g.id])
				}
				for i := range bodies {
					if bodies[i] != "pixels" || paths[i] != "/v1/clients/car-1/service/infer?v=1" && tc.reason != ReasonForeignRedirect {
						t.Errorf("%s got body %q at %s, want pixels at the car's service path with its query", g.id, bodies[i], paths[i])
					}
				}
			}
			if bodies, _ := f.foreign.served(); len(bodies) > 0 {
				t.Errorf("the foreign host got %d requests; the car must not follow a redirect there", len(bodies))
			}
			st := c.Stats()
			wantOK, wantFailed := 0, 1
			if tc.ok {
				wantOK, wantFailed = 1, 0
			}
			if st.Sent != 1 || st.OK != wantOK || st.Failed != wantFailed || (!tc.ok && st.FailedBy[tc.reason] != 1) {
				t.Errorf("stats %+v, want 1 sent, %d ok, %d failed (%s)", st, wantOK, wantFailed, tc.reason)
			}
		})
	}
}

// TestDoSendsToken checks the car's bearer token on every request, redirects included.
func TestDoSendsToken(t *testing.T) {
	f := newFleet(t)
	f.a.set(redirectTo(f.b, ""))
	c := newCar(t, f, nil)
	ctx := context.Background()
	if err := c.MoveTo(ctx, site(0)); err != nil {
		t.Fatal(err)
	}
	if res := c.Do(ctx, infer("x")); !res.OK() {
		t.Fatalf("%+v", res)
	}
	for _, g := range []*gateway{f.a, f.b} {
		g.mu.Lock()
		auth := slices.Clone(g.auth)
		g.mu.Unlock()
		if len(auth) == 0 || slices.ContainsFunc(auth, func(a string) bool { return a != "Bearer "+carToken }) {
			t.Errorf("%s saw Authorization %q, want the car's bearer token on each request", g.id, auth)
		}
	}
}

// TestFallbackToLastServer: the car enters edge-b's coverage before edge-b knows it; edge-b's
// gateway answers 404 and the car asks edge-a, which served it last.
func TestFallbackToLastServer(t *testing.T) {
	f := newFleet(t)
	c := newCar(t, f, nil)
	ctx := context.Background()
	if err := c.MoveTo(ctx, site(0)); err != nil {
		t.Fatal(err)
	}
	if res := c.Do(ctx, infer("first")); !res.OK() || c.Serving() != "edge-a" {
		t.Fatalf("first request %+v, serving %q; want served by edge-a", res, c.Serving())
	}
	f.b.set(status(http.StatusNotFound, "client car-1 is not known here", false))
	if err := c.MoveTo(ctx, site(1)); err != nil {
		t.Fatal(err)
	}
	if got := c.Covering().ID; got != "edge-b" {
		t.Fatalf("covering = %s, want edge-b", got)
	}
	res := c.Do(ctx, infer("second"))
	if !res.OK() || res.Cluster != "edge-a" || !slices.Equal(res.Via, []string{"edge-b", "edge-a"}) {
		t.Fatalf("result %+v; want served by edge-a via edge-b, edge-a", res)
	}
	// Once edge-b serves, it is the last server.
	f.b.set(serve)
	if res := c.Do(ctx, infer("third")); !res.OK() || res.Cluster != "edge-b" || c.Serving() != "edge-b" {
		t.Fatalf("third %+v serving %s; want edge-b", res, c.Serving())
	}
}

// TestMoveToReports: a position goes to the covering cluster and to the last serving one.
func TestMoveToReports(t *testing.T) {
	f := newFleet(t)
	c := newCar(t, f, nil)
	ctx := context.Background()
	locations := func(g *gateway) []geo.Point {
		g.mu.Lock()
		defer g.mu.Unlock()
		return slices.Clone(g.locations)
	}
	if err := c.MoveTo(ctx, site(0)); err != nil {
		t.Fatal(err)
	}
	if len(locations(f.a)) != 1 || len(locations(f.b)) != 0 {
		t.Fatalf("before any request: a %v b %v; want the position at the covering edge-a only", locations(f.a), locations(f.b))
	}
	if res := c.Do(ctx, infer("x")); !res.OK() {
		t.Fatal(res)
	}
	between := geo.Point{Lat: 0, Lon: 0.05} // covered by nobody: the last server covers
	if err := c.MoveTo(ctx, between); err != nil {
		t.Fatal(err)
	}
	if err := c.MoveTo(ctx, site(1)); err != nil {
		t.Fatal(err)
	}
	if a, b := locations(f.a), locations(f.b); len(a) != 3 || a[2] != site(1) || len(b) != 1 || b[0] != site(1) {
		t.Errorf("a got %v, b got %v; want a every position (it served last), b the one it covers", a, b)
	}
	if len(locations(f.c)) != 0 {
		t.Errorf("edge-c got %v; it neither covers nor served", locations(f.c))
	}
	if err := c.MoveTo(ctx, geo.Point{Lat: 91}); err == nil {
		t.Error("MoveTo to latitude 91: want an error")
	}
	f.b.srv.Close()
	if err := c.MoveTo(ctx, site(1)); err == nil || !strings.Contains(err.Error(), "edge-b") {
		t.Errorf("MoveTo with edge-b down: %v, want an error naming edge-b", err)
	}
}

// TestRunDoesNotWaitForSlowAnswers: with a fake clock, the first two requests hang at the
// gateway; the second is sent while the first waits, and the third tick, finding
// MaxInFlight (2) waiting, records an overloaded failure. Once released, both succeed.
func TestRunDoesNotWaitForSlowAnswers(t *testing.T) {
	f := newFleet(t)
	arrived := make(chan string, 10)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	f.a.set(func(g *gateway, w http.ResponseWriter, r *http.Request, body []byte) {
		arrived <- string(body)
		<-release
		serve(g, w, r, body)
	})
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newCar(t, f, func(o *Options) { o.Clock = fc; o.MaxInFlight = 2 })
	if err := c.MoveTo(context.Background(), site(0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { // on an early failure: let the handlers and Run end
		unblock()
		cancel()
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got := <-arrived:
			if got != want {
				t.Fatalf("request %q arrived, want %q", got, want)
			}
		case <-time.After(hangGuard):
			t.Fatalf("request %s never arrived while earlier ones hang", want)
		}
	}
	next("0")
	fc.Step(time.Second)
	next("1")
	fc.Step(time.Second)
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, hangGuard, true, func(context.Context) (bool, error) {
		return c.Stats().FailedBy[ReasonOverloaded] == 1, nil
	}); err != nil {
		t.Fatalf("the third tick did not record an overloaded failure: %+v", c.Stats())
	}
	unblock()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Sent != 3 || st.OK != 2 || st.Failed != 1 || st.InFlight != 0 || st.ByCluster["edge-a"] != 2 {
		t.Errorf("stats %+v; want 3 sent, 2 ok by edge-a, 1 overloaded, none waiting", st)
	}
	seqs := []int{}
	for _, r := range c.Results() {
		seqs = append(seqs, r.Seq)
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []int{0, 1, 2}) {
		t.Errorf("result seqs %v, want 0 1 2", seqs)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := Cluster{ID: "edge-a", Gateway: "http://127.0.0.1:1", Site: site(0), RadiusM: 1000}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no id", Options{Token: "t", Clusters: []Cluster{good}}, "id and its token"},
		{"no cluster", Options{ID: "c", Token: "t"}, "at least one cluster"},
		{"repeated cluster", Options{ID: "c", Token: "t", Clusters: []Cluster{good, good}}, "repeated"},
		{"bad gateway", Options{ID: "c", Token: "t", Clusters: []Cluster{{ID: "x", Gateway: "ftp://h", Site: site(0), RadiusM: 1}}}, "not an http(s) URL"},
		{"plain gateway off loopback", Options{ID: "c", Token: "t", Clusters: []Cluster{{ID: "x", Gateway: "http://10.0.0.5:8090", Site: site(0), RadiusM: 1}}}, "plain HTTP is allowed only to a loopback address"},
		{"bad radius", Options{ID: "c", Token: "t", Clusters: []Cluster{{ID: "x", Gateway: "https://h", Site: site(0)}}}, "radius"},
		{"negative interval", Options{ID: "c", Token: "t", Clusters: []Cluster{good}, Every: -1}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	c, err := New(Options{ID: "c", Token: "t", Clusters: []Cluster{good}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err == nil {
		t.Error("Run without NewRequest: want an error")
	}
	if res := c.Do(context.Background(), Request{Path: "infer"}); res.Reason != ReasonBadRequest {
		t.Errorf("Do with a relative path: %+v, want %s", res, ReasonBadRequest)
	}
}

func TestCovering(t *testing.T) {
	clusters := []Cluster{
		{ID: "a", Site: site(0), RadiusM: 2000},
		{ID: "b", Site: site(1), RadiusM: 2000},
		{ID: "big", Site: geo.Point{Lat: 0, Lon: 0.12}, RadiusM: 20000},
	}
	tests := []struct {
		name string
		at   geo.Point
		last string
		want string
	}{
		{"inside one", site(0), "", "a"},
		{"inside two: the nearest", site(1), "a", "b"},
		{"inside the big one only", geo.Point{Lat: 0, Lon: 0.05}, "a", "big"},
		{"nobody covers: the last server", geo.Point{Lat: 1, Lon: 1}, "b", "b"},
		{"nobody covers, no last: the nearest", geo.Point{Lat: 0, Lon: -0.5}, "", "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var last *Cluster
			for i := range clusters {
				if clusters[i].ID == tc.last {
					last = &clusters[i]
				}
			}
			if got := covering(clusters, tc.at, last).ID; got != tc.want {
				t.Errorf("covering(%s, last %q) = %s, want %s", tc.at, tc.last, got, tc.want)
			}
		})
	}
}
