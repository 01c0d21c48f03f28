package descheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// runBehind starts Run on a cluster whose ledger is behind o, and returns Run's result.
func runBehind(t *testing.T, w *world, o *outage, mutate func(*Config)) (*cluster, <-chan error) {
	t.Helper()
	cl := w.newClusterWith(o.behind, "edge-a", mutate)
	ctx, stop := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- cl.c.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		cl.stop() // the informers the harness started end too: Run waits for them
	})
	return cl, done
}

// pollUntil polls cond for at most a minute (a bound on a hang, not a timed assertion).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("never: %s", what)
	}
}

// TestRunDuringOutage: a descheduler started while the ledger is down says so on
// readiness and keeps trying; when the ledger comes back before --register-timeout it
// registers and becomes Ready, and liveness holds throughout.
func TestRunDuringOutage(t *testing.T) {
	w := newWorld(t)
	w.realClock = true
	o := newOutage()
	o.down.Store(true)
	a, done := runBehind(t, w, o, nil)
	pollUntil(t, "readiness says the ledger is unreachable", func() bool {
		err := a.c.Readiness()
		return err != nil && strings.Contains(err.Error(), "ledger unreachable since") && strings.Contains(err.Error(), "connection refused")
	})
	if err := a.c.Liveness(); err != nil {
		t.Errorf("liveness during the outage: %v; want live (registering, within --register-timeout)", err)
	}
	o.down.Store(false)
	pollUntil(t, "Ready once the ledger answers", a.c.Ready)
	if err := a.c.Readiness(); err != nil {
		t.Errorf("readiness after registering: %v", err)
	}
	if err := a.c.Liveness(); err != nil {
		t.Errorf("liveness after registering: %v", err)
	}
	if _, err := w.store.Client(adminMSP).GetCluster(w.ctx, "edge-a"); err != nil {
		t.Errorf("edge-a is not on the ledger: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned: %v", err)
	default:
	}
}

// TestRunGivesUp: with the ledger unreachable for --register-timeout, Run returns the
// error (Serve then gives up the Lease) and liveness and readiness say why.
func TestRunGivesUp(t *testing.T) {
	w := newWorld(t)
	w.realClock = true
	o := newOutage()
	o.down.Store(true)
	a, done := runBehind(t, w, o, func(c *Config) { c.RegisterTimeout = 2 * time.Second })
	// Run returns only once the informers end, and the harness started them: end them
	// once Run is past them, registering.
	pollUntil(t, "Run registers", func() bool {
		err := a.c.Readiness()
		return err != nil && strings.Contains(err.Error(), "registering on the ledger")
	})
	a.stop()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run never gave up")
	}
	if err == nil || !strings.Contains(err.Error(), "unreachable for --register-timeout 2s") {
		t.Fatalf("Run = %v; want the register timeout", err)
	}
	for name, check := range map[string]func() error{"liveness": a.c.Liveness, "readiness": a.c.Readiness} {
		if err := check(); err == nil || !strings.Contains(err.Error(), "the controller stopped: registering cluster edge-a") {
			t.Errorf("%s = %v; want the controller stopped, and why", name, err)
		}
	}
}
