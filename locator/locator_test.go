package locator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/serve"
)

var (
	daegu = geo.Point{Lat: 35.8880, Lon: 128.6110}
	busan = geo.Point{Lat: 35.1796, Lon: 129.0756}
	seoul = geo.Point{Lat: 37.5665, Lon: 126.9780}
	start = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
)

type mapResolver map[string]Route

func (m mapResolver) Resolve(id string) (Route, bool) { r, ok := m[id]; return r, ok }

type call struct {
	id string
	p  geo.Point
}

type fixture struct {
	loc     *Locator
	handler http.Handler
	reg     *prometheus.Registry

	mu    sync.Mutex
	now   time.Time
	calls []call
}

func newFixture(t testing.TB, o Options) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), now: start}
	if o.Tokens == nil {
		o.Tokens = StaticTokens{"car-a": "token-a", "car-b": "token-b", "car-empty": ""}
	}
	if o.Resolver == nil {
		o.Resolver = mapResolver{
			"car-a": {Cluster: "edge-b", Endpoint: "http://127.0.0.1:9090"},
			"car-c": {Cluster: "edge-c", Endpoint: "http://10.0.0.7:8000/base/"},
			"car-d": {Cluster: "edge-d"}, // known but without an endpoint yet
		}
	}
	o.Registerer = f.reg
	o.Now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	o.OnLocation = func(_ context.Context, id string, p geo.Point) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, call{id, p})
	}
	loc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.loc, f.handler = loc, loc.Handler()
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func (f *fixture) takeCalls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

type put struct {
	id, auth, body string
	remote         string // remote address; default 192.0.2.1:40000
	header         http.Header
	streamed       bool // no Content-Length: the body limit applies while reading
}

func (f *fixture) put(t testing.TB, p put) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPut, "/v1/clients/"+p.id+"/location", strings.NewReader(p.body))
	if p.streamed {
		req.ContentLength = -1
	}
	req.RemoteAddr = "192.0.2.1:40000"
	if p.remote != "" {
		req.RemoteAddr = p.remote
	}
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

func body(p geo.Point) string {
	data, _ := json.Marshal(p)
	return string(data)
}

func TestNewOptions(t *testing.T) {
	ok := Options{Tokens: StaticTokens{}, Resolver: mapResolver{}}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"no tokens", func(o *Options) { o.Tokens = nil }, "locator needs client tokens"},
		{"no resolver", func(o *Options) { o.Resolver = nil }, "locator needs a resolver"},
		{"negative rate", func(o *Options) { o.RatePerSecond = -1 }, "rate per second must be positive, got -1"},
		{"negative failed-auth rate", func(o *Options) { o.FailedAuthPerSecond = -2 }, "failed authentications per second must be positive"},
		{"negative burst", func(o *Options) { o.Burst = -1 }, "burst -1"},
		{"negative body limit", func(o *Options) { o.MaxBodyBytes = -1 }, "max body -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			l, err := New(o)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "":
				if l.opts.RatePerSecond != DefaultRatePerSecond || l.opts.Burst != DefaultBurst || l.opts.MaxBodyBytes != DefaultMaxBodyBytes {
					t.Errorf("defaults not applied: %+v", l.opts)
				}
			}
		})
	}
	t.Run("metrics registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		o := ok
		o.Registerer = reg
		if _, err := New(o); err != nil {
			t.Fatal(err)
		}
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), "registering locator metrics") {
			t.Fatalf("second New on one registry: %v", err)
		}
	})
}

