package locator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/serve"
)

// The target: a redirect p99 under 5 ms (BloSM redirected in 361 ms on average).
// Run with: go test -run '^$' -bench . -benchtime 10000x ./locator/

func BenchmarkRedirect(b *testing.B) {
	benchmarkRoute(b, http.StatusTemporaryRedirect, "/v1/clients/car-a/redirect/v1/models/yolo:predict?frame=42")
}

func BenchmarkEndpoint(b *testing.B) {
	benchmarkRoute(b, http.StatusOK, "/v1/clients/car-a/endpoint")
}

func benchmarkRoute(b *testing.B, wantCode int, path string) {
	f := newFixture(b, Options{})
	// As the descheduler mounts it: next to /healthz, /readyz and /metrics.
	engine := serve.NewEngine(serve.NewRegistry(), func() error { return nil })
	f.loc.Register(engine)

	b.Run("recorder", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			engine.ServeHTTP(rec, req)
			if rec.Code != wantCode {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})

	b.Run("loopback", func(b *testing.B) {
		srv := httptest.NewServer(engine) // 127.0.0.1, HTTP/1.1 keep-alive
		defer srv.Close()
		client := srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		ctx := context.Background()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		latencies := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			latencies = append(latencies, time.Since(t0))
			if resp.StatusCode != wantCode {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		b.StopTimer()
		slices.Sort(latencies)
		b.ReportMetric(float64(percentile(latencies, 0.50).Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(percentile(latencies, 0.99).Nanoseconds()), "p99-ns")
	})
}

// percentile of sorted latencies, nearest-rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
