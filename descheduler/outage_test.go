package descheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// errConnRefused is what a client of a ledger server that is down gets: no contract code.
var errConnRefused = errors.New(`Post "https://ledger.example:7443/v1/submit": dial tcp 127.0.0.1:7443: connect: connection refused`)

// outage switches a world's ledger off and on: every cluster's calls go through a
// faultyTransactor on it.
type outage struct {
	down atomic.Bool
	// loseAnswerOf, when set to a contract function, lets its next call commit, then
	// takes the ledger down before the answer arrives (a reply lost in an outage).
	loseAnswerOf atomic.Pointer[string]
	// submitted counts the calls that reached the ledger, by function.
	mu        sync.Mutex
	submitted map[string]int
}

func newOutage() *outage { return &outage{submitted: map[string]int{}} }

func (o *outage) loseAnswer(fn string) { o.loseAnswerOf.Store(&fn) }

// faultyTransactor is an embedded ledger's transactor behind an outage.
type faultyTransactor struct {
	ledger.Transactor
	o *outage
	// events, when set, replaces Events (the stream tests).
	events func(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error)
}

func (f *faultyTransactor) call(fn string, run func() ([]byte, error)) ([]byte, error) {
	if f.o.down.Load() {
		return nil, errConnRefused
	}
	out, err := run()
	f.o.mu.Lock()
	f.o.submitted[fn]++
	f.o.mu.Unlock()
	if lose := f.o.loseAnswerOf.Load(); lose != nil && *lose == fn && f.o.loseAnswerOf.CompareAndSwap(lose, nil) {
		f.o.down.Store(true)
		return nil, errConnRefused
	}
	return out, err
}

func (f *faultyTransactor) Submit(ctx context.Context, fn string, args ...string) ([]byte, error) {
	return f.call(fn, func() ([]byte, error) { return f.Transactor.Submit(ctx, fn, args...) })
}

func (f *faultyTransactor) Evaluate(ctx context.Context, fn string, args ...string) ([]byte, error) {
	return f.call(fn, func() ([]byte, error) { return f.Transactor.Evaluate(ctx, fn, args...) })
}

func (f *faultyTransactor) Events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	if f.events != nil {
		return f.events(ctx, after)
	}
	if f.o.down.Load() {
		return nil, errConnRefused
	}
	return f.Transactor.Events(ctx, after)
}

// behind puts a cluster's ledger behind the outage, recording its Events.
func (o *outage) behind(cl *cluster) {
	cl.ledger = ledger.FromTransactor(&faultyTransactor{Transactor: cl.w.store.Transactor("MSP-" + cl.id), o: o})
	cl.events = record.NewFakeRecorder(10000)
}

