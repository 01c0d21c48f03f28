package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)

func TestStateJSON(t *testing.T) {
	data, err := json.Marshal(syntheticState(t0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// The page reads these names; a renamed field would blank part of it.
	for _, want := range []string{
		`"time":"2026-11-27T14:00:00Z"`, `"radiusM":1500`, `"center":{"lat":36.37,"lon":127.34}`,
		`"memoryUsedBytes":33285996544`, `"memoryTotalBytes":34359738368`, `"gpuSlotsUsed":4`, `"gpuSlots":4`,
		`"clientId":"car-1"`, `"migratedFrom":"edge-a"`, `"ready":true`, `"servingCluster":"edge-b"`, `"track":[`,
		`"migrationId":"mig-1"`, `"clusterId":"edge-b"`, `"destination":"edge-b"`,
		`"steps":[{"phase":"Proposed","atMs":12},{"phase":"Decided","atMs":40}`, `"log":["Two edge clusters`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("state JSON lacks %s", want)
		}
	}
}

func TestStepJSON(t *testing.T) {
	tests := []struct {
		step Step
		want string
	}{
		{Step{"Decided", 40 * time.Millisecond}, `{"phase":"Decided","atMs":40}`},
		{Step{"Proposed", 12500 * time.Microsecond}, `{"phase":"Proposed","atMs":12.5}`},
		{Step{"Completed", 71 * time.Second}, `{"phase":"Completed","atMs":71000}`},
	}
	for _, tt := range tests {
		t.Run(tt.step.Phase, func(t *testing.T) {
			data, err := json.Marshal(tt.step)
			if err != nil || string(data) != tt.want {
				t.Fatalf("Marshal(%v) = %s, %v; want %s", tt.step, data, err, tt.want)
			}
			var back Step
			if err := json.Unmarshal(data, &back); err != nil || back != tt.step {
				t.Fatalf("Unmarshal(%s) = %v, %v; want %v", data, back, err, tt.step)
			}
		})
	}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestHandlers(t *testing.T) {
	s := New(Options{})
	h := s.Handler()
	tests := []struct {
		path        string
		wantStatus  int
		wantType    string
		wantContain string
	}{
		{"/", 200, "text/html", `<script src="/static/app.js">`},
		{"/static/app.js", 200, "text/javascript", `new EventSource("/api/events")`},
		{"/static/style.css", 200, "text/css", "#map"},
		{"/static/missing.js", 404, "", ""},
		{"/static/", 404, "", ""},
		{"/static/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"/api/state", 200, "application/json", `"clusters":[],"cars":[],"ledger":[],"migrations":[],"log":[]`},
		{"/healthz", 200, "text/plain", "ok"},
		{"/nothing", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := get(t, h, tt.path)
			if rec.Code != tt.wantStatus {
				t.Fatalf("GET %s = %d, want %d", tt.path, rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("GET %s Content-Type = %q, want %s", tt.path, ct, tt.wantType)
			}
			if !strings.Contains(rec.Body.String(), tt.wantContain) {
				t.Errorf("GET %s body lacks %q", tt.path, tt.wantContain)
			}
		})
	}
}

// The page must work with nothing outside the machine reachable.
func TestPageLoadsNothingExternal(t *testing.T) {
	h := New(Options{}).Handler()
	for _, path := range []string{"/", "/static/app.js", "/static/style.css"} {
		body := get(t, h, path).Body.String()
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "fonts.googleapis"} {
			// The SVG namespace is an identifier, not a download.
			if strings.Contains(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", ""), bad) {
				t.Errorf("%s contains %q: the demo runs offline", path, bad)
			}
		}
	}
}

func TestPublishLatestState(t *testing.T) {
	s := New(Options{HistoryLimit: 3})
	st := syntheticState(t0, 1)
	st.Log = []string{"one", "two", "three", "four", "five"}
	s.Publish(st)
	s.Publish(syntheticState(t0, 0)) // an older state published later still wins: last call is latest
	s.Publish(st)

	var got State
	if err := json.Unmarshal(get(t, s.Handler(), "/api/state").Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(st.Time) {
		t.Errorf("time = %v, want %v", got.Time, st.Time)
	}
	if want := []string{"three", "four", "five"}; fmt.Sprint(got.Log) != fmt.Sprint(want) {
		t.Errorf("log = %q, want the newest 3 %q", got.Log, want)
	}
	if n := len(got.Ledger); n != 3 || got.Ledger[2].Type != "MigrationCompleted" {
		t.Errorf("ledger = %+v, want the newest 3 ending with MigrationCompleted", got.Ledger)
	}
	if len(st.Log) != 5 {
		t.Errorf("Publish changed the caller's state: log has %d lines", len(st.Log))
	}
}

// sseEvent is one Server-Sent Event, or a comment.
type sseEvent struct {
	name, data, comment, retry string
}

func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev, nil
		case strings.HasPrefix(line, ":"):
			ev.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[len("data: "):]
		case strings.HasPrefix(line, "retry: "):
			ev.retry = line[len("retry: "):]
		default:
			return ev, fmt.Errorf("unexpected line %q", line)
		}
	}
}

