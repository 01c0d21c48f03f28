package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/locator"
)

// upstream is a real HTTP server playing a service's pod: it echoes what reached it, and
// has paths that answer slowly, stream, cut their answer or read a streamed body.
type upstream struct {
	name   string
	srv    *httptest.Server
	served atomic.Int64
	// release lets /slow and /stream finish.
	release chan struct{}
	// firstChunk is signalled when /upload has read its body's first chunk.
	firstChunk chan struct{}
}

type echo struct {
	Pod, Method, Path, Query, Body string
	Header                         http.Header
}

func newUpstream(t testing.TB, name string) *upstream {
	u := &upstream{name: name, release: make(chan struct{}), firstChunk: make(chan struct{}, 1)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.served.Add(1)
		switch {
		case strings.HasPrefix(r.URL.Path, "/status/"):
			code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.Header().Set("X-From-Pod", name)
			w.WriteHeader(code)
			fmt.Fprintf(w, "status %d from %s", code, name)
			return
		case r.URL.Path == "/slow":
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			}
		case r.URL.Path == "/stream":
			fmt.Fprintln(w, "one")
			w.(http.Flusher).Flush()
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			}
			fmt.Fprintln(w, "two")
			return
		case r.URL.Path == "/cut":
			// Chunked: only the missing last chunk tells a cut answer from a whole one.
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, "partial")
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return
		case r.URL.Path == "/upload":
			buf := make([]byte, 5)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			u.firstChunk <- struct{}{}
			rest, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s%s", buf, rest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Pod: name, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(b), Header: r.Header})
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) backend() Backend {
	return Backend{Pod: "apps/" + u.name, Address: u.srv.Listener.Addr().String()}
}

// routes is a Router the test changes; it records the in-flight count each call saw.
type routes struct {
	mu     sync.Mutex
	m      map[string]Route
	g      *Gateway
	seenIn []int
}

func (r *routes) Route(id string) Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.g != nil {
		r.seenIn = append(r.seenIn, r.g.InFlight(id))
	}
	return r.m[id]
}

func (r *routes) set(id string, route Route) { r.mu.Lock(); r.m[id] = route; r.mu.Unlock() }

type fixture struct {
	g      *Gateway
	routes *routes
	reg    *prometheus.Registry
	auth   *locator.Auth
	srv    *httptest.Server
	client *http.Client
}

var tokens = locator.StaticTokens{"car-a": "token-a", "car-b": "token-b", "car-r": "token-r", "car-u": "token-u", "car-n": "token-n"}

func newFixture(t testing.TB, o Options, rs map[string]Route) *fixture {
	t.Helper()
	f := &fixture{routes: &routes{m: rs}, reg: prometheus.NewRegistry()}
	if o.Auth == nil {
		auth, err := locator.NewAuth(locator.AuthOptions{Tokens: tokens, FailedBurst: 1000})
		if err != nil {
			t.Fatal(err)
		}
		o.Auth = auth
	}
	f.auth = o.Auth
	o.Router, o.ClusterID, o.Registerer = f.routes, "edge-a", f.reg
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.g, f.routes.g = g, g
	// As the descheduler mounts it: on serve's engine, behind its recovery.
	engine := serve.NewEngine(serve.NewRegistry(), func() error { return nil })
	g.Register(engine)
	f.srv = httptest.NewServer(engine)
	t.Cleanup(f.srv.Close)
	f.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

func (f *fixture) do(t testing.TB, method, path, token string, body io.Reader, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return string(b)
}

func errorOf(t testing.TB, body string) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("answer %q is not {\"error\": …}", body)
	}
	return e.Error
}

// counted waits until c has grown past before (a proxied request is counted as its handler
// returns, which can be after the client has read the whole answer) and returns by how much.
func counted(t testing.TB, c prometheus.Counter, before float64) float64 {
	t.Helper()
	_ = wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return testutil.ToFloat64(c) > before, nil
	})
	return testutil.ToFloat64(c) - before
}

// idle waits until the gateway counts no request of id in flight, as after the handlers'
// last deferred calls; false if it never does.
func idle(g *Gateway, id string) bool {
	return wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return g.InFlight(id) == 0, nil
	}) == nil
}

