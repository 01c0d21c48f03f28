package descheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// openCounter wraps a cluster's ledger and, after each proposal, counts the migrations of
// that source open on the ledger (read from the store itself), keeping the most seen.
type openCounter struct {
	ledger.Transactor
	w      *world
	source string
	mu     sync.Mutex
	most   int
}

func (o *openCounter) Submit(ctx context.Context, fn string, args ...string) ([]byte, error) {
	out, err := o.Transactor.Submit(ctx, fn, args...)
	if fn == "ProposeMigration" {
		open, lerr := o.w.store.Client(adminMSP).ListOpenMigrations(context.Background())
		n := 0
		for _, m := range open {
			if m.Source == o.source {
				n++
			}
		}
		o.mu.Lock()
		if lerr == nil {
			o.most = max(o.most, n)
		}
		o.mu.Unlock()
	}
	return out, err
}

// TestBurstLimit: 8 Migrations triggered at once, run by the real workers (Run), never
// have more than --max-concurrent-migrations (4) open on the ledger, and all 8 end. The
// other cluster never bids, so each is decided (rejected) at its bid deadline and the
// next one goes: the limit is what paces them.
func TestBurstLimit(t *testing.T) {
	w := newWorld(t)
	w.realClock = true
	const n, limit = 8, 4
	var objs []runtime.Object
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		objs = append(objs, deployment(name, 1, "2Gi"), manual(v1alpha1.KindDeployment, name))
	}
	// edge-b is live on the ledger but never bids: each decision waits for its bid
	// deadline, so the migrations stay open long enough for the limit to bind.
	w.addCluster("edge-b", nil)
	var counter *openCounter
	a := w.newClusterWith(func(cl *cluster) {
		counter = &openCounter{Transactor: w.store.Transactor("MSP-" + cl.id), w: w, source: cl.id}
		cl.ledger = ledger.FromTransactor(counter)
	}, "edge-a", func(c *Config) {
		c.MaxConcurrentMigrations, c.BidTimeout, c.ResyncInterval = limit, time.Second, time.Second
	}, objs...)
	ctx, stop := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- a.c.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		a.stop() // the informers the harness started end too: Run waits for them
		<-done
	})
	err := wait.PollUntilContextTimeout(w.ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		ended := 0
		for _, m := range a.migrations(v1alpha1.RoleSource) {
			if m.Final() {
				ended++
			}
		}
		return ended == n, nil
	})
	if err != nil {
		t.Fatalf("the %d migrations never all ended: %v\n%s", n, err, w.dump())
	}
	counter.mu.Lock()
	most := counter.most
	counter.mu.Unlock()
	t.Logf("at most %d migrations of edge-a open on the ledger at once (limit %d)", most, limit)
	if most > limit || most == 0 {
		t.Errorf("%d migrations of edge-a open at once on the ledger; want 1..%d", most, limit)
	}
	a.c.mu.Lock()
	left := len(a.c.admitted)
	a.c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d places still held after every migration ended", left)
	}
}

// TestAdmissionSeeded: a restarted controller counts the source Migrations already in
// flight (from its synced informer) before it admits any other: with a limit of 1 and one
// in flight, a new Migration waits Queued.
func TestAdmissionSeeded(t *testing.T) {
	w := newWorld(t)
	inFlight := manual(v1alpha1.KindDeployment, "first")
	inFlight.Status = v1alpha1.MigrationStatus{Role: v1alpha1.RoleSource, Phase: v1alpha1.PhaseDecided, LedgerID: "edge-a-000000000001", Source: "edge-a"}
	a := w.addCluster("edge-a", func(c *Config) { c.MaxConcurrentMigrations = 1 },
		deployment("first", 1, "2Gi"), deployment("second", 1, "2Gi"), inFlight, manual(v1alpha1.KindDeployment, "second"))
	a.c.mu.Lock()
	seeded := len(a.c.admitted)
	a.c.mu.Unlock()
	if seeded != 1 {
		t.Fatalf("%d Migrations counted in flight at start, want 1", seeded)
	}
	key := queueKey{Kind: keyMigration, Namespace: testNamespace, Name: "move-second"}
	for range 2 { // Pending, then the admission
		if _, err := a.c.sync(w.ctx, key); err != nil {
			t.Fatal(err)
		}
		a.settle()
	}
	for _, m := range a.migrations(v1alpha1.RoleSource) {
		if m.Name == "move-second" && (m.Status.Phase != v1alpha1.PhasePending || m.Status.Reason != "Queued") {
			t.Errorf("the second Migration is %s/%s, want Pending/Queued behind the one in flight", m.Status.Phase, m.Status.Reason)
		}
	}
}
