package descheduler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/chaincode"
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

// TestRunWaitsForAdmission: a cluster id nobody admitted yet waits, without bound, and
// readiness says what for; liveness holds (the ledger answered).
func TestRunWaitsForAdmission(t *testing.T) {
	w := newWorld(t)
	w.realClock = true
	o := newOutage()
	// The harness admits edge-a; the controller registers as edge-z, admitted to nobody.
	a, done := runBehind(t, w, o, func(c *Config) { c.ClusterID = "edge-z" })
	pollUntil(t, "readiness says it waits for admission", func() bool {
		err := a.c.Readiness()
		return err != nil && strings.Contains(err.Error(), "waiting for admission") && strings.Contains(err.Error(), "edge-z")
	})
	if err := a.c.Liveness(); err != nil {
		t.Errorf("liveness while waiting for admission: %v", err)
	}
	if !a.c.ledgerUp() {
		t.Error("a refusal counts as the ledger down")
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned while waiting for admission: %v", err)
	default:
	}
}

// TestLiveness: the leader's liveness fails when a loop has not run for its interval and
// stuckAfter, or a worker has reconciled one key for stuckAfter, and says which.
func TestLiveness(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", nil)
	c := a.c
	for _, name := range []string{"resync", "capacity", "clients"} {
		c.beat(name)
	}
	if err := c.Liveness(); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	w.clock.Step(c.cfg.ResyncInterval + stuckAfter + time.Second)
	c.beat("capacity")
	c.beat("clients")
	if err := c.Liveness(); err == nil || !strings.Contains(err.Error(), "the resync loop last ran") {
		t.Errorf("resync stale: liveness %v", err)
	}
	c.beat("resync")
	if err := c.Liveness(); err != nil {
		t.Errorf("resync ran again: %v", err)
	}
	// A worker's key: shown while it is reconciled, cleared after.
	key := queueKey{Kind: keyLedger, Name: "edge-b-000000000001"}
	c.queue.Add(key)
	if !c.processNext(w.ctx, &c.busy[1]) || c.busy[1].since.Load() != 0 {
		t.Fatal("processNext left its worker busy")
	}
	c.busy[2].key.Store(&key)
	c.busy[2].since.Store(w.clock.Now().UnixNano())
	w.clock.Step(stuckAfter + time.Second)
	for _, name := range []string{"resync", "capacity", "clients"} {
		c.beat(name)
	}
	if err := c.Liveness(); err == nil || !strings.Contains(err.Error(), "worker 2 has reconciled ledger:edge-b-000000000001") {
		t.Errorf("stuck worker: liveness %v", err)
	}
}

// TestUntilReachable: what runs after registering is retried while the ledger is not
// reached, within --register-timeout; a refusal or a longer outage is returned.
func TestUntilReachable(t *testing.T) {
	unreach := errLedgerUnreachable{errConnRefused}
	refused := &chaincode.Error{Code: chaincode.CodeForbidden, Msg: "no"}
	for _, tc := range []struct {
		name  string
		errs  []error // f's results in turn; nil after
		calls int
		want  error
	}{
		{name: "a blip", errs: []error{unreach, unreach}, calls: 3},
		{name: "a refusal", errs: []error{refused}, calls: 1, want: refused},
		{name: "past the timeout", errs: slices.Repeat([]error{unreach}, 1000), want: unreach},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			a := w.addCluster("edge-a", func(c *Config) { c.RegisterTimeout = 2 * time.Minute })
			ctx, stop := context.WithCancel(w.ctx)
			defer stop()
			go func() { // the backoff waits on the fake clock
				for ctx.Err() == nil {
					if w.clock.HasWaiters() {
						w.clock.Step(time.Second)
					}
					time.Sleep(time.Millisecond)
				}
			}()
			calls := 0
			err := a.c.untilReachable(ctx, func(context.Context) error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if !errors.Is(err, tc.want) {
				t.Errorf("untilReachable = %v, want %v", err, tc.want)
			}
			if tc.want != unreach && calls != tc.calls {
				t.Errorf("%d calls, want %d", calls, tc.calls)
			}
			if tc.want == unreach && calls < 3 {
				t.Errorf("gave up after %d calls, before --register-timeout", calls)
			}
		})
	}
}
