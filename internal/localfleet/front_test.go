package localfleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func TestChooseReplica(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current int
		ready   []bool
		want    int
	}{
		{"none ready", -1, []bool{false, false}, -1},
		{"first ready", -1, []bool{false, true}, 1},
		{"current stays while ready", 1, []bool{true, true}, 1},
		{"current lost", 0, []bool{false, true}, 1},
		{"all lost", 1, []bool{false, false}, -1},
		{"current out of range", 5, []bool{true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseReplica(tc.current, tc.ready); got != tc.want {
				t.Errorf("chooseReplica(%d, %v) = %d, want %d", tc.current, tc.ready, got, tc.want)
			}
		})
	}
}

// replicaServer is a TLS server standing for a descheduler replica: /readyz answers 200
// while ready is set, every other path names the replica.
func replicaServer(t *testing.T, name string, ready *atomic.Bool) *httptest.Server {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			if !ready.Load() {
				http.Error(w, "not the leader", http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestFront: connections go to the ready replica, TLS passing through (the client verifies
// the replica's certificate), follow readiness when it moves, and are refused while no
// replica is ready.
func TestFront(t *testing.T) {
	var ready0, ready1 atomic.Bool
	r0, r1 := replicaServer(t, "replica-0", &ready0), replicaServer(t, "replica-1", &ready1)
	pool := x509.NewCertPool()
	pool.AddCert(r0.Certificate()) // httptest's servers share one certificate
	tlsConfig := &tls.Config{RootCAs: pool}
	fr, err := startFront("127.0.0.1:0", []string{strings.TrimPrefix(r0.URL, "https://"), strings.TrimPrefix(r1.URL, "https://")}, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	// A new connection per request, as the front decides per connection.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
	get := func() string {
		resp, err := client.Get("https://" + fr.Addr() + "/who")
		if err != nil {
			return "error"
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitAnswer := func(want string) {
		t.Helper()
		var got string
		err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			got = get()
			return got == want, nil
		})
		if err != nil {
			t.Fatalf("the front answers %q, want %q", got, want)
		}
	}

	waitAnswer("error") // nobody ready: refused
	ready1.Store(true)
	waitAnswer("replica-1")
	ready0.Store(true) // both ready: the current one keeps them
	for range 5 {
		if got := get(); got != "replica-1" {
			t.Fatalf("with both ready the front switched to %q", got)
		}
	}
	ready1.Store(false)
	waitAnswer("replica-0")
	if fr.Current() != 0 {
		t.Errorf("Current() = %d, want 0", fr.Current())
	}
}