func TestGateway(t *testing.T) {
	pod1 := newUpstream(t, "svc-1")
	// An address where nothing listens: a server started and closed.
	gone := httptest.NewServer(http.NotFoundHandler())
	goneAddr := gone.Listener.Addr().String()
	gone.Close()
	f := newFixture(t, Options{MaxBodyBytes: 64, RequestTimeout: 300 * time.Millisecond}, map[string]Route{
		"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod1.backend()}},
		"car-b": {Kind: Local, Cluster: "edge-a", Backends: []Backend{{Pod: "apps/gone", Address: goneAddr}}},
		"car-r": {Kind: Remote, Cluster: "edge-b", Endpoint: "http://edge-b.example:8090/base/"},
		"car-u": {Kind: Unavailable, Cluster: "edge-a", Reason: "pods of two workloads serve car-u: apps/x, apps/y"},
	})
	for _, tc := range []struct {
		name, method, path, token, body string
		header                          http.Header
		wantCode                        int
		wantOutcome                     outcome
		wantCluster                     string
		// check the answer.
		check func(t *testing.T, resp *http.Response, body string)
		// wantServed: requests pod1 answered.
		wantServed int64
	}{{
		name: "proxied with path and query as sent, headers cleaned", method: http.MethodGet,
		path: "/v1/clients/car-a/service/v1/models/a%2Fb:predict?frame=42&x=%20", token: "token-a",
		header:   http.Header{"X-Forwarded-For": {"6.6.6.6"}, "Connection": {"X-Hop"}, "X-Hop": {"secret"}, "X-Kept": {"yes"}},
		wantCode: 200, wantOutcome: outcomeProxied, wantCluster: "edge-a", wantServed: 1,
		check: func(t *testing.T, resp *http.Response, body string) {
			var e echo
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatal(err)
			}
			if e.Path != "/v1/models/a%2Fb:predict" || e.Query != "frame=42&x=%20" || e.Method != "GET" {
				t.Errorf("the pod got %s %s?%s", e.Method, e.Path, e.Query)
			}
			if e.Header.Get("Authorization") != "" || e.Header.Get("X-Hop") != "" || e.Header.Get("X-Kept") != "yes" {
				t.Errorf("the pod got headers %v: want no Authorization, no hop-by-hop X-Hop, X-Kept", e.Header)
			}
			if got := e.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
				t.Errorf("X-Forwarded-For %q, want the connection's 127.0.0.1 only", got)
			}
			if resp.Header.Get(api.HeaderCluster) != "edge-a" || resp.Header.Get(api.HeaderPod) != "apps/svc-1" {
				t.Errorf("answer headers %v", resp.Header)
			}
		},
	}, {
		name: "no rest: the pod's root", method: http.MethodGet, path: "/v1/clients/car-a/service", token: "token-a",
		wantCode: 200, wantOutcome: outcomeProxied, wantCluster: "edge-a", wantServed: 1,
		check: func(t *testing.T, _ *http.Response, body string) {
			if !strings.Contains(body, `"Path":"/"`) {
				t.Errorf("answer %s: want path /", body)
			}
		},
	}, {
		name: "POST body passes", method: http.MethodPost, path: "/v1/clients/car-a/service/infer", token: "token-a", body: `{"pixels":[1,2]}`,
		wantCode: 200, wantOutcome: outcomeProxied, wantCluster: "edge-a", wantServed: 1,
		check: func(t *testing.T, _ *http.Response, body string) {
			if !strings.Contains(body, `"Body":"{\"pixels\":[1,2]}"`) {
				t.Errorf("answer %s", body)
			}
		},
	}, {
		name: "upstream status passes through", method: http.MethodGet, path: "/v1/clients/car-a/service/status/418", token: "token-a",
		wantCode: 418, wantOutcome: outcomeProxied, wantCluster: "edge-a", wantServed: 1,
		check: func(t *testing.T, resp *http.Response, body string) {
			if body != "status 418 from svc-1" || resp.Header.Get("X-From-Pod") != "svc-1" || resp.Header.Get(api.HeaderPod) != "apps/svc-1" {
				t.Errorf("answer %q, headers %v", body, resp.Header)
			}
		},
	}, {
		name: "upstream 500 passes through", method: http.MethodGet, path: "/v1/clients/car-a/service/status/500", token: "token-a",
		wantCode: 500, wantOutcome: outcomeProxied, wantCluster: "edge-a", wantServed: 1,
	}, {
		name: "wrong token", method: http.MethodPost, path: "/v1/clients/car-a/service/infer", token: "token-b", body: "x",
		wantCode: 401, wantOutcome: outcomeUnauthorized,
		check: func(t *testing.T, resp *http.Response, body string) {
			if resp.Header.Get("WWW-Authenticate") != `Bearer realm="edgemigrate-gateway"` {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
			errorOf(t, body)
		},
	}, {
		name: "no token", method: http.MethodGet, path: "/v1/clients/car-a/service/", wantCode: 401, wantOutcome: outcomeUnauthorized,
	}, {
		name: "unknown client", method: http.MethodGet, path: "/v1/clients/car-zzz/service/", token: "token-a", wantCode: 401, wantOutcome: outcomeUnauthorized,
	}, {
		name: "bad id", method: http.MethodGet, path: "/v1/clients/Car_A/service/", token: "token-a", wantCode: 400, wantOutcome: outcomeBadRequest,
	}, {
		name: "not known", method: http.MethodGet, path: "/v1/clients/car-n/service/infer", token: "token-n", wantCode: 404, wantOutcome: outcomeNotFound,
		check: func(t *testing.T, _ *http.Response, body string) { errorOf(t, body) },
	}, {
		name: "unavailable: 503 with the reason", method: http.MethodGet, path: "/v1/clients/car-u/service/infer", token: "token-u",
		wantCode: 503, wantOutcome: outcomeUnavailable, wantCluster: "edge-a",
		check: func(t *testing.T, resp *http.Response, body string) {
			if e := errorOf(t, body); !strings.Contains(e, "apps/x, apps/y") {
				t.Errorf("reason %q", e)
			}
			if resp.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		},
	}, {
		name: "remote: 307 with path as escaped and query", method: http.MethodPost,
		path: "/v1/clients/car-r/service/v1/a%2Fb%20c?q=1&r=%2F", token: "token-r", body: "{}",
		wantCode: 307, wantOutcome: outcomeRedirected, wantCluster: "edge-b",
		check: func(t *testing.T, resp *http.Response, _ string) {
			if got, want := resp.Header.Get("Location"), "http://edge-b.example:8090/base/v1/clients/car-r/service/v1/a%2Fb%20c?q=1&r=%2F"; got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		},
	}, {
		name: "body over the limit, declared", method: http.MethodPost, path: "/v1/clients/car-a/service/infer", token: "token-a",
		body: strings.Repeat("x", 65), wantCode: 413, wantOutcome: outcomeTooLarge, wantCluster: "edge-a",
	}, {
		name: "pod unreachable: 502 with the reason", method: http.MethodGet, path: "/v1/clients/car-b/service/infer", token: "token-b",
		wantCode: 502, wantOutcome: outcomeUpstreamError, wantCluster: "edge-a",
		check: func(t *testing.T, resp *http.Response, body string) {
			if e := errorOf(t, body); !strings.Contains(e, "apps/gone") || !strings.Contains(e, "refused") {
				t.Errorf("reason %q: want the pod and the connection error", e)
			}
			if resp.Header.Get(api.HeaderCluster) != "edge-a" {
				t.Errorf("answer headers %v", resp.Header)
			}
		},
	}, {
		name: "pod too slow: 504", method: http.MethodGet, path: "/v1/clients/car-a/service/slow", token: "token-a",
		wantCode: 504, wantOutcome: outcomeTimeout, wantCluster: "edge-a", wantServed: 1,
		check: func(t *testing.T, _ *http.Response, body string) {
			if e := errorOf(t, body); !strings.Contains(e, "300ms") {
				t.Errorf("reason %q", e)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before := pod1.served.Load()
			counter := f.g.metrics.requests.WithLabelValues(string(tc.wantOutcome), tc.wantCluster)
			count := testutil.ToFloat64(counter)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp := f.do(t, tc.method, tc.path, tc.token, body, tc.header)
			text := readAll(t, resp)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, text, tc.wantCode)
			}
			if got := pod1.served.Load() - before; got != tc.wantServed {
				t.Errorf("the pod served %d requests, want %d", got, tc.wantServed)
			}
			if got := counted(t, counter, count); got != 1 {
				t.Errorf("outcome %s/%s counted %v times, want once", tc.wantOutcome, tc.wantCluster, got)
			}
			if tc.check != nil {
				tc.check(t, resp, text)
			}
		})
	}
	if !idle(f.g, "car-a") {
		t.Errorf("%d requests of car-a still counted in flight", f.g.InFlight("car-a"))
	}
}