// addClusterBehind is addCluster with the cluster's ledger behind o.
func (w *world) addClusterBehind(o *outage, id string, mutate func(*Config), objs ...runtime.Object) *cluster {
	w.t.Helper()
	cl := w.newClusterWith(o.behind, id, mutate, objs...)
	if err := cl.c.register(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	cl.c.registered.Store(true)
	return cl
}

// TestLedgerOutage: the ledger goes down at each step of a migration and comes back. At
// every step the service runs somewhere (two copies only while the migration is open:
// make before break), and at the end exactly once; each Migration
// says the ledger is unreachable while it is, with one Warning Event, and the gauge
// edgemigrate_ledger_up follows.
func TestLedgerOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		// at is when the ledger goes down: the source's phase (or "" at once), or the
		// function whose answer is lost.
		at       v1alpha1.MigrationPhase
		loseOf   string
		wantEnd  v1alpha1.MigrationPhase
		longDown bool
	}{
		{name: "before propose", at: "", wantEnd: v1alpha1.PhaseCompleted},
		{name: "while Proposed", at: v1alpha1.PhaseProposed, wantEnd: v1alpha1.PhaseCompleted},
		{name: "while Decided", at: v1alpha1.PhaseDecided, wantEnd: v1alpha1.PhaseCompleted},
		{name: "after Ready", at: v1alpha1.PhaseReady, wantEnd: v1alpha1.PhaseCompleted},
		{name: "the answer to ReportReady lost", loseOf: "ReportReady", wantEnd: v1alpha1.PhaseCompleted},
		{name: "the answer to Complete lost", loseOf: "Complete", wantEnd: v1alpha1.PhaseCompleted},
		{name: "past --migration-timeout while Proposed", at: v1alpha1.PhaseProposed, longDown: true, wantEnd: v1alpha1.PhaseAborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			o := newOutage()
			a := w.addClusterBehind(o, "edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
			b := w.addClusterBehind(o, "edge-b", nil)
			copies := func() int { return a.copies(v1alpha1.KindDeployment, "svc") + b.copies(v1alpha1.KindDeployment, "svc") }
			// At every step the service runs (one or two copies) and a second copy exists
			// only while the migration is open on the ledger: make before break, never two
			// for good. (Read from the store itself, past the outage.)
			check := func(step string) {
				t.Helper()
				n := copies()
				open := false
				if src := a.migrations(v1alpha1.RoleSource); len(src) == 1 && src[0].Status.LedgerID != "" {
					lm, err := w.store.Client("MSP-edge-a").GetMigration(w.ctx, src[0].Status.LedgerID)
					open = err == nil && !lm.Final()
				}
				if n == 0 || n > 2 || (n == 2 && !open) {
					t.Fatalf("%s: %d copies (edge-a %d, edge-b %d), migration open on the ledger %v\n%s", step, n, a.copies(v1alpha1.KindDeployment, "svc"),
						b.copies(v1alpha1.KindDeployment, "svc"), open, w.dump())
				}
			}
			switch {
			case tc.loseOf != "":
				o.loseAnswer(tc.loseOf)
				w.until("the ledger goes down on "+tc.loseOf, func() bool { check("before the outage"); return o.down.Load() })
			case tc.at == "":
				o.down.Store(true)
			default:
				w.until("the source reaches "+string(tc.at), func() bool {
					check("before the outage")
					ms := a.migrations(v1alpha1.RoleSource)
					return len(ms) == 1 && ms[0].Status.Phase == tc.at
				})
				o.down.Store(true)
			}
			before := a.migrations(v1alpha1.RoleSource)
			rounds, step := 10, time.Second
			if tc.longDown {
				rounds, step = 4, time.Minute // past --migration-timeout (2 min)
			}
			for range rounds {
				w.reconcile()
				check("during the outage")
				w.clock.Step(step)
			}
			if up := testutil.ToFloat64(a.c.metrics.ledgerUp); up != 0 || a.c.ledgerUp() {
				t.Errorf("during the outage edgemigrate_ledger_up = %v, ledgerUp() = %v; want 0, false", up, a.c.ledgerUp())
			}
			src := a.only(v1alpha1.RoleSource)
			cond := meta.FindStatusCondition(src.Status.Conditions, v1alpha1.ConditionLedgerReachable)
			sourceDone := len(before) == 1 && before[0].Status.Phase == v1alpha1.PhaseCompleted
			if !sourceDone && (cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "connection refused")) {
				t.Errorf("during the outage the source's LedgerReachable is %+v; want False with the error", cond)
			}
			if src.Status.Phase == v1alpha1.PhaseReady || tc.at == v1alpha1.PhaseReady {
				// Ready: only this source moves on, so it removes its copy meanwhile.
				if a.copies(v1alpha1.KindDeployment, "svc") != 0 || !meta.IsStatusConditionTrue(src.Status.Conditions, v1alpha1.ConditionSourceRemoved) {
					t.Errorf("a source Ready before the outage keeps its copy during it: %+v", src.Status.Conditions)
				}
			}
			if tc.loseOf == "ReportReady" {
				// Reported Ready without hearing so: the destination keeps its copy, and says why it waits.
				dst := b.only(v1alpha1.RoleDestination)
				if c := meta.FindStatusCondition(dst.Status.Conditions, v1alpha1.ConditionLedgerReachable); c == nil || c.Status != metav1.ConditionFalse {
					t.Errorf("the destination's LedgerReachable is %+v during the outage", c)
				}
				if b.copies(v1alpha1.KindDeployment, "svc") != 1 {
					t.Error("the destination removed a copy it reported Ready")
				}
			}
			events := eventsOf(a.events)
			if n := count(events, "Warning LedgerUnreachable"); !sourceDone && n != 1 {
				t.Errorf("the source recorded %d LedgerUnreachable Events, want 1: %q", n, events)
			}

			o.down.Store(false)
			w.until("the source ends", func() bool {
				check("after the outage")
				return a.only(v1alpha1.RoleSource).Status.Phase == tc.wantEnd
			})
			// The destination follows: its copy is gone on abort, it completes otherwise.
			w.until("one copy, every Migration final", func() bool {
				for _, cl := range []*cluster{a, b} {
					for _, m := range cl.migrations("") {
						if !m.Final() {
							return false
						}
					}
				}
				return copies() == 1
			})
			src = a.only(v1alpha1.RoleSource)
			wantHere := 0
			if tc.wantEnd == v1alpha1.PhaseAborted {
				wantHere = 1
			}
			if a.copies(v1alpha1.KindDeployment, "svc") != wantHere {
				t.Errorf("edge-a runs %d copies at the end, want %d", a.copies(v1alpha1.KindDeployment, "svc"), wantHere)
			}
			if lm := w.ledgerMigration(src.Status.LedgerID); lm.State != string(tc.wantEnd) {
				t.Errorf("ledger state %s, want %s", lm.State, tc.wantEnd)
			}
			if up := testutil.ToFloat64(a.c.metrics.ledgerUp); up != 1 || !a.c.ledgerUp() {
				t.Errorf("after the outage edgemigrate_ledger_up = %v; want 1", up)
			}
			if c := meta.FindStatusCondition(src.Status.Conditions, v1alpha1.ConditionLedgerReachable); c != nil && c.Status != metav1.ConditionTrue {
				t.Errorf("after the outage the source's LedgerReachable is %+v", c)
			}
			if tc.wantEnd == v1alpha1.PhaseAborted && !strings.Contains(src.Status.Message, "--migration-timeout") {
				t.Errorf("aborted with %q, want the timeout", src.Status.Message)
			}
		})
	}
}

