package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkProxy measures what the gateway adds to a request: the same small POST to the
// same pod, directly and through the gateway, in the same run, over loopback keep-alive
// connections. It reports both per-request times and their ratio (ns/op is the pair).
// Run with: go test -run '^$' -bench Proxy -benchtime 5000x ./gateway/
func BenchmarkProxy(b *testing.B) {
	pod := newUpstream(b, "svc-1")
	f := newFixture(b, Options{}, map[string]Route{"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}}})
	const body = `{"pixels":[0,0,12,255,255,3]}`
	send := func(b *testing.B, url string, auth bool) {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if auth {
			req.Header.Set("Authorization", "Bearer token-a")
		}
		resp, err := f.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	directURL, gatewayURL := pod.srv.URL+"/infer", f.srv.URL+"/v1/clients/car-a/service/infer"
	for range 100 { // warm the connections
		send(b, directURL, false)
		send(b, gatewayURL, true)
	}
	// Alternate, so both see the same machine load.
	var direct, proxied time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		send(b, directURL, false)
		t1 := time.Now()
		send(b, gatewayURL, true)
		direct, proxied = direct+t1.Sub(t0), proxied+time.Since(t1)
	}
	b.ReportMetric(float64(direct.Nanoseconds())/float64(b.N), "direct-ns/req")
	b.ReportMetric(float64(proxied.Nanoseconds())/float64(b.N), "gateway-ns/req")
	b.ReportMetric(float64(proxied)/float64(direct), "gateway/direct")
}