// A streamed body over the limit is cut where it crosses it: 413, and the pod gets no
// complete request.
func TestBodyLimitStreamed(t *testing.T) {
	pod := newUpstream(t, "svc-1")
	f := newFixture(t, Options{MaxBodyBytes: 64}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}}})
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(strings.Repeat("x", 200)))
		pw.Close()
	}()
	resp := f.do(t, http.MethodPost, "/v1/clients/car-a/service/echo", "token-a", pr, nil)
	text := readAll(t, resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%s), want 413", resp.StatusCode, text)
	}
	if got := counted(t, f.g.metrics.requests.WithLabelValues(string(outcomeTooLarge), "edge-a"), 0); got != 1 {
		t.Errorf("too_large counted %v times", got)
	}
}

// Requests are spread over the Ready pods.
func TestSpread(t *testing.T) {
	pod1, pod2 := newUpstream(t, "svc-1"), newUpstream(t, "svc-2")
	f := newFixture(t, Options{}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod1.backend(), pod2.backend()}}})
	pods := map[string]int{}
	for range 6 {
		resp := f.do(t, http.MethodGet, "/v1/clients/car-a/service/", "token-a", nil, nil)
		readAll(t, resp)
		pods[resp.Header.Get(api.HeaderPod)]++
	}
	if pods["apps/svc-1"] != 3 || pods["apps/svc-2"] != 3 || pod1.served.Load() != 3 || pod2.served.Load() != 3 {
		t.Errorf("answered by %v (served %d, %d), want 3 each", pods, pod1.served.Load(), pod2.served.Load())
	}
}