// TestLedgerOutageQuiet: during an outage a Migration's key is retried with the queue's
// backoff, not on every resync at full rate, and the errors are not reported as failures
// of the reconcile (no error per retry).
func TestLedgerOutageQuiet(t *testing.T) {
	w := newWorld(t)
	o := newOutage()
	a := w.addClusterBehind(o, "edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	w.addClusterBehind(o, "edge-b", nil)
	w.until("the source is proposed", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseProposed })
	o.down.Store(true)
	key := migrationKey(ptrTo(a.only(v1alpha1.RoleSource)))
	for i := range 5 {
		_, err := a.c.sync(w.ctx, key)
		if !unreachable(err) {
			t.Fatalf("sync %d during the outage: %v; want a failure to reach the ledger", i, err)
		}
		a.c.queue.AddRateLimited(key)
	}
	if n := a.c.queue.NumRequeues(key); n != 5 {
		t.Errorf("%d requeues counted, want 5: the key backs off", n)
	}
	if err := a.c.Readiness(); err != nil {
		t.Errorf("a registered controller is not ready during an outage: %v (the gateway serves on)", err)
	}
	if err := a.c.ledgerDown(); err == nil || !strings.Contains(err.Error(), "ledger unreachable since") {
		t.Errorf("ledgerDown = %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }
