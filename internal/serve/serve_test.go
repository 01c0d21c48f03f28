package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

func TestEngineEndpoints(t *testing.T) {
	reg := NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "edgemigrate_test_requests_total", Help: "test"})
	reg.MustRegister(requests)
	requests.Add(3)
	var notReady error = errors.New("caches not synced")
	e := NewEngine(reg, func() error { return notReady })
	e.GET("/panic", func(*gin.Context) { panic("boom") })

	tests := []struct {
		name       string
		path       string
		before     func()
		wantStatus int
		wantBody   string
	}{
		{"healthz", "/healthz", nil, 200, "ok"},
		{"readyz before ready", "/readyz", nil, 503, "caches not synced"},
		{"readyz after ready", "/readyz", func() { notReady = nil }, 200, "ok"},
		{"metrics", "/metrics", nil, 200, "edgemigrate_test_requests_total 3"},
		{"go collector", "/metrics", nil, 200, "go_goroutines"},
		{"panic", "/panic", nil, 500, "internal error"},
		{"unknown", "/nothing", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestEngineLiveness(t *testing.T) {
	var stuck error = errors.New("the resync loop last ran 6m0s ago")
	e := NewEngine(NewRegistry(), func() error { return nil }, WithLiveness(func() error { return stuck }))
	for _, tt := range []struct {
		name       string
		before     func()
		wantStatus int
		wantBody   string
	}{
		{"stuck", nil, 503, "not live: the resync loop last ran 6m0s ago"},
		{"working", func() { stuck = nil }, 200, "ok"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("GET /healthz = %d %q, want %d containing %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestLimitBody(t *testing.T) {
	e := gin.New()
	e.POST("/echo", LimitBody(10), func(c *gin.Context) {
		data, err := io.ReadAll(c.Request.Body)
		if IsTooLarge(err) {
			c.String(http.StatusRequestEntityTooLarge, "too large")
			return
		}
		c.String(http.StatusOK, string(data))
	})
	tests := []struct {
		name       string
		body       io.Reader
		wantStatus int
	}{
		{"within", strings.NewReader("0123456789"), 200},
		{"declared too large", strings.NewReader("0123456789a"), 413},
		// A chunked body has no declared length: the limit applies while reading.
		{"streamed too large", io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("abc")), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/echo", tt.body)
			if _, streamed := tt.body.(*strings.Reader); !streamed {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d (%q), want %d", rec.Code, rec.Body.String(), tt.wantStatus)
			}
		})
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewEngine(NewRegistry(), func() error { return nil }), nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestListenAndServeBadAddress(t *testing.T) {
	err := ListenAndServe(context.Background(), "127.0.0.1:notaport", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "listening on 127.0.0.1:notaport") {
		t.Fatalf("got %v", err)
	}
}