// The answer streams: its first part reaches the car while the pod still holds the rest;
// and the request streams: the pod reads its first part while the car still holds the rest.
func TestStreaming(t *testing.T) {
	pod := newUpstream(t, "svc-1")
	f := newFixture(t, Options{}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}}})
	t.Run("answer", func(t *testing.T) {
		resp := f.do(t, http.MethodGet, "/v1/clients/car-a/service/stream", "token-a", nil, nil)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		line, err := r.ReadString('\n')
		if err != nil || line != "one\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		if n := f.g.InFlight("car-a"); n != 1 {
			t.Errorf("in flight while streaming: %d, want 1", n)
		}
		close(pod.release)
		if rest, err := io.ReadAll(r); err != nil || string(rest) != "two\n" {
			t.Errorf("rest %q, %v", rest, err)
		}
	})
	t.Run("request", func(t *testing.T) {
		pr, pw := io.Pipe()
		done := make(chan string, 1)
		go func() {
			resp := f.do(t, http.MethodPost, "/v1/clients/car-a/service/upload", "token-a", pr, nil)
			done <- readAll(t, resp)
		}()
		if _, err := pw.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		<-pod.firstChunk // the pod has the first part: the gateway did not wait for the whole body
		_, _ = pw.Write([]byte(" world"))
		pw.Close()
		if got := <-done; got != "hello world" {
			t.Errorf("answer %q", got)
		}
	})
}

// An answer the pod cuts mid-body reaches the car cut, not as a complete answer.
func TestCutAnswer(t *testing.T) {
	pod := newUpstream(t, "svc-1")
	f := newFixture(t, Options{}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}}})
	resp := f.do(t, http.MethodGet, "/v1/clients/car-a/service/cut", "token-a", nil, nil)
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the cut answer read as complete")
	}
	if got := counted(t, f.g.metrics.requests.WithLabelValues(string(outcomeUpstreamError), "edge-a"), 0); got != 1 {
		t.Errorf("upstream_error counted %v times, want 1", got)
	}
}

