package localfleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/localcluster"
)

// Supervision, as a kubelet does it for a Deployment's pods (restartPolicy Always and a
// liveness probe), on a test's time scale.
const (
	livenessPeriod   = time.Second
	livenessFailures = 3 // consecutive failed probes before the process is killed
	restartDelay     = time.Second
)

// LedgerTarget is the ledger server's name among Fleet.Targets.
const LedgerTarget = "ledger"

// Target names a process of the fleet that a fault test may kill and start again.
type Target struct {
	// Edge is the cluster id; empty for the ledger server.
	Edge string
	// Name is LedgerTarget or one of the edge's ProcessNames.
	Name string
}

func (t Target) String() string {
	if t.Edge == "" {
		return t.Name
	}
	return t.Edge + "/" + t.Name
}

// Targets lists every process Kill and Start take: the ledger server, then each edge's
// ProcessNames (its kube-apiserver, extender, default scheduler, webhook and descheduler
// replicas), in a stable order.
func (f *Fleet) Targets() []Target {
	ts := []Target{{Name: LedgerTarget}}
	for _, e := range f.Edges {
		for _, name := range e.ProcessNames() {
			ts = append(ts, Target{Edge: e.ID, Name: name})
		}
	}
	return ts
}

// Kill kills the target with SIGKILL, as a crash would, and returns once it is gone;
// nothing happens when it does not run.
func (f *Fleet) Kill(t Target) error {
	if t.Edge == "" && t.Name == LedgerTarget {
		f.KillLedger()
		return nil
	}
	e, err := f.edge(t)
	if err != nil {
		return err
	}
	return e.KillProcess(t.Name)
}

// Start starts the target again, with the same flags, ports and files, and waits until it
// serves; an error wrapping "already running" when it runs.
func (f *Fleet) Start(ctx context.Context, t Target) error {
	if t.Edge == "" && t.Name == LedgerTarget {
		return f.StartLedger(ctx)
	}
	e, err := f.edge(t)
	if err != nil {
		return err
	}
	return e.StartProcess(ctx, t.Name)
}

func (f *Fleet) edge(t Target) (*Edge, error) {
	for _, e := range f.Edges {
		if e.ID == t.Edge {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no target %s in the fleet", t)
}

// KillLedger kills the ledger server with SIGKILL; clients see their calls fail until
// StartLedger. Nothing happens when it does not run.
func (f *Fleet) KillLedger() {
	if p := f.takeLedger(); p != nil {
		p.Kill()
	}
}

// StopLedger stops the ledger server with SIGTERM, then SIGKILL after the grace.
func (f *Fleet) StopLedger() {
	if p := f.takeLedger(); p != nil {
		p.Stop(stopGrace)
	}
}

// StartLedger starts the ledger server again at the same address, on the same database
// file and with the same identity, and waits until it is ready; clients reconnect by
// themselves.
func (f *Fleet) StartLedger(ctx context.Context) error {
	f.mu.Lock()
	if f.ledger != nil {
		pid := f.ledger.PID()
		f.mu.Unlock()
		return fmt.Errorf("the ledger server (pid %d): %w", pid, errRunning)
	}
	p, err := f.startProcess(LedgerTarget, f.opts.Binary, f.ledgerArgs())
	if err != nil {
		f.mu.Unlock()
		return err
	}
	f.ledger = p
	f.mu.Unlock()
	return p.WaitReady(ctx, f.LedgerURL+"/readyz", f.opts.ReadyTimeout)
}

// LedgerPID is the ledger server's process id, 0 when it does not run.
func (f *Fleet) LedgerPID() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ledger == nil {
		return 0
	}
	return f.ledger.PID()
}

func (f *Fleet) takeLedger() *localcluster.Process {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.ledger
	f.ledger = nil
	if p != nil {
		f.endedLedgers = append(f.endedLedgers, p)
	}
	return p
}

// probeTLS trusts the fleet's CA, as a probe of an edgemigrate endpoint needs.
func (f *Fleet) probeTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.CA.PEM())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// probeClient is an HTTP client for probes of edgemigrate endpoints.
func (f *Fleet) probeClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: f.probeTLS()}}
}

// probe GETs url and returns the status and the start of the body, 0 with the error when
// nothing answered.
func probe(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// waitAnswers polls url until the process answers HTTP there at all (any status), the
// process exits or the ready timeout passes.
func (f *Fleet) waitAnswers(ctx context.Context, p *localcluster.Process, url string) error {
	client := f.probeClient()
	defer client.CloseIdleConnections()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, f.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		if done, werr := p.Exited(); done {
			return false, fmt.Errorf("%s exited before serving (%v)", p.Name(), werr)
		}
		_, _, last = probe(ctx, client, url)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s not serving at %s within %s (last: %v): %w; last log lines:\n%s", p.Name(), url, f.opts.ReadyTimeout, last, err, p.Tail(logTailLines))
	}
	return nil
}

// supervise restarts the member's process p when it exits on its own or fails its liveness
// probe livenessFailures times in a row (after having passed it once), as a kubelet would.
// A process taken by a test (KillProcess, StopProcess) or by the fleet's Stop is left alone.
func (e *Edge) supervise(m *member, p *localcluster.Process) {
	client := e.fleet.probeClient()
	defer client.CloseIdleConnections()
	ticker := time.NewTicker(livenessPeriod)
	defer ticker.Stop()
	logger := klog.Background().WithValues("edge", e.ID, "process", m.name, "pid", p.PID())
	failures, live := 0, false
	for {
		select {
		case <-p.Done():
			if !e.release(m, p) {
				return
			}
			_, werr := p.Exited()
			logger.Info("Process exited; restarting it", "err", werr)
		case <-ticker.C:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			status, _, err := probe(ctx, client, m.health)
			cancel()
			if status == http.StatusOK {
				failures, live = 0, true
				continue
			}
			if !live {
				continue // still starting
			}
			if failures++; failures < livenessFailures {
				continue
			}
			if !e.release(m, p) {
				return
			}
			logger.Info("Liveness probe failed; killing and restarting the process", "status", status, "err", err)
			p.Kill()
		}
		time.Sleep(restartDelay)
		ctx, cancel := context.WithTimeout(context.Background(), e.fleet.opts.ReadyTimeout)
		err := e.StartProcess(ctx, m.name) // supervises the new process
		cancel()
		if err != nil && !errors.Is(err, errRunning) {
			logger.Error(err, "Restarting the process")
		}
		return
	}
}

// release takes p from m for a restart: false when p is no longer m's (a test or Stop took
// it) or the edge is stopping.
func (e *Edge) release(m *member, p *localcluster.Process) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping || m.proc != p {
		return false
	}
	m.proc = nil
	m.restarts++
	e.ended = append(e.ended, p)
	return true
}
