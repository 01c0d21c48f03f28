package localfleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

const (
	// frontProbeInterval is how often the front asks each replica whether it is ready, as a
	// kubelet's readiness probe feeds a Service's endpoints (faster, for tests).
	frontProbeInterval = 200 * time.Millisecond
	frontProbeTimeout  = time.Second
	frontDialTimeout   = 2 * time.Second
)

// front is an edge's public endpoint when several descheduler replicas run: a TCP proxy
// that sends each new connection to the replica whose /readyz answers 200, as a Kubernetes
// Service with a readiness probe does. TLS passes through: the replicas terminate it with
// the edge's identity. With no replica ready, connections are closed at once, as kube-proxy
// rejects them for a Service without ready endpoints.
type front struct {
	ln      net.Listener
	targets []string // host:port of each replica
	probe   *http.Client
	cancel  context.CancelFunc

	mu      sync.Mutex
	current int // index into targets, -1 when none is ready
	closed  bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// startFront listens on addr and forwards to targets, probing their /readyz over HTTPS
// with tlsConfig (which must trust the replicas' certificates).
func startFront(addr string, targets []string, tlsConfig *tls.Config) (*front, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on the public endpoint %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fr := &front{
		ln: ln, targets: targets, cancel: cancel, current: -1, conns: map[net.Conn]struct{}{},
		probe: &http.Client{Timeout: frontProbeTimeout, Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}},
	}
	fr.wg.Go(func() { fr.probeLoop(ctx) })
	fr.wg.Go(fr.acceptLoop)
	return fr, nil
}

// Addr is the address the front listens on.
func (fr *front) Addr() string { return fr.ln.Addr().String() }

// Current is the replica new connections go to, -1 when none is ready.
func (fr *front) Current() int {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.current
}

// Close stops listening, closes every forwarded connection and waits for its goroutines.
func (fr *front) Close() {
	fr.cancel()
	fr.ln.Close()
	fr.mu.Lock()
	fr.closed = true
	for c := range fr.conns {
		c.Close()
	}
	fr.mu.Unlock()
	fr.wg.Wait()
}

func (fr *front) probeLoop(ctx context.Context) {
	ticker := time.NewTicker(frontProbeInterval)
	defer ticker.Stop()
	for {
		ready := make([]bool, len(fr.targets))
		var wg sync.WaitGroup
		for i, t := range fr.targets {
			wg.Go(func() { ready[i] = fr.ready(ctx, t) })
		}
		wg.Wait()
		fr.mu.Lock()
		if next := chooseReplica(fr.current, ready); next != fr.current {
			klog.V(2).InfoS("Public endpoint now forwards to another replica", "address", fr.Addr(), "from", fr.current, "to", next)
			fr.current = next
		}
		fr.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (fr *front) ready(ctx context.Context, target string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+target+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := fr.probe.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// chooseReplica keeps the current replica while it is ready (a Service spreads
// connections, but only one replica is ever ready here: the leader), else takes the first
// ready one; -1 when none is.
func chooseReplica(current int, ready []bool) int {
	if current >= 0 && current < len(ready) && ready[current] {
		return current
	}
	for i, ok := range ready {
		if ok {
			return i
		}
	}
	return -1
}

func (fr *front) acceptLoop() {
	for {
		c, err := fr.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				klog.ErrorS(err, "Public endpoint stopped accepting", "address", fr.Addr())
			}
			return
		}
		i := fr.Current()
		if i < 0 {
			c.Close() // no ready endpoint
			continue
		}
		fr.wg.Go(func() { fr.forward(c, fr.targets[i]) })
	}
}

// forward copies bytes both ways between the client and the replica until either side
// closes, then closes both.
func (fr *front) forward(client net.Conn, target string) {
	defer client.Close()
	upstream, err := net.DialTimeout("tcp", target, frontDialTimeout)
	if err != nil {
		return // the client sees its connection closed, as with a vanished endpoint
	}
	defer upstream.Close()
	if !fr.track(client, upstream) {
		return
	}
	defer fr.untrack(client, upstream)
	var once sync.Once
	closeBoth := func() { once.Do(func() { client.Close(); upstream.Close() }) }
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(upstream, client); closeBoth() })
	wg.Go(func() { _, _ = io.Copy(client, upstream); closeBoth() })
	wg.Wait()
}

// track records a forwarded connection pair for Close; false once the front is closing.
func (fr *front) track(conns ...net.Conn) bool {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.closed {
		return false
	}
	for _, c := range conns {
		fr.conns[c] = struct{}{}
	}
	return true
}

func (fr *front) untrack(conns ...net.Conn) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, c := range conns {
		delete(fr.conns, c)
	}
}