// The request is counted in flight before the router is asked, and until it ends.
func TestInFlight(t *testing.T) {
	pod := newUpstream(t, "svc-1")
	f := newFixture(t, Options{}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		readAll(t, f.do(t, http.MethodGet, "/v1/clients/car-a/service/slow", "token-a", nil, nil))
	}()
	for pod.served.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if n := f.g.InFlight("car-a"); n != 1 {
		t.Errorf("in flight during a slow request: %d, want 1", n)
	}
	if got := testutil.ToFloat64(f.g.metrics.inFlight); got != 1 {
		t.Errorf("in-flight gauge %v, want 1", got)
	}
	close(pod.release)
	<-done
	if !idle(f.g, "car-a") {
		t.Errorf("in flight after the answer: %d, want 0", f.g.InFlight("car-a"))
	}
	f.routes.mu.Lock()
	defer f.routes.mu.Unlock()
	if len(f.routes.seenIn) != 1 || f.routes.seenIn[0] != 1 {
		t.Errorf("the router saw in-flight counts %v, want [1]: counted before routing", f.routes.seenIn)
	}
}

// Failed authentications on the locator and on the gateway share one budget per address.
func TestSharedAuthLimiter(t *testing.T) {
	auth, err := locator.NewAuth(locator.AuthOptions{Tokens: tokens, FailedPerSecond: 1e-6, FailedBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	pod := newUpstream(t, "svc-1")
	f := newFixture(t, Options{Auth: auth}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}}})
	loc, err := locator.New(locator.Options{Auth: auth, Resolver: resolver{}})
	if err != nil {
		t.Fatal(err)
	}
	locSrv := httptest.NewServer(loc.Handler())
	defer locSrv.Close()
	for range 2 {
		req, _ := http.NewRequest(http.MethodPut, locSrv.URL+"/v1/clients/car-a/location", strings.NewReader(`{"lat":1,"lon":2}`))
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if readAll(t, resp); resp.StatusCode != 401 {
			t.Fatalf("locator: status %d, want 401", resp.StatusCode)
		}
	}
	resp := f.do(t, http.MethodGet, "/v1/clients/car-a/service/", "wrong", nil, nil)
	if readAll(t, resp); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("gateway after the locator's failures: status %d, Retry-After %q; want 429 with it", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if pod.served.Load() != 0 {
		t.Error("the pod was reached with a wrong token")
	}
	// Only failures are limited: the car's own token still goes through.
	resp = f.do(t, http.MethodGet, "/v1/clients/car-a/service/", "token-a", nil, nil)
	if readAll(t, resp); resp.StatusCode != http.StatusOK || pod.served.Load() != 1 {
		t.Errorf("gateway with a valid token after the failures: status %d, pod served %d; want 200 from the pod", resp.StatusCode, pod.served.Load())
	}
}

type resolver struct{}

func (resolver) Resolve(string) (locator.Route, bool) { return locator.Route{}, false }

func TestNew(t *testing.T) {
	auth, _ := locator.NewAuth(locator.AuthOptions{Tokens: tokens})
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no auth", Options{Router: &routes{}, ClusterID: "a"}, "needs client authentication"},
		{"no router", Options{Auth: auth, ClusterID: "a"}, "needs client authentication"},
		{"no cluster", Options{Auth: auth, Router: &routes{}}, "needs client authentication"},
		{"negative timeout", Options{Auth: auth, Router: &routes{}, ClusterID: "a", RequestTimeout: -1}, "must be positive"},
		{"ok", Options{Auth: auth, Router: &routes{}, ClusterID: "a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.o)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("New = %v, want %q", err, tc.want)
			}
		})
	}
}

// The request timeout covers the answer: a stream that outlives it is cut, and counted as
// a timeout.
func TestTimeoutCutsStream(t *testing.T) {
	pod := newUpstream(t, "svc-1")
	f := newFixture(t, Options{RequestTimeout: 200 * time.Millisecond}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}}})
	resp := f.do(t, http.MethodGet, "/v1/clients/car-a/service/stream", "token-a", nil, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil || string(b) != "one\n" {
		t.Fatalf("read %q, %v; want the first line, then the answer cut", b, err)
	}
	if !idle(f.g, "car-a") {
		t.Errorf("still %d in flight after the cut", f.g.InFlight("car-a"))
	}
	if got := counted(t, f.g.metrics.requests.WithLabelValues(string(outcomeTimeout), "edge-a"), 0); got != 1 {
		t.Errorf("timeout counted %v times, want 1", got)
	}
}
