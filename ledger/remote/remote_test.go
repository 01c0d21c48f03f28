package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
	"github.com/edgemigrate/edgemigrate/ledger/ledgertest"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// pki is one fleet's CA with the ledger server's identity and clients' identities.
type pki struct {
	ca     *mtls.CA
	server *mtls.Identity
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := mtls.NewCA("fleet-ca")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, server: identity(t, ca, "ledger", "LedgerMSP")}
}

func identity(t *testing.T, ca *mtls.CA, cluster, msp string) *mtls.Identity {
	t.Helper()
	id, err := ca.NewIdentity(t.TempDir(), cluster, msp, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// serveLedger opens the ledger file at path and serves it as Serve does; the server and
// store end with the test or when the returned stop is called.
func (p *pki) serveLedger(t *testing.T, path string, o HandlerOptions) (url string, stop func()) {
	t.Helper()
	return p.serveStore(t, path, o, embedded.Options{NoSync: true, AdminMSP: "Org1MSP"})
}

// serveStore is serveLedger with the store's options.
func (p *pki) serveStore(t *testing.T, path string, o HandlerOptions, so embedded.Options) (url string, stop func()) {
	t.Helper()
	store, err := embedded.Open(path, so)
	if err != nil {
		t.Fatal(err)
	}
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits()
	}
	h, err := NewHandler(store, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = p.server.ServerConfig(tls.VerifyClientCertIfGiven)
	srv.StartTLS()
	stop = func() {
		srv.CloseClientConnections()
		srv.Close()
		store.Close()
	}
	t.Cleanup(stop)
	return srv.URL, stop
}

func (p *pki) dial(t *testing.T, url string, id *mtls.Identity) (*Client, ledger.Ledger) {
	t.Helper()
	c, err := NewClient(url, id.HTTPClient(0))
	if err != nil {
		t.Fatal(err)
	}
	c.RetryInterval = 10 * time.Millisecond
	l := ledger.FromTransactor(c)
	t.Cleanup(func() { l.Close() })
	return c, l
}

func TestBehaviour(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) *ledgertest.Backend {
		p := newPKI(t)
		one, two := identity(t, p.ca, "edge-1", "Org1MSP"), identity(t, p.ca, "edge-2", "Org2MSP")
		path := filepath.Join(t.TempDir(), "ledger.db")
		clock := ledgertest.NewClock()
		so := embedded.Options{NoSync: true, AdminMSP: "Org1MSP", DeadAfter: 5 * time.Second, Now: clock.Now}
		url, stop := p.serveStore(t, path, HandlerOptions{}, so)
		orgs := func() [2]ledger.Ledger {
			_, a := p.dial(t, url, one)
			_, b := p.dial(t, url, two)
			return [2]ledger.Ledger{a, b}
		}
		return &ledgertest.Backend{
			Orgs: orgs(),
			MSPs: [2]string{"Org1MSP", "Org2MSP"},
			Restart: func(t *testing.T) [2]ledger.Ledger {
				stop()
				url, stop = p.serveStore(t, path, HandlerOptions{}, so)
				return orgs()
			},
			Advance: clock.Advance,
		}
	})
}

// TestIdentityFromCertificateOnly: no certificate, or one from another CA, reaches
// nothing; a valid certificate acts only as its own MSP, and the contract refuses its
// attempts on another cluster's behalf.
func TestIdentityFromCertificateOnly(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	url, _ := p.serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"), HandlerOptions{})
	_, edge1 := p.dial(t, url, identity(t, p.ca, "edge-1", "Org1MSP"))
	if _, err := edge1.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: "edge-1", MSPID: "Org1MSP"}); err != nil {
		t.Fatal(err)
	}
	if _, err := edge1.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: "edge-1"}); err != nil {
		t.Fatal(err)
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.ca.PEM())
	anonymous, err := NewClient(url, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := mtls.NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	// The impostor claims Org1MSP and trusts the fleet's CA: only the server can refuse it.
	impostorID := identity(t, other, "edge-1", "Org1MSP")
	impostorHTTP := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, GetClientCertificate: impostorID.ClientConfig().GetClientCertificate}}}
	impostor, err := NewClient(url, impostorHTTP)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		l    ledger.Ledger
		want string
	}{
		{"no certificate", ledger.FromTransactor(anonymous), "401"},
		{"certificate of another CA", ledger.FromTransactor(impostor), "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.l.ReportCapacity(ctx, "edge-1", chaincode.Resources{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("report for edge-1: %v, want %q", err, tc.want)
			}
			if _, err := tc.l.Events(ctx, ledger.Checkpoint{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("event stream: %v, want %q", err, tc.want)
			}
		})
	}

	// A member with a valid certificate for Org2MSP, claiming edge-1 in its calls.
	_, edge2 := p.dial(t, url, identity(t, p.ca, "edge-1", "Org2MSP"))
	for name, call := range map[string]func() error{
		"report edge-1's capacity": func() error {
			_, err := edge2.ReportCapacity(ctx, "edge-1", chaincode.Resources{MemoryBytes: 1 << 30})
			return err
		},
		"propose as edge-1": func() error {
			_, err := edge2.ProposeMigration(ctx, proposal("edge-1-0123456789ab", "edge-1"))
			return err
		},
	} {
		if err := call(); chaincode.CodeOf(err) != chaincode.CodeForbidden {
			t.Errorf("%s: %v, want %s", name, err, chaincode.CodeForbidden)
		}
	}
	if c, err := edge1.GetCluster(ctx, "edge-1"); err != nil || c.MSPID != "Org1MSP" {
		t.Errorf("edge-1 after the attempts: %+v, %v; want still Org1MSP's", c, err)
	}
}