func TestPutLocation(t *testing.T) {
	const authA = "Bearer token-a"
	tests := []struct {
		name       string
		req        put
		wantCode   int
		wantError  string // in the JSON error
		wantResult string
		wantHeader map[string]string
	}{
		{name: "accepted", req: put{id: "car-a", auth: authA, body: body(busan)}, wantCode: 204, wantResult: resultAccepted},
		{name: "scheme is case-insensitive", req: put{id: "car-a", auth: "bearer token-a", body: body(busan)}, wantCode: 204, wantResult: resultAccepted},
		{name: "spaces and zero are fine", req: put{id: "car-a", auth: authA, body: ` { "lon" : 0, "lat" : 0 } `}, wantCode: 204, wantResult: resultAccepted},

		{name: "no credentials", req: put{id: "car-a", body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="edgemigrate-locator"`}},
		{name: "wrong token", req: put{id: "car-a", auth: "Bearer token-b0", body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized},
		{name: "token prefix", req: put{id: "car-a", auth: "Bearer token-", body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized},
		{name: "empty bearer", req: put{id: "car-a", auth: "Bearer ", body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized},
		{name: "basic auth", req: put{id: "car-a", auth: "Basic Y2FyLWE6dG9rZW4tYQ==", body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized},
		{name: "unknown client, same answer", req: put{id: "car-z", auth: authA, body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized},
		{name: "client with an empty token cannot authenticate", req: put{id: "car-empty", auth: "Bearer ", body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized},
		{name: "spoofing: A's token cannot move B", req: put{id: "car-b", auth: authA, body: body(busan)}, wantCode: 401, wantError: unauthorizedMessage, wantResult: resultUnauthorized},

		{name: "upper-case id", req: put{id: "Car-a", auth: authA, body: body(busan)}, wantCode: 400, wantError: `client id "Car-a" must be lower-case letters`, wantResult: resultInvalid},
		{name: "id ending in dash", req: put{id: "car-", auth: authA, body: body(busan)}, wantCode: 400, wantError: "starting and ending with a letter or digit", wantResult: resultInvalid},
		{name: "id too long", req: put{id: strings.Repeat("a", 64), auth: authA, body: body(busan)}, wantCode: 400, wantError: "client id must be 1 to 63 characters, got 64", wantResult: resultInvalid},
		{name: "malformed JSON", req: put{id: "car-a", auth: authA, body: `{"lat": 35.1,`}, wantCode: 400, wantError: `location must be a JSON object {"lat": <degrees>, "lon": <degrees>}`, wantResult: resultInvalid},
		{name: "empty body", req: put{id: "car-a", auth: authA}, wantCode: 400, wantError: "empty body", wantResult: resultInvalid},
		{name: "unknown field", req: put{id: "car-a", auth: authA, body: `{"lat":1,"lon":2,"alt":3}`}, wantCode: 400, wantError: `unknown field "alt"`, wantResult: resultInvalid},
		{name: "missing lon", req: put{id: "car-a", auth: authA, body: `{"lat":1}`}, wantCode: 400, wantError: "lon is missing", wantResult: resultInvalid},
		{name: "null lat", req: put{id: "car-a", auth: authA, body: `{"lat":null,"lon":2}`}, wantCode: 400, wantError: "lat is missing", wantResult: resultInvalid},
		{name: "null body", req: put{id: "car-a", auth: authA, body: `null`}, wantCode: 400, wantError: "lat and lon are missing", wantResult: resultInvalid},
		{name: "string coordinate", req: put{id: "car-a", auth: authA, body: `{"lat":"35","lon":128}`}, wantCode: 400, wantError: "cannot unmarshal string", wantResult: resultInvalid},
		{name: "array", req: put{id: "car-a", auth: authA, body: `[35, 128]`}, wantCode: 400, wantError: "location must be a JSON object", wantResult: resultInvalid},
		{name: "two objects", req: put{id: "car-a", auth: authA, body: body(busan) + body(seoul)}, wantCode: 400, wantError: "unexpected data after the object", wantResult: resultInvalid},
		{name: "latitude out of range", req: put{id: "car-a", auth: authA, body: `{"lat":91,"lon":0}`}, wantCode: 400, wantError: "invalid location: latitude 91 is out of range [-90, 90]", wantResult: resultInvalid},
		{name: "longitude out of range", req: put{id: "car-a", auth: authA, body: `{"lat":0,"lon":-180.5}`}, wantCode: 400, wantError: "longitude -180.5 is out of range", wantResult: resultInvalid},
		{name: "declared too large", req: put{id: "car-a", auth: authA, body: body(busan) + strings.Repeat(" ", 4096)}, wantCode: 413, wantError: "exceeds the limit of 4096", wantResult: resultInvalid},
		{name: "streamed too large", req: put{id: "car-a", auth: authA, body: body(busan) + strings.Repeat(" ", 4096), streamed: true}, wantCode: 413, wantError: "location body exceeds 4096 bytes", wantResult: resultInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			// Both clients have a known location beforehand: a refusal must leave them as they are.
			for id, p := range map[string]geo.Point{"car-a": daegu, "car-b": seoul} {
				if rec := f.put(t, put{id: id, auth: "Bearer token-" + id[len(id)-1:], body: body(p)}); rec.Code != 204 {
					t.Fatalf("setting up %s: %d %s", id, rec.Code, rec.Body)
				}
			}
			f.takeCalls()
			before := map[string]Location{}
			for _, id := range []string{"car-a", "car-b"} {
				before[id], _ = f.loc.Locations().Get(id)
			}
			results := map[string]float64{}
			for _, r := range []string{resultAccepted, resultUnauthorized, resultInvalid, resultRateLimited} {
				results[r] = testutil.ToFloat64(f.loc.metrics.updates.WithLabelValues(r))
			}
			f.advance(time.Second)

			rec := f.put(t, tt.req)

			if rec.Code != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.wantCode)
			}
			for k, v := range tt.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for r, n := range results {
				want := n
				if r == tt.wantResult {
					want++
				}
				if got := testutil.ToFloat64(f.loc.metrics.updates.WithLabelValues(r)); got != want {
					t.Errorf("location_updates_total{result=%q} = %v, want %v", r, got, want)
				}
			}
			calls := f.takeCalls()
			if tt.wantCode == 204 {
				want := Location{Point: mustParse(t, tt.req.body), Time: start.Add(time.Second)}
				if got, _ := f.loc.Locations().Get(tt.req.id); got != want {
					t.Errorf("stored %+v, want %+v", got, want)
				}
				if len(calls) != 1 || calls[0] != (call{tt.req.id, want.Point}) {
					t.Errorf("OnLocation calls %v, want one for %s at %v", calls, tt.req.id, want.Point)
				}
				if rec.Body.Len() != 0 {
					t.Errorf("204 with a body: %q", rec.Body)
				}
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tt.wantError) {
				t.Errorf("body %s (%v), want a JSON error containing %q", rec.Body, err, tt.wantError)
			}
			if strings.Contains(rec.Body.String(), "token-") {
				t.Errorf("answer reveals a token: %s", rec.Body)
			}
			if len(calls) != 0 {
				t.Errorf("refused update called OnLocation: %v", calls)
			}
			for id, loc := range before {
				if got, _ := f.loc.Locations().Get(id); got != loc {
					t.Errorf("refused update changed %s: %+v, was %+v", id, got, loc)
				}
			}
			if f.loc.Locations().Len() != 2 {
				t.Errorf("refused update added a client: %d known", f.loc.Locations().Len())
			}
		})
	}
}

func mustParse(t *testing.T, s string) geo.Point {
	t.Helper()
	p, err := parseLocation([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientRateLimit(t *testing.T) {
	f := newFixture(t, Options{RatePerSecond: 1, Burst: 2})
	report := func(id string, p geo.Point) *httptest.ResponseRecorder {
		return f.put(t, put{id: id, auth: "Bearer token-" + id[len(id)-1:], body: body(p)})
	}
	for i, p := range []geo.Point{daegu, busan} {
		if rec := report("car-a", p); rec.Code != 204 {
			t.Fatalf("report %d within the burst: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := report("car-a", seoul)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), `client \"car-a\" reports its location more often than 1/s (burst 2)`) {
		t.Fatalf("report over the burst: %d Retry-After=%q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if got, _ := f.loc.Locations().Get("car-a"); got.Point != busan {
		t.Errorf("rate-limited report changed the location to %v", got.Point)
	}
	if calls := f.takeCalls(); len(calls) != 2 {
		t.Errorf("OnLocation called %d times, want 2 (not for the refused report)", len(calls))
	}
	if got := testutil.ToFloat64(f.loc.metrics.updates.WithLabelValues(resultRateLimited)); got != 1 {
		t.Errorf("ratelimited updates = %v, want 1", got)
	}
	// The limit is per client: another car is not affected.
	if rec := report("car-b", seoul); rec.Code != 204 {
		t.Errorf("other client: %d %s", rec.Code, rec.Body)
	}
	// Half a second gives half a token: still refused; a second one more.
	f.advance(500 * time.Millisecond)
	if rec := report("car-a", seoul); rec.Code != 429 {
		t.Errorf("after 0.5 s: %d, want 429", rec.Code)
	}
	f.advance(500 * time.Millisecond)
	if rec := report("car-a", seoul); rec.Code != 204 {
		t.Errorf("after 1 s: %d %s, want 204", rec.Code, rec.Body)
	}
	if got, _ := f.loc.Locations().Get("car-a"); got.Point != seoul || !got.Time.Equal(start.Add(time.Second)) {
		t.Errorf("stored %+v, want Seoul at %v", got, start.Add(time.Second))
	}
}

// TestFailedAuthLimit: failures are limited per address and per claimed client id, and a
// valid token is never refused, so a burst of bad logins behind a roadside NAT address
// locks out no honest car behind it.
func TestFailedAuthLimit(t *testing.T) {
	// Location updates are not what is limited here: a generous per-client rate.
	f := newFixture(t, Options{FailedAuthPerSecond: 0.5, FailedAuthBurst: 3, RatePerSecond: 100, Burst: 100})
	const nat, other = "198.51.100.9:5555", "203.0.113.4:6000"
	// The guesser claims to be elsewhere: only the connection's address counts.
	forwarded := http.Header{"X-Forwarded-For": {"203.0.113.77"}, "X-Real-Ip": {"203.0.113.78"}}
	for i := range 10 {
		want := http.StatusUnauthorized
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		rec := f.put(t, put{id: "car-b", auth: "Bearer guess", body: body(busan), remote: nat, header: forwarded})
		if rec.Code != want {
			t.Fatalf("bad login %d: %d %s, want %d", i, rec.Code, rec.Body, want)
		}
		if want == http.StatusTooManyRequests && (rec.Header().Get("Retry-After") != "2" || !strings.Contains(rec.Body.String(), "too many failed authentication attempts")) {
			t.Fatalf("bad login %d: Retry-After=%q %s", i, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
	if _, ok := f.loc.Locations().Get("car-b"); ok {
		t.Error("a refused report stored a location")
	}
	for _, tc := range []struct {
		name, id, token, remote string
		want                    int
	}{
		{"valid car behind the same address", "car-a", "token-a", nat, http.StatusNoContent},
		{"the guessed client with its own token, same address", "car-b", "token-b", nat, http.StatusNoContent},
		{"another bad login from the address", "car-a", "guess", nat, http.StatusTooManyRequests},
		{"bad login for the guessed client from elsewhere", "car-b", "guess", other, http.StatusTooManyRequests},
		{"bad login for another client from elsewhere", "car-a", "guess", other, http.StatusUnauthorized},
		{"valid car from elsewhere", "car-a", "token-a", other, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.put(t, put{id: tc.id, auth: "Bearer " + tc.token, body: body(daegu), remote: tc.remote})
			if rec.Code != tc.want {
				t.Errorf("%d %s, want %d", rec.Code, rec.Body, tc.want)
			}
		})
	}
	if got := testutil.ToFloat64(f.loc.metrics.updates.WithLabelValues(resultUnauthorized)); got != 4 {
		t.Errorf("unauthorized updates = %v, want 4", got)
	}
}

func TestGetEndpoint(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/v1/clients/car-a/endpoint", 200, `{"client":"car-a","cluster":"edge-b","endpoint":"http://127.0.0.1:9090"}`},
		{"/v1/clients/car-c/endpoint", 200, `{"client":"car-c","cluster":"edge-c","endpoint":"http://10.0.0.7:8000/base/"}`},
		{"/v1/clients/car-x/endpoint", 404, `{"error":"client \"car-x\" is not served here or known"}`},
		{"/v1/clients/car-d/endpoint", 404, `{"error":"client \"car-d\" is not served here or known"}`},
		{"/v1/clients/CAR/endpoint", 400, `{"error":"client id \"CAR\" must be lower-case letters, digits and '-', starting and ending with a letter or digit"}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Errorf("GET %s = %d %s, want %d %s", tt.path, rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if got := testutil.ToFloat64(f.loc.metrics.requests.WithLabelValues(routeEndpoint, "404")); got != 2 {
		t.Errorf("requests_total{route=endpoint,code=404} = %v, want 2", got)
	}
}

func TestRedirect(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		method, target string
		wantCode       int
		wantLocation   string
	}{
		{"GET", "/v1/clients/car-a/redirect", 307, "http://127.0.0.1:9090"},
		{"GET", "/v1/clients/car-a/redirect/", 307, "http://127.0.0.1:9090/"},
		{"GET", "/v1/clients/car-a/redirect?x=1", 307, "http://127.0.0.1:9090?x=1"},
		{"GET", "/v1/clients/car-a/redirect/infer?x=1", 307, "http://127.0.0.1:9090/infer?x=1"},
		{"POST", "/v1/clients/car-a/redirect/v1/models/yolo:predict?a=1&b=%2F&c=%20", 307, "http://127.0.0.1:9090/v1/models/yolo:predict?a=1&b=%2F&c=%20"},
		{"PUT", "/v1/clients/car-a/redirect/a%2Fb/c%20d", 307, "http://127.0.0.1:9090/a%2Fb/c%20d"},
		{"GET", "/v1/clients/car-a/redirect/x/../y", 307, "http://127.0.0.1:9090/x/../y"},
		{"GET", "/v1/clients/car-a/redirect//evil.example/x", 307, "http://127.0.0.1:9090//evil.example/x"},
		{"GET", "/v1/clients/%63ar-a/redirect/infer", 307, "http://127.0.0.1:9090/infer"},
		{"HEAD", "/v1/clients/car-c/redirect/infer", 307, "http://10.0.0.7:8000/base/infer"},
		{"DELETE", "/v1/clients/car-c/redirect", 307, "http://10.0.0.7:8000/base"},
		{"GET", "/v1/clients/car-x/redirect/infer", 404, ""},
		{"GET", "/v1/clients/car-d/redirect/infer", 404, ""},
		{"GET", "/v1/clients/car_a/redirect/infer", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.target, rec.Code, rec.Body, tt.wantCode)
			}
			loc := rec.Header().Get("Location")
			if loc != tt.wantLocation {
				t.Errorf("Location %q, want %q", loc, tt.wantLocation)
			}
			if loc == "" {
				return
			}
			// Whatever the path, the redirect stays on the service's host.
			u, err := url.Parse(loc)
			if err != nil || (u.Host != "127.0.0.1:9090" && u.Host != "10.0.0.7:8000") {
				t.Errorf("Location %q leaves the service host (%v)", loc, err)
			}
		})
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/clients/car-x/redirect", nil))
	if want := `{"error":"client \"car-x\" is not served here or known"}`; rec.Body.String() != want {
		t.Errorf("unknown client: %s, want %s", rec.Body, want)
	}
}

func TestValidateClientID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"a", true}, {"car-a", true}, {"0", true}, {"1-2-3", true}, {strings.Repeat("x", 63), true},
		{"", false}, {strings.Repeat("x", 64), false}, {"-a", false}, {"a-", false}, {"A", false},
		{"a.b", false}, {"a_b", false}, {"a b", false}, {"é", false}, {"a/b", false},
	}
	for _, tt := range tests {
		if err := ValidateClientID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidateClientID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func TestMetricsExposed(t *testing.T) {
	f := newFixture(t, Options{})
	f.put(t, put{id: "car-a", auth: "Bearer token-a", body: body(busan)})
	f.put(t, put{id: "car-a", auth: "Bearer nope", body: body(busan)})
	f.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/clients/car-a/redirect/x", nil))
	want := `
# HELP edgemigrate_locator_location_updates_total ` + help(t, f.reg, "edgemigrate_locator_location_updates_total") + `
# TYPE edgemigrate_locator_location_updates_total counter
edgemigrate_locator_location_updates_total{result="accepted"} 1
edgemigrate_locator_location_updates_total{result="invalid"} 0
edgemigrate_locator_location_updates_total{result="ratelimited"} 0
edgemigrate_locator_location_updates_total{result="unauthorized"} 1
# HELP edgemigrate_locator_requests_total ` + help(t, f.reg, "edgemigrate_locator_requests_total") + `
# TYPE edgemigrate_locator_requests_total counter
edgemigrate_locator_requests_total{code="204",route="location"} 1
edgemigrate_locator_requests_total{code="307",route="redirect"} 1
edgemigrate_locator_requests_total{code="401",route="location"} 1
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want),
		"edgemigrate_locator_requests_total", "edgemigrate_locator_location_updates_total"); err != nil {
		t.Error(err)
	}
	counts := map[string]uint64{}
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() == "edgemigrate_locator_request_duration_seconds" {
			for _, m := range fam.GetMetric() {
				counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if want := map[string]uint64{"endpoint": 0, "location": 2, "redirect": 1}; !maps.Equal(counts, want) {
		t.Errorf("request durations observed %v, want %v", counts, want)
	}
}

// help is a metric family's help text, so the expected exposition does not repeat it.
func help(t *testing.T, reg prometheus.Gatherer, name string) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() == name {
			return fam.GetHelp()
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}

func TestClient(t *testing.T) {
	f := newFixture(t, Options{RatePerSecond: 1, Burst: 1})
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	c := NewClient(srv.URL+"/", srv.Client())
	ctx := context.Background()

	if err := c.ReportLocation(ctx, "car-a", "token-a", busan); err != nil {
		t.Fatalf("ReportLocation: %v", err)
	}
	if got, _ := f.loc.Locations().Get("car-a"); got.Point != busan {
		t.Errorf("stored %v, want %v", got.Point, busan)
	}
	tests := []struct {
		name       string
		call       func() error
		wantStatus int
		wantMsg    string
		wantRetry  time.Duration
	}{
		{"rate limited", func() error { return c.ReportLocation(ctx, "car-a", "token-a", seoul) }, 429, `client "car-a" reports its location more often`, time.Second},
		{"wrong token", func() error { return c.ReportLocation(ctx, "car-b", "token-a", seoul) }, 401, unauthorizedMessage, 0},
		{"bad coordinates", func() error { return c.ReportLocation(ctx, "car-b", "token-b", geo.Point{Lat: 100}) }, 400, "latitude 100 is out of range", 0},
		{"bad id", func() error { return c.ReportLocation(ctx, "Car-B", "token-b", seoul) }, 400, `client id "Car-B"`, 0},
		{"unknown endpoint", func() error { _, err := c.Endpoint(ctx, "car-x"); return err }, 404, `client "car-x" is not served here or known`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.wantStatus || !strings.Contains(se.Message, tt.wantMsg) || se.RetryAfter != tt.wantRetry {
				t.Fatalf("error %v (%+v), want status %d with %q, retry after %v", err, se, tt.wantStatus, tt.wantMsg, tt.wantRetry)
			}
		})
	}
	route, err := c.Endpoint(ctx, "car-a")
	if err != nil || route != (Route{Cluster: "edge-b", Endpoint: "http://127.0.0.1:9090"}) {
		t.Errorf("Endpoint = %+v, %v", route, err)
	}
	if calls := f.takeCalls(); len(calls) != 1 {
		t.Errorf("OnLocation calls %v, want only the first report", calls)
	}
}

func TestOnLocationGetsRequestContext(t *testing.T) {
	type key struct{}
	var got any
	l, err := New(Options{
		Tokens:     StaticTokens{"car-a": "token-a"},
		Resolver:   mapResolver{},
		OnLocation: func(ctx context.Context, _ string, _ geo.Point) { got = ctx.Value(key{}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPut, "/v1/clients/car-a/location", strings.NewReader(body(daegu)))
	req = req.WithContext(context.WithValue(req.Context(), key{}, "mine"))
	req.Header.Set("Authorization", "Bearer token-a")
	rec := httptest.NewRecorder()
	l.Handler().ServeHTTP(rec, req)
	if rec.Code != 204 || got != "mine" {
		t.Errorf("status %d, callback context value %v", rec.Code, got)
	}
	if _, err := io.ReadAll(rec.Body); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterOnServeEngine(t *testing.T) {
	f := newFixture(t, Options{})
	e := serve.NewEngine(serve.NewRegistry(), func() error { return nil })
	f.loc.Register(e)
	for path, want := range map[string]int{
		"/healthz":                        200,
		"/readyz":                         200,
		"/v1/clients/car-a/endpoint":      200,
		"/v1/clients/car-a/redirect/x?y=": 307,
		"/v1/clients/car-a/location":      404, // PUT only
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}
