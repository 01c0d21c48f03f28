package descheduler

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/client-go/testing"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/gateway"
)

// silenceStep is how far the fake clock (the ledger's too) moves per round while a cluster
// is silent: the live clusters report capacity each round, as their loop would.
const silenceStep = 15 * time.Second

// kubelet makes every pod of the cluster Running and Ready, as a kubelet would (the
// harness's playControllers only starts migrated copies).
func (cl *cluster) kubelet() {
	cl.w.t.Helper()
	pods, _ := cl.kube.CoreV1().Pods("").List(cl.w.ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		if podReady(&p) {
			continue
		}
		p.Spec.NodeName = cl.id + "-xavier-0"
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if _, err := cl.kube.CoreV1().Pods(p.Namespace).Update(cl.w.ctx, &p, metav1.UpdateOptions{}); err != nil {
			cl.w.t.Fatal(err)
		}
	}
}

// home reads the ledger's home of origin.
func (w *world) home(origin string) *chaincode.Home {
	w.t.Helper()
	h, err := w.store.Client("MSP-edge-a").GetHome(w.ctx, origin)
	if err != nil {
		w.t.Fatalf("reading the home of %s: %v", origin, err)
	}
	return h
}

// moveToB runs a Manual migration of svc from edge-a to edge-b to completion on a ledger
// that runs on the world's fake clock, and returns the service's origin.
func moveToB(t *testing.T, kind string, objs []runtime.Object) (w *world, a, b *cluster, origin string) {
	w = newWorldWith(t, true)
	a = w.addClusterWithEvents("edge-a", nil, append(objs, manual(kind, "svc"))...)
	b = w.addClusterWithEvents("edge-b", nil)
	w.until("moved to edge-b", func() bool {
		ms := b.migrations(v1alpha1.RoleDestination)
		return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted && len(ms) == 1 && final(ms[0])
	})
	origin = w.ledgerMigration(a.only(v1alpha1.RoleSource).Status.LedgerID).Metadata.Origin
	if h := w.home(origin); h.Cluster != "edge-b" || h.Source != "edge-a" {
		t.Fatalf("home after the migration %+v, want edge-b from edge-a", h)
	}
	return w, a, b, origin
}

// silence takes cl out of the world, as a cluster that dies or is cut off: its controller
// stops and nothing of it runs.
func (w *world) silence(cl *cluster) {
	cl.stop()
	for i, c := range w.clusters {
		if c == cl {
			w.clusters = append(w.clusters[:i:i], w.clusters[i+1:]...)
		}
	}
}

// silentUntil steps the clocks while the live clusters report capacity and reconcile,
// until done; check runs after every round.
func (w *world) silentUntil(what string, check func(), done func() bool) {
	w.t.Helper()
	for range 40 {
		w.clock.Step(silenceStep)
		for _, cl := range w.clusters {
			cl.c.reportCapacity(w.ctx)
		}
		w.reconcile()
		check()
		if done() {
			return
		}
	}
	w.t.Fatalf("never reached: %s\n%s", what, w.dump())
}