func TestNewClientNeedsHTTPS(t *testing.T) {
	for _, url := range []string{"http://127.0.0.1:7070", "http://10.0.0.9:7070", "ledger:7070", ""} {
		if _, err := NewClient(url, &http.Client{}); err == nil || !strings.Contains(err.Error(), "mutual TLS only") {
			t.Errorf("NewClient(%q) = %v, want a refusal", url, err)
		}
	}
	if _, err := Dial("https://127.0.0.1:7070", nil); err == nil {
		t.Error("Dial without an identity succeeded")
	}
}

func TestAllowedMSPs(t *testing.T) {
	p := newPKI(t)
	url, _ := p.serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"), HandlerOptions{AllowedMSPs: []string{"Org1MSP"}})
	_, allowed := p.dial(t, url, identity(t, p.ca, "edge-1", "Org1MSP"))
	_, other := p.dial(t, url, identity(t, p.ca, "edge-2", "Org2MSP"))
	if _, err := allowed.ListClusters(context.Background()); err != nil {
		t.Errorf("allowed MSP: %v", err)
	}
	if _, err := other.ListClusters(context.Background()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("MSP not in the list: %v, want 403", err)
	}
}

func TestBadRequests(t *testing.T) {
	p := newPKI(t)
	url, _ := p.serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"), HandlerOptions{})
	client := identity(t, p.ca, "edge-1", "Org1MSP").HTTPClient(10 * time.Second)
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"not an array", http.MethodPost, "/v1/submit/Decide", `{"a":1}`, http.StatusBadRequest},
		{"trailing data", http.MethodPost, "/v1/submit/Decide", `["a"] ["b"]`, http.StatusBadRequest},
		{"unknown function", http.MethodPost, "/v1/submit/Steal", `[]`, http.StatusBadRequest},
		{"function name too long", http.MethodPost, "/v1/submit/" + strings.Repeat("F", maxFunctionName+1), `[]`, http.StatusBadRequest},
		{"wrong arity", http.MethodPost, "/v1/submit/Decide", `[]`, http.StatusBadRequest},
		{"too large", http.MethodPost, "/v1/submit/Decide", `["` + strings.Repeat("x", maxRequestBytes) + `"]`, http.StatusRequestEntityTooLarge},
		{"unknown migration", http.MethodPost, "/v1/evaluate/GetMigration", `["m1"]`, http.StatusNotFound},
		{"bad block", http.MethodGet, "/v1/events?block=x", ``, http.StatusBadRequest},
		{"tx id too long", http.MethodGet, "/v1/events?tx=" + strings.Repeat("t", maxTxIDBytes+1), ``, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestRateLimit: each MSP has its own bucket; a refusal says when to retry; the client
// waits out a short limit and gives up on a long one.
func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	url, _ := p.serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"), HandlerOptions{Limits: Limits{PerSecond: 0.5, Burst: 2, MaxStreams: 1}, Now: clock})
	one, l1 := p.dial(t, url, identity(t, p.ca, "edge-1", "Org1MSP"))
	_, l2 := p.dial(t, url, identity(t, p.ca, "edge-2", "Org2MSP"))
	one.MaxRateLimitWait = 0 // the limiter's clock stands still: waiting would not help
	for i := range 2 {
		if _, err := l1.ListClusters(ctx); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	if _, err := l1.ListClusters(ctx); err == nil || !strings.Contains(err.Error(), "429") || !strings.Contains(err.Error(), `MSP "Org1MSP" calls more often than 0.5/s`) {
		t.Fatalf("call beyond the burst: %v, want 429", err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/evaluate/ListClusters", strings.NewReader(`[]`))
	resp, err := one.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("refusal: %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if _, err := l2.ListClusters(ctx); err != nil {
		t.Errorf("another MSP while the first is limited: %v", err)
	}

	// Time passes: the client waits out a short Retry-After by itself.
	one.MaxRateLimitWait = 5 * time.Second
	go func() {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		now = now.Add(2 * time.Second)
		mu.Unlock()
	}()
	if _, err := l1.ListClusters(ctx); err != nil {
		t.Errorf("after waiting out the limit: %v", err)
	}
}

func TestEventStreamsPerIdentity(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	url, _ := p.serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"), HandlerOptions{Limits: Limits{PerSecond: 100, Burst: 100, MaxStreams: 1}})
	_, l1 := p.dial(t, url, identity(t, p.ca, "edge-1", "Org1MSP"))
	_, l2 := p.dial(t, url, identity(t, p.ca, "edge-2", "Org2MSP"))
	streamCtx, cancel := context.WithCancel(ctx)
	if _, err := l1.Events(streamCtx, ledger.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.Events(ctx, ledger.Checkpoint{}); err == nil || !strings.Contains(err.Error(), `MSP \"Org1MSP\" already holds 1 event streams`) {
		t.Errorf("second stream of one MSP: %v, want refused", err)
	}
	otherCtx, cancelOther := context.WithCancel(ctx)
	defer cancelOther()
	if _, err := l2.Events(otherCtx, ledger.Checkpoint{}); err != nil {
		t.Errorf("another MSP's stream: %v", err)
	}
	// The server counts a stream as closed once its handler returns.
	cancel()
	againCtx, cancelAgain := context.WithCancel(ctx)
	defer cancelAgain()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := l1.Events(againCtx, ledger.Checkpoint{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("a stream after the first ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventStreamSurvivesDroppedConnections drops every connection after each event: the
// client reconnects from the last event it delivered, so it sees each event exactly once.
func TestEventStreamSurvivesDroppedConnections(t *testing.T) {
	p := newPKI(t)
	store, err := embedded.Open(filepath.Join(t.TempDir(), "ledger.db"), embedded.Options{AdminMSP: "Org1MSP"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h, err := NewHandler(store, HandlerOptions{Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = p.server.ServerConfig(tls.VerifyClientCertIfGiven)
	srv.StartTLS()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ledgertest.StreamTimeout)
	defer cancel()
	// Transactions go straight to the store: only the stream's connections are dropped.
	l := store.Client("Org1MSP")
	const n = 5
	for i := range n {
		if _, err := l.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: "edge-" + string(rune('a'+i)), MSPID: "Org1MSP"}); err != nil {
			t.Fatal(err)
		}
	}
	// The set-up and the admissions are the first 1+n events.
	const first = 1 + n
	_, remote := p.dial(t, srv.URL, identity(t, p.ca, "edge-1", "Org1MSP"))
	events, err := remote.Events(ctx, ledger.Checkpoint{Block: first})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		reg := chaincode.ClusterRegistration{ID: "edge-" + string(rune('a'+i))}
		if _, err := l.RegisterCluster(ctx, reg); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-events:
			if ev.ClusterID != reg.ID || ev.Checkpoint.Block != uint64(first+i+1) {
				t.Fatalf("event %d: %+v, want %s at block %d", i, ev, reg.ID, first+i+1)
			}
		case <-ctx.Done():
			t.Fatalf("no event %d", i)
		}
		srv.CloseClientConnections()
	}
	select {
	case ev := <-events:
		t.Errorf("unexpected extra event %+v", ev)
	default:
	}
}

func proposal(id, source string) chaincode.Proposal {
	return chaincode.Proposal{ID: id, Source: source, Workload: "Deployment/edge/detector",
		Metadata: chaincode.WorkloadMetadata{SourceIP: "10.1.2.3", ContainerID: "containerd://1234", Image: "nvcr.io/nvidia/detector:1",
			ImageSizeBytes: 3 << 30, CPUMilli: 2000, MemoryBytes: 4 << 30, GPUSlots: 1, GPUMemoryBytes: 2 << 30},
		Reason: chaincode.ReasonInsufficientResources, BidTimeoutMillis: chaincode.MaxBidTimeoutMillis}
}

// TestSpamIsRateLimited sends 10,000 proposals from one identity as fast as it can while
// another identity queries and a new cluster joins and resyncs. The spammer is held to its
// bucket; the others are never refused. Their latency during the spam, against a baseline
// of the same run, is logged (a figure, not an assertion).
func TestSpamIsRateLimited(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: 10,000 requests; not in -short")
	}
	ctx := context.Background()
	p := newPKI(t)
	limits := DefaultLimits()
	url, _ := p.serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"), HandlerOptions{Limits: limits})
	spamClient, spammer := p.dial(t, url, identity(t, p.ca, "spam", "SpamMSP"))
	spamClient.MaxRateLimitWait = 0 // a spammer does not wait
	_, other := p.dial(t, url, identity(t, p.ca, "edge-2", "Org2MSP"))
	_, admin := p.dial(t, url, identity(t, p.ca, "admin", "Org1MSP"))
	for _, a := range []chaincode.AdmissionInput{{ClusterID: "spam", MSPID: "SpamMSP"}, {ClusterID: "edge-2", MSPID: "Org2MSP"}, {ClusterID: "edge-3", MSPID: "Org3MSP"}, {ClusterID: "edge-4", MSPID: "Org4MSP"}} {
		if _, err := admin.AdmitCluster(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, reg := range []struct {
		l  ledger.Ledger
		id string
	}{{spammer, "spam"}, {other, "edge-2"}} {
		if _, err := reg.l.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: reg.id}); err != nil {
			t.Fatal(err)
		}
	}
	queries := func(n int) (time.Duration, error) {
		began := time.Now()
		for range n {
			if _, err := other.ListClusters(ctx); err != nil {
				return 0, err
			}
		}
		return time.Since(began) / time.Duration(n), nil
	}
	const probes = 50
	baseline, err := queries(probes)
	if err != nil {
		t.Fatal(err)
	}

	const spam, workers = 10000, 16
	var accepted, limited, failed atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= spam; i = next.Add(1) {
				_, err := spammer.ProposeMigration(ctx, proposal(fmt.Sprintf("spam-%012x", i), "spam"))
				switch {
				case err == nil:
					accepted.Add(1)
				case strings.Contains(err.Error(), "429"):
					limited.Add(1)
				default:
					failed.Add(1)
				}
			}
		})
	}
	// While the spam runs: the other identity's queries, and a new cluster's join + resync.
	during, err := queries(probes)
	if err != nil {
		t.Errorf("another identity during the spam: %v", err)
	}
	join := func(cluster, msp string) (time.Duration, int) {
		_, newcomer := p.dial(t, url, identity(t, p.ca, cluster, msp))
		began := time.Now()
		if _, err := newcomer.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: cluster}); err != nil {
			t.Errorf("new cluster %s joining: %v", cluster, err)
		}
		open, err := newcomer.ListOpenMigrations(ctx)
		if err != nil {
			t.Errorf("new cluster %s's resync: %v", cluster, err)
		}
		return time.Since(began), len(open)
	}
	resync, open := join("edge-3", "Org3MSP")
	wg.Wait()
	elapsed := time.Since(began)
	// Baselines with the same open migrations, once the spam is over.
	after, err := queries(probes)
	if err != nil {
		t.Error(err)
	}
	resyncAfter, openAfter := join("edge-4", "Org4MSP")

	if failed.Load() != 0 {
		t.Errorf("%d spam calls failed otherwise than 429", failed.Load())
	}
	// The bucket's own bound, from the measured duration (plus one refill of slack).
	if bound := int64(float64(limits.Burst) + limits.PerSecond*elapsed.Seconds() + 1); accepted.Load() > bound {
		t.Errorf("%d spam proposals accepted in %v, beyond the bucket's %d", accepted.Load(), elapsed, bound)
	}
	if accepted.Load()+limited.Load() != spam {
		t.Errorf("%d accepted + %d limited, want %d", accepted.Load(), limited.Load(), spam)
	}
	t.Logf("spam: %d proposals in %v from one identity: %d accepted, %d refused 429 (limit %v/s, burst %d)",
		spam, elapsed.Round(time.Millisecond), accepted.Load(), limited.Load(), limits.PerSecond, limits.Burst)
	t.Logf("another identity's query: %v per call before, %v during, %v after the spam (during/before %.2f)",
		baseline, during, after, float64(during)/float64(baseline))
	t.Logf("a new cluster's join and resync: %v during the spam (%d open migrations), %v after it (%d open; during/after %.2f)",
		resync.Round(time.Microsecond), open, resyncAfter.Round(time.Microsecond), openAfter, float64(resync)/float64(resyncAfter))
}

// TestEventStreamSurvivesServerRestart stops the server, commits events while it is down,
// and starts it again on the same address: the stream resumes from the last event it
// delivered, with nothing lost or repeated; while the server was down the client's waits
// doubled up to MaxRetryInterval, and after a successful reconnection they start again
// from RetryInterval.
func TestEventStreamSurvivesServerRestart(t *testing.T) {
	p := newPKI(t)
	path := filepath.Join(t.TempDir(), "ledger.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var store *embedded.Store
	var srv *http.Server
	open := func() {
		t.Helper()
		if store, err = embedded.Open(path, embedded.Options{NoSync: true, AdminMSP: "Org1MSP"}); err != nil {
			t.Fatal(err)
		}
	}
	serve := func() {
		t.Helper()
		if ln == nil {
			if ln, err = net.Listen("tcp", addr); err != nil {
				t.Fatalf("listening again on %s: %v", addr, err)
			}
		}
		h, err := NewHandler(store, HandlerOptions{Limits: DefaultLimits()})
		if err != nil {
			t.Fatal(err)
		}
		srv = &http.Server{Handler: h, TLSConfig: p.server.ServerConfig(tls.VerifyClientCertIfGiven)}
		go srv.ServeTLS(ln, "", "")
		ln = nil
	}
	stop := func() {
		t.Helper()
		srv.Close() // the listener and every connection
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	}
	open()
	serve()
	t.Cleanup(func() { stop() })

	var mu sync.Mutex
	var waits []time.Duration
	retried := make(chan struct{}, 1000)
	client, err := NewClient("https://"+addr, identity(t, p.ca, "edge-1", "Org1MSP").HTTPClient(0))
	if err != nil {
		t.Fatal(err)
	}
	client.RetryInterval, client.MaxRetryInterval = 10*time.Millisecond, 80*time.Millisecond
	client.OnRetry = func(wait time.Duration, _ error) {
		mu.Lock()
		waits = append(waits, wait)
		mu.Unlock()
		select {
		case retried <- struct{}{}:
		default: // retries reads waits itself
		}
	}
	remote := ledger.FromTransactor(client)
	defer remote.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ledgertest.StreamTimeout)
	defer cancel()
	events, err := remote.Events(ctx, ledger.Checkpoint{})
	if err != nil {
		t.Fatal(err)
	}
	next := 0 // clusters admitted so far: edge-0, edge-1, ...
	admit := func(n int) {
		t.Helper()
		for range n {
			if _, err := store.Client("Org1MSP").AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: fmt.Sprintf("edge-%d", next), MSPID: "Org1MSP"}); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	seen := 0
	receive := func() {
		t.Helper()
		for ; seen < next; seen++ {
			select {
			case ev := <-events:
				if ev.Type == chaincode.EventLedgerInitialised {
					seen--
					continue
				}
				if want := fmt.Sprintf("edge-%d", seen); ev.ClusterID != want {
					t.Fatalf("event %+v, want the admission of %s", ev, want)
				}
			case <-ctx.Done():
				t.Fatalf("no event after %d of %d", seen, next)
			}
		}
	}
	// retries waits until the client has waited n times in all and returns the waits.
	retries := func(n int) []time.Duration {
		t.Helper()
		for {
			mu.Lock()
			got := slices.Clone(waits)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
			select {
			case <-retried:
			case <-ctx.Done():
				t.Fatalf("the client stopped trying to reconnect after %v", got)
			}
		}
	}

	admit(3)
	receive()
	stop()
	got := retries(6)
	if want := []time.Duration{10, 20, 40, 80, 80, 80}; !slices.Equal(got[:6], scale(want, time.Millisecond)) {
		t.Errorf("waits while the server was down %v, want %v", got[:6], scale(want, time.Millisecond))
	}
	// Committed while nobody serves: the client must fetch them once it is back.
	open()
	admit(3)
	serve()
	receive()
	admit(2)
	receive()
	// Down again: the backoff starts over.
	mu.Lock()
	before := len(waits)
	mu.Unlock()
	stop()
	got = retries(before + 2)
	if got[before] != 10*time.Millisecond || got[before+1] != 20*time.Millisecond {
		t.Errorf("waits after a successful reconnection and a new outage %v, want 10ms then 20ms", got[before:])
	}
	open()
	serve()
	admit(1)
	receive()
	select {
	case ev := <-events:
		t.Errorf("unexpected extra event %+v", ev)
	default:
	}
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d * unit
	}
	return out
}