func openEvents(t *testing.T, url string) *bufio.Reader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /api/events = %d %q, want 200 text/event-stream", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	if ev, err := readEvent(r); err != nil || ev.retry != "2000" {
		t.Fatalf("first event = %+v, %v; want the retry interval", ev, err)
	}
	return r
}

func stateTime(t *testing.T, ev sseEvent) time.Time {
	t.Helper()
	if ev.name != "state" {
		t.Fatalf("event = %+v, want a state event", ev)
	}
	var st State
	if err := json.Unmarshal([]byte(ev.data), &st); err != nil {
		t.Fatalf("state event data: %v", err)
	}
	return st.Time
}

func TestEventsStream(t *testing.T) {
	s := New(Options{})
	s.Publish(syntheticState(t0, 0))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams' cleanups: Close waits for open requests
	r := openEvents(t, srv.URL)

	// The state at connect, then each published one in order.
	for tick := 0; tick < 3; tick++ {
		if tick > 0 {
			s.Publish(syntheticState(t0, tick))
		}
		ev, err := readEvent(r)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stateTime(t, ev), t0.Add(time.Duration(tick)*time.Second); !got.Equal(want) {
			t.Fatalf("event %d has time %v, want %v", tick, got, want)
		}
	}
}

func TestEventsHeartbeat(t *testing.T) {
	s := New(Options{Heartbeat: 10 * time.Millisecond})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams' cleanups: Close waits for open requests
	r := openEvents(t, srv.URL)
	if ev, err := readEvent(r); err != nil || ev.name != "state" {
		t.Fatalf("first event = %+v, %v; want the state", ev, err)
	}
	ev, err := readEvent(r)
	if err != nil || ev != (sseEvent{comment: "heartbeat"}) {
		t.Fatalf("idle stream sent %+v, %v; want a heartbeat comment", ev, err)
	}
}

func (s *Server) subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// deadlockGuard fails the test if f does not return: it detects a hang, it measures no speed.
func deadlockGuard(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return: blocked", what)
	}
}

func TestPublishSkipsStatesForSlowSubscriber(t *testing.T) {
	s := New(Options{})
	stuck := s.subscribe() // never received from while publishing
	deadlockGuard(t, "Publish with a subscriber that never reads", func() {
		for tick := 0; tick < 1000; tick++ {
			s.Publish(syntheticState(t0, tick))
		}
	})
	var st State
	if err := json.Unmarshal(<-stuck, &st); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(999 * time.Second); !st.Time.Equal(want) {
		t.Errorf("slow subscriber got %v, want the latest state %v", st.Time, want)
	}
	select {
	case data := <-stuck:
		t.Errorf("slow subscriber has a second pending state %.60s…; intermediate states should be dropped", data)
	default:
	}
}

func TestPublishNeverBlocksOnStuckBrowser(t *testing.T) {
	s := New(Options{WriteTimeout: 200 * time.Millisecond})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams' cleanups: Close waits for open requests

	// A browser that asks for the stream and never reads it: once the socket buffers fill,
	// the server's writes block.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Listener.Addr()); err != nil {
		t.Fatal(err)
	}

	big := syntheticState(t0, 1)
	big.Log = make([]string, DefaultHistoryLimit)
	for i := range big.Log {
		big.Log[i] = strings.Repeat("x", 500) // ≈100 KB a state
	}
	deadlockGuard(t, "Publish with a browser that never reads", func() {
		for i := 0; i < 300; i++ { // ≈30 MB, far more than the socket buffers hold
			big.Time = t0.Add(time.Duration(i) * time.Second)
			s.Publish(big)
		}
	})

	// A new browser still gets the latest state at once.
	r := openEvents(t, srv.URL)
	ev, err := readEvent(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stateTime(t, ev), t0.Add(299*time.Second); !got.Equal(want) {
		t.Errorf("new browser got %v, want %v", got, want)
	}
	// The write deadline drops the stuck browser, leaving only the new one, which keeps
	// reading. States keep coming, so the stuck one's writes do block (how many it takes
	// depends on the socket buffers, hence a bound rather than a count).
	for i := 300; s.subscribers() != 1; i++ {
		if i == 3000 {
			t.Fatalf("after %d states the stuck browser is still subscribed (%d subscribers)", i, s.subscribers())
		}
		big.Time = t0.Add(time.Duration(i) * time.Second)
		s.Publish(big)
		if _, err := readEvent(r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunShutsDownWithOpenStreams(t *testing.T) {
	s := New(Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()

	r := openEvents(t, "http://"+ln.Addr().String())
	if _, err := readEvent(r); err != nil {
		t.Fatal(err)
	}
	cancel()
	// An event stream left open would hold shutdown until its timeout, and Run would fail.
	if err := <-runErr; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if _, err := readEvent(r); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stream after shutdown: %v, want EOF", err)
	}
}