// revive brings a silenced cluster back as a fresh controller (a restart after the outage):
// it registers (which revives it on the ledger) and runs afterRegister, as Run does before
// the cluster takes clients.
func (w *world) revive(cl *cluster) {
	w.t.Helper()
	cl.restarts++
	cl.start()
	if err := cl.c.register(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	if err := cl.c.afterRegister(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	cl.c.registered.Store(true)
	w.clusters = append(w.clusters, cl)
}

// TestDeadDestination: the destination of a completed migration dies. Once it is silent
// for the ledger's dead-after window the source marks it dead, takes the service back and
// runs its copy again (a Deployment's parked copy scaled up, a bare Pod recreated from the
// bundle it kept); the car's route goes to that copy once it is Ready, and is never sent to
// the dead cluster. When the dead cluster comes back it stands its copy down before it
// takes clients. At most one copy serves among the running clusters at every step, and
// exactly one once the service is re-homed.
func TestDeadDestination(t *testing.T) {
	for _, wl := range workloads {
		t.Run(wl.kind, func(t *testing.T) {
			w, a, b, origin := moveToB(t, wl.kind, wl.objs())
			atMostOne := func() {
				if n := servingCopies(wl.kind, w.clusters...); n > 1 {
					t.Fatalf("%d copies serve\n%s", n, w.dump())
				}
			}
			w.silence(b)
			w.silentUntil("edge-a re-homes the service", atMostOne, func() bool { return w.home(origin).Cluster == "edge-a" })
			if h := w.home(origin); h.RehomedFrom != "edge-b" {
				t.Errorf("home %+v, want re-homed from edge-b", h)
			}
			if cl, err := a.ledger.GetCluster(w.ctx, "edge-b"); err != nil || !cl.Dead {
				t.Errorf("edge-b on the ledger: %+v, %v; want dead", cl, err)
			}
			// The copy is starting: the route never points at the dead cluster.
			if r := a.c.Route("car-1"); r.Kind == gateway.Remote {
				t.Errorf("edge-a's gateway sends car-1 to %s, which is dead", r.Cluster)
			}
			a.playControllers()
			a.kubelet()
			w.reconcile()
			if n := a.copies(wl.kind, "svc"); n != 1 {
				t.Fatalf("edge-a runs %d copies after the re-home, want 1\n%s", n, w.dump())
			}
			if r := a.c.Route("car-1"); r.Kind != gateway.Local {
				t.Errorf("edge-a's route for car-1 %+v, want its own copy", r)
			}
			if got := testutil.ToFloat64(a.c.metrics.rehomed); got != 1 {
				t.Errorf("edgemigrate_rehomed_total %v, want 1", got)
			}
			events := strings.Join(eventsOf(a.events), "\n")
			for _, want := range []string{"Warning " + api.EventDestinationDead + " edge-b, where migration", "Normal " + api.EventRehomed + " "} {
				if !strings.Contains(events, want) {
					t.Errorf("edge-a's events %q: want %q", events, want)
				}
			}
			if wl.kind == v1alpha1.KindPod {
				if _, err := a.kube.CoreV1().ConfigMaps(api.SystemNamespace).Get(w.ctx, bundleConfigMapName(a.only(v1alpha1.RoleSource).Status.LedgerID), metav1.GetOptions{}); err == nil {
					t.Error("the kept bundle outlives the recreated Pod")
				}
			}

			// edge-b comes back with its copy: it stands it down before taking clients.
			w.revive(b)
			if n := b.copies(wl.kind, "svc"); n != 0 {
				t.Fatalf("edge-b came back serving %d copies, want its copy stood down\n%s", n, w.dump())
			}
			if cl, err := a.ledger.GetCluster(w.ctx, "edge-b"); err != nil || cl.Dead {
				t.Errorf("edge-b on the ledger after it registered: %+v, %v; want live", cl, err)
			}
			if got := testutil.ToFloat64(b.c.metrics.superseded); got != 1 {
				t.Errorf("edge-b's edgemigrate_superseded_total %v, want 1", got)
			}
			events = strings.Join(eventsOf(b.events), "\n")
			if n := strings.Count(events, "Warning "+api.EventSuperseded+" The ledger homes this service in edge-a (since "); n != 1 {
				t.Errorf("edge-b's events %q: want one Superseded on its Migration", events)
			}
			for range 5 {
				w.clock.Step(time.Second)
				w.reconcile()
				a.kubelet()
				if n := servingCopies(wl.kind, a, b); n != 1 || a.copies(wl.kind, "svc") != 1 {
					t.Fatalf("copies: edge-a %d, edge-b %d; want 1 and 0\n%s", a.copies(wl.kind, "svc"), b.copies(wl.kind, "svc"), w.dump())
				}
			}
			if wl.kind == v1alpha1.KindDeployment {
				if r := b.c.Route("car-1"); r.Kind != gateway.Remote || r.Cluster != "edge-a" {
					t.Errorf("edge-b's route for car-1 %+v, want edge-a, where the service is homed", r)
				}
			}
			if h := w.home(origin); h.Cluster != "edge-a" {
				t.Errorf("home %+v after edge-b came back, want edge-a", h)
			}
		})
	}
}

// TestDeadDestinationPartition: a destination cut off (its controller runs on, unseen) is
// marked dead and its service re-homed; when it reaches the ledger again it learns it was
// superseded (its capacity report revives it, the event or the next resync stands its
// copy down).
func TestDeadDestinationPartition(t *testing.T) {
	w, a, b, origin := moveToB(t, v1alpha1.KindDeployment, []runtime.Object{deployment("svc", 2, "2Gi")})
	w.clusters = []*cluster{a} // cut off: nothing of edge-b reaches the ledger
	w.silentUntil("edge-a re-homes the service", func() {}, func() bool { return w.home(origin).Cluster == "edge-a" })
	a.playControllers()
	w.reconcile()
	// What a partition can cause: both copies run until edge-b hears from the ledger.
	if a.copies(v1alpha1.KindDeployment, "svc") != 1 || b.copies(v1alpha1.KindDeployment, "svc") != 1 {
		t.Fatalf("copies: edge-a %d, edge-b %d; want 1 and 1 while partitioned", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
	}
	w.clusters = append(w.clusters, b)
	b.c.reportCapacity(w.ctx)
	w.reconcile()
	if a.copies(v1alpha1.KindDeployment, "svc") != 1 || b.copies(v1alpha1.KindDeployment, "svc") != 0 {
		t.Errorf("copies: edge-a %d, edge-b %d; want 1 and 0 once edge-b reached the ledger", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
	}
	if d, _ := b.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{}); d.Annotations[api.AnnotationMigratedTo] != "edge-a" {
		t.Errorf("edge-b's stood-down copy points at %q, want edge-a", d.Annotations[api.AnnotationMigratedTo])
	}
}

// TestRehomeCrash: the source crashes between RehomeService and the scale-up of its parked
// copy; a fresh controller sees the service homed here with a parked copy and scales it up:
// one copy in the end.
func TestRehomeCrash(t *testing.T) {
	w, a, b, origin := moveToB(t, v1alpha1.KindDeployment, []runtime.Object{deployment("svc", 2, "2Gi")})
	var crash atomic.Bool
	crash.Store(true)
	a.kube.PrependReactor("patch", "deployments", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if strings.Contains(string(action.(clienttesting.PatchAction).GetPatch()), api.AnnotationMigratedTo+`":null`) && crash.CompareAndSwap(true, false) {
			return true, nil, errors.New("the process died here")
		}
		return false, nil, nil
	})
	w.silence(b)
	w.silentUntil("edge-a re-homes the service", func() {}, func() bool { return w.home(origin).Cluster == "edge-a" })
	if crash.Load() {
		t.Fatal("the scale-up never ran")
	}
	if n := a.copies(v1alpha1.KindDeployment, "svc"); n != 0 {
		t.Fatalf("edge-a runs %d copies before the crash's restart, want the scale-up to have failed", n)
	}
	a.restart()
	w.reconcile()
	a.playControllers()
	if n := a.copies(v1alpha1.KindDeployment, "svc"); n != 1 {
		t.Fatalf("edge-a runs %d copies after the restart, want 1\n%s", n, w.dump())
	}
	d, _ := a.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{})
	if *d.Spec.Replicas != 2 || d.Annotations[api.AnnotationMigratedTo] != "" {
		t.Errorf("edge-a's copy: %d replicas, migrated-to %q; want 2 and none", *d.Spec.Replicas, d.Annotations[api.AnnotationMigratedTo])
	}
	if got := testutil.ToFloat64(a.c.metrics.parkedScaleUps); got != 0 {
		t.Errorf("the re-home's scale-up was counted as a stray one (%v)", got)
	}
}

// TestCannotRehome: a bare Pod whose kept bundle is gone cannot be recreated at its
// source: the service is homed back there and a Warning Event on its Migration says, once,
// that it cannot run and what to do.
func TestCannotRehome(t *testing.T) {
	w, a, b, origin := moveToB(t, v1alpha1.KindPod, []runtime.Object{barePod("svc")})
	id := a.only(v1alpha1.RoleSource).Status.LedgerID
	if err := a.kube.CoreV1().ConfigMaps(api.SystemNamespace).Delete(w.ctx, bundleConfigMapName(id), metav1.DeleteOptions{}); err != nil {
		t.Fatalf("the completed Pod's bundle was not kept: %v", err)
	}
	w.silence(b)
	w.silentUntil("edge-a re-homes the service", func() {}, func() bool { return w.home(origin).Cluster == "edge-a" })
	w.reconcile()
	if n := a.copies(v1alpha1.KindPod, "svc"); n != 0 {
		t.Errorf("edge-a runs %d copies without a bundle", n)
	}
	events := eventsOf(a.events)
	if n := count(events, "Warning "+api.EventCannotRehome+" the ledger homes service "+origin+" here again (it left edge-b), but nothing here can run it"); n != 1 {
		t.Errorf("edge-a's events %q: want one CannotRehome", events)
	}
}

// TestDeadBeforeVerified: a destination that reported Ready dies before the source could
// verify it; the source aborts at once (not after --verify-timeout) and keeps its copy.
func TestDeadBeforeVerified(t *testing.T) {
	w := newWorldWith(t, true)
	a := w.addClusterWithEvents("edge-a", func(c *Config) { c.VerifyTimeout, c.MigrationTimeout = time.Hour, time.Hour },
		deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	b := w.addCluster("edge-b", nil)
	b.gateway.ctrl.Store(nil) // its gateway answers 503: the request that verifies it fails
	w.until("edge-b Ready, edge-a verifying", func() bool {
		return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseReady
	})
	w.silence(b)
	w.silentUntil("edge-a aborts", func() {}, func() bool { return final(a.only(v1alpha1.RoleSource)) })
	src := a.only(v1alpha1.RoleSource)
	if src.Status.Phase != v1alpha1.PhaseAborted || src.Status.Reason != api.EventDestinationDead {
		t.Errorf("the source is %s/%s: %q; want Aborted, DestinationDead", src.Status.Phase, src.Status.Reason, src.Status.Message)
	}
	if lm := w.ledgerMigration(src.Status.LedgerID); lm.State != chaincode.StateAborted {
		t.Errorf("ledger state %s, want Aborted", lm.State)
	}
	if n := a.copies(v1alpha1.KindDeployment, "svc"); n != 1 {
		t.Errorf("edge-a runs %d copies, want its own", n)
	}
	if since := w.clock.Since(src.Status.ReadyTime.Time); since >= time.Hour {
		t.Errorf("aborted %s after Ready: the timeout, not the death", since)
	}
}

// TestSupersededCannotMove: a cluster cut off while its service was re-homed proposes the
// copy it still runs before it hears of the home (a Manual Migration, as a car leaving it
// would): the ledger refuses ("homed at edge-a") and the Migration fails MigratedAway at
// once, instead of retrying a proposal that can never pass.
func TestSupersededCannotMove(t *testing.T) {
	w, a, b, origin := moveToB(t, v1alpha1.KindDeployment, []runtime.Object{deployment("svc", 2, "2Gi")})
	w.clusters = []*cluster{a} // cut off
	w.silentUntil("edge-a re-homes the service", func() {}, func() bool { return w.home(origin).Cluster == "edge-a" })
	m := manual(v1alpha1.KindDeployment, "svc")
	m.Name, m.UID = "move-svc-again", "7d9c7d2e-0000-4000-8000-000000000001"
	if _, err := b.migs.EdgemigrateV1alpha1().Migrations(testNamespace).Create(w.ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	key := migrationKey(m)
	var got *v1alpha1.Migration
	// Each reconcile starts from the informer's copy: sync until the status written shows.
	_ = wait.PollUntilContextTimeout(w.ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		if _, err := b.c.sync(ctx, key); err != nil {
			t.Logf("sync: %v", err)
		}
		got, _ = b.migs.EdgemigrateV1alpha1().Migrations(testNamespace).Get(ctx, m.Name, metav1.GetOptions{})
		return got != nil && got.Final(), nil
	})
	if got == nil || got.Status.Phase != v1alpha1.PhaseFailed || got.Status.Reason != api.ReasonMigratedAway || !strings.Contains(got.Status.Message, "homed at") {
		t.Fatalf("the superseded copy's Migration: %+v, want Failed %s saying where the service is homed", got.Status, api.ReasonMigratedAway)
	}
}

// TestSupersededSourceAborts: edge-b moves the service on to edge-c (the only cluster
// covering the client) and is cut off once edge-c is Ready, before it removed its copy;
// edge-b is marked dead and edge-a takes the service back. When edge-b returns, the ledger
// refuses its completion (the service is homed at edge-a, not edge-c), so edge-b aborts the
// migration and edge-c removes its copy: one copy, not one at edge-a and one at edge-c
// under a migration nobody ends.
func TestSupersededSourceAborts(t *testing.T) {
	w, a, b, origin := moveToB(t, v1alpha1.KindDeployment, []runtime.Object{deployment("svc", 1, "2Gi")})
	c := w.addClusterWithEvents("edge-c", nil)
	var hold atomic.Bool
	hold.Store(true)
	b.kube.PrependReactor("patch", "deployments", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if strings.Contains(string(action.(clienttesting.PatchAction).GetPatch()), `"replicas":0`) && hold.Load() {
			return true, nil, errors.New("edge-b is cut off")
		}
		return false, nil, nil
	})
	onward := manual(v1alpha1.KindDeployment, "svc")
	onward.Name, onward.UID = "onward", "7d9c7d2e-0000-4000-8000-000000000002"
	onward.Spec.Reason = v1alpha1.ReasonClientMobility
	onward.Spec.ClientLocation = &v1alpha1.Location{Lat: sites["edge-c"].Lat, Lon: sites["edge-c"].Lon}
	if _, err := b.migs.EdgemigrateV1alpha1().Migrations(testNamespace).Create(w.ctx, onward, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.until("edge-c Ready for edge-b", func() bool {
		c.playControllers()
		return b.named("onward").Status.Phase == v1alpha1.PhaseReady
	})
	if d := b.named("onward").Status.Destination; d != "edge-c" {
		t.Fatalf("the onward move went to %s, want edge-c", d)
	}
	w.clusters = []*cluster{a, c} // edge-b cut off
	w.silentUntil("edge-a re-homes the service", func() { a.playControllers(); c.playControllers() }, func() bool { return w.home(origin).Cluster == "edge-a" })
	hold.Store(false)
	w.clusters = append(w.clusters, b)
	b.c.reportCapacity(w.ctx)
	w.until("edge-b's migration ends, and edge-c's", func() bool {
		for _, cl := range w.clusters {
			cl.playControllers()
		}
		dest := c.migrations(v1alpha1.RoleDestination)
		return final(b.named("onward")) && len(dest) == 1 && final(dest[0])
	})
	for _, cl := range w.clusters {
		cl.playControllers()
	}
	if got := [3]int{a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"), c.copies(v1alpha1.KindDeployment, "svc")}; got != [3]int{1, 0, 0} {
		t.Fatalf("copies at edge-a, edge-b, edge-c: %v, want [1 0 0]\n%s", got, w.dump())
	}
	if m := b.named("onward"); m.Status.Phase != v1alpha1.PhaseAborted || m.Status.Reason != api.ReasonMigratedAway {
		t.Errorf("edge-b's migration: %s %s (%s), want Aborted %s", m.Status.Phase, m.Status.Reason, m.Status.Message, api.ReasonMigratedAway)
	}
}
