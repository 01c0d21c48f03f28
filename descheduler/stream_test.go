package descheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// breakingStream is an event stream that fails its first two subscriptions, closes the
// third after two events, and works from the fourth on, as a backend that does not
// reconnect by itself would.
type breakingStream struct {
	inner ledger.Transactor
	mu    sync.Mutex
	// afters are the positions each subscription asked for; closedAt is the checkpoint
	// of the last event the third delivered.
	afters   []ledger.Checkpoint
	closedAt ledger.Checkpoint
	open     chan struct{} // closed once the third subscription is open
}

func (s *breakingStream) events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	s.mu.Lock()
	s.afters = append(s.afters, after)
	n := len(s.afters)
	s.mu.Unlock()
	switch {
	case n <= 2:
		return nil, errConnRefused
	case n > 3:
		return s.inner.Events(ctx, after)
	}
	ctx, cancel := context.WithCancel(ctx)
	in, err := s.inner.Events(ctx, after)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan ledger.Event)
	go func() {
		defer cancel()
		defer close(out)
		close(s.open)
		for i := 0; i < 2; i++ {
			ev, ok := <-in
			if !ok {
				return
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
			s.mu.Lock()
			s.closedAt = ev.Checkpoint
			s.mu.Unlock()
		}
	}()
	return out, nil
}

// TestStreamResubscribes: watchLedger subscribes again, with backoff, when subscribing
// fails and when the stream closes while it runs, from the last event it handled: every
// proposal made around the break reaches the queue, and the open migrations are listed
// only once (for the first subscription, from the head).
func TestStreamResubscribes(t *testing.T) {
	w := newWorld(t)
	o := newOutage()
	stream := &breakingStream{inner: w.store.Transactor("MSP-edge-a"), open: make(chan struct{})}
	a := w.newClusterWith(func(cl *cluster) {
		cl.ledger = ledger.FromTransactor(&faultyTransactor{Transactor: stream.inner, o: o, events: stream.events})
	}, "edge-a", nil)
	if err := a.c.register(w.ctx); err != nil {
		t.Fatal(err)
	}
	b := w.addCluster("edge-b", nil)

	ctx, stop := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.c.watchLedger(ctx) }()
	defer func() { stop(); <-done }()
	// The backoff waits on the controller's fake clock: let them pass.
	go func() {
		for ctx.Err() == nil {
			if w.clock.HasWaiters() {
				w.clock.Step(time.Minute)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-stream.open:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream was never subscribed again after two failures")
	}
	const n = 5
	var ids []string
	for i := range n {
		id := fmt.Sprintf("edge-b-%012d", i+1)
		ids = append(ids, id)
		if _, err := b.ledger.ProposeMigration(w.ctx, chaincode.Proposal{ID: id, Source: "edge-b", Workload: "Deployment/apps/svc",
			Metadata: chaincode.WorkloadMetadata{Image: "x", CPUMilli: 1}, Reason: chaincode.ReasonManual, BidTimeoutMillis: 60_000}); err != nil {
			t.Fatal(err)
		}
	}
	// Every proposal is queued, whether it came before the break or after it.
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		got := make(chan queueKey, 1)
		go func() {
			k, _ := a.c.queue.Get()
			got <- k
		}()
		select {
		case k := <-got:
			a.c.queue.Done(k)
			if k.Kind == keyLedger {
				seen[k.Name] = true
			}
		case <-deadline:
			t.Fatalf("queued %v of %v", seen, ids)
		}
	}
	// The listing after the first subscription may have queued them all before the break:
	// wait for the resubscription itself.
	var afters []ledger.Checkpoint
	var closedAt ledger.Checkpoint
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		stream.mu.Lock()
		afters, closedAt = append([]ledger.Checkpoint(nil), stream.afters...), stream.closedAt
		stream.mu.Unlock()
		if len(afters) >= 4 {
			break
		}
	}
	if len(afters) < 4 {
		t.Fatalf("subscribed %d times, want at least 4 (two failures, a break, a resubscription)", len(afters))
	}
	if afters[0] != ledger.Head || afters[3] != closedAt || closedAt == (ledger.Checkpoint{}) {
		t.Errorf("subscriptions from %v; want the head, then after the last event delivered (%v)", afters, closedAt)
	}
	o.mu.Lock()
	lists := o.submitted["ListOpenMigrations"]
	o.mu.Unlock()
	if lists != 1 {
		t.Errorf("open migrations listed %d times, want once: a resubscription from a checkpoint replays, it does not list", lists)
	}
}
