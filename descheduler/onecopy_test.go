package descheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/gateway"
)

// addClusterWithEvents is addCluster with the controller's Events recorded for the test.
func (w *world) addClusterWithEvents(id string, mutate func(*Config), objs ...runtime.Object) *cluster {
	w.t.Helper()
	cl := w.newClusterWith(func(cl *cluster) { cl.events = record.NewFakeRecorder(1000) }, id, mutate, objs...)
	if err := cl.c.register(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	cl.c.registered.Store(true)
	return cl
}

// named returns the cluster's Migration of that name, failing when there is none.
func (cl *cluster) named(name string) v1alpha1.Migration {
	cl.w.t.Helper()
	for _, m := range cl.migrations("") {
		if m.Name == name {
			return m
		}
	}
	cl.w.t.Fatalf("%s has no Migration %s\n%s", cl.id, name, cl.w.dump())
	return v1alpha1.Migration{}
}

// servingCopies counts the copies of svc that run, in every cluster given.
func servingCopies(kind string, clusters ...*cluster) int {
	n := 0
	for _, cl := range clusters {
		n += cl.copies(kind, "svc")
	}
	return n
}

// TestRefusals: a Migration that would make a second copy, or one its controller would
// recreate, ends Failed before it reaches the ledger, saying why, with an Event; the
// service keeps running where it ran.
func TestRefusals(t *testing.T) {
	owned := barePod("svc")
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "svc-7d9f8", UID: "uid-rs", Controller: ptr.To(true)}}
	parked := deployment("svc", 0, "2Gi")
	parked.Annotations = map[string]string{api.AnnotationMigratedTo: "edge-c", api.AnnotationMigrationID: "edge-a-0123456789ab"}
	arriving := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: "edge-c-0123456789ab", Namespace: testNamespace, UID: "uid-arriving",
		CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Minute))},
		Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindDeployment, Name: "svc"},
			Reason: v1alpha1.ReasonClientMobility, LedgerID: "edge-c-0123456789ab"}}
	first := manual(v1alpha1.KindDeployment, "svc")
	second := manual(v1alpha1.KindDeployment, "svc")
	second.Name, second.UID = "move-svc-again", "uid-again"
	second.CreationTimestamp = metav1.NewTime(first.CreationTimestamp.Add(time.Second))
	// Created in the same second: the name orders them, for good.
	sameSecond := manual(v1alpha1.KindDeployment, "svc")
	sameSecond.Name, sameSecond.UID, sameSecond.CreationTimestamp = "move-svc-b", "uid-b", first.CreationTimestamp
	// Queued already (past the guard): it stays ahead of one that sorts before it.
	queued := manual(v1alpha1.KindDeployment, "svc")
	queued.Name, queued.UID = "move-svc-z", "uid-z"
	queued.Status = v1alpha1.MigrationStatus{Role: v1alpha1.RoleSource, Phase: v1alpha1.PhasePending, Reason: "Queued",
		LedgerID: "edge-a-uidz", Source: "edge-a", StartTime: &queued.CreationTimestamp}
	for _, tc := range []struct {
		name string
		objs []runtime.Object
		// refused is the Migration that must fail.
		refused, reason, message string
		// moves: the other Migration moves the service to edge-b.
		moves bool
	}{
		{name: "a Pod its ReplicaSet owns", objs: []runtime.Object{owned, manual(v1alpha1.KindPod, "svc")},
			refused: "move-svc", reason: api.ReasonNotMigratable, message: "pod is owned by ReplicaSet svc-7d9f8; migrate its Deployment"},
		{name: "a parked Deployment", objs: []runtime.Object{parked, manual(v1alpha1.KindDeployment, "svc")},
			refused: "move-svc", reason: api.ReasonMigratedAway, message: "the service runs in edge-c (migration edge-a-0123456789ab); create the Migration there"},
		{name: "while a destination's copy arrives", objs: []runtime.Object{deployment("svc", 1, "2Gi"), arriving, manual(v1alpha1.KindDeployment, "svc")},
			refused: "move-svc", reason: api.ReasonAlreadyMigrating, message: "already has an open migration, edge-c-0123456789ab (ClientMobility"},
		{name: "a second Manual", objs: []runtime.Object{deployment("svc", 1, "2Gi"), first, second},
			refused: "move-svc-again", reason: api.ReasonAlreadyMigrating, message: "already has an open migration, move-svc (Manual", moves: true},
		{name: "a second Manual of the same second", objs: []runtime.Object{deployment("svc", 1, "2Gi"), sameSecond, first.DeepCopy()},
			refused: "move-svc-b", reason: api.ReasonAlreadyMigrating, message: "already has an open migration, move-svc (Manual", moves: true},
		{name: "a Manual of the same second as one queued", objs: []runtime.Object{deployment("svc", 1, "2Gi"), queued, first.DeepCopy()},
			refused: "move-svc", reason: api.ReasonAlreadyMigrating, message: "already has an open migration, move-svc-z (Manual, Source", moves: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			a := w.addClusterWithEvents("edge-a", nil, tc.objs...)
			b := w.addCluster("edge-b", nil)
			w.until("refused", func() bool { return a.named(tc.refused).Status.Phase == v1alpha1.PhaseFailed })
			m := a.named(tc.refused)
			if m.Status.Reason != tc.reason || !strings.Contains(m.Status.Message, tc.message) {
				t.Errorf("refused with %s: %q; want %s, saying %q", m.Status.Reason, m.Status.Message, tc.reason, tc.message)
			}
			if _, err := a.ledger.GetMigration(w.ctx, m.Status.LedgerID); chaincode.CodeOf(err) != chaincode.CodeNotFound {
				t.Errorf("the refused Migration reached the ledger: %v", err)
			}
			if tc.reason != api.ReasonNotMigratable { // the source's own Event says that one
				if n := count(eventsOf(a.events), "Warning "+tc.reason+" "); n != 1 {
					t.Errorf("%d Warning %s Events, want 1", n, tc.reason)
				}
			}
			if !tc.moves {
				return
			}
			w.until("the other moves the service", func() bool {
				ms := b.migrations(v1alpha1.RoleDestination)
				return len(ms) == 1 && ms[0].Status.Phase == v1alpha1.PhaseCompleted
			})
			if a.copies(v1alpha1.KindDeployment, "svc") != 0 || b.copies(v1alpha1.KindDeployment, "svc") != 1 {
				t.Errorf("copies: edge-a %d, edge-b %d; want 0 and 1", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
			}
		})
	}
}

// TestManualDuringMobility: a user's Manual Migration while the car's service moves (the
// mobility migration already on the ledger) is refused: one destination at every step, one
// copy in the end.
func TestManualDuringMobility(t *testing.T) {
	w := newWorld(t)
	a := w.addClusterWithEvents("edge-a", nil, deployment("svc", 1, "2Gi"))
	b := w.addCluster("edge-b", nil)
	c := w.addCluster("edge-c", nil)
	a.playControllers() // the car's pod
	a.settle()
	a.locations.m["car-1"] = sites["edge-b"]
	a.c.checkClients(w.ctx)
	mobility := a.only("")
	w.reconcile()
	w.reconcile()
	if m := a.named(mobility.Name); m.Status.Phase == v1alpha1.PhasePending || m.Final() {
		t.Fatalf("the mobility migration is %s, want it on the ledger", m.Status.Phase)
	}
	w.clock.Step(time.Second)
	m := manual(v1alpha1.KindDeployment, "svc")
	m.CreationTimestamp = metav1.Time{} // the API server's
	if _, err := a.migs.EdgemigrateV1alpha1().Migrations(testNamespace).Create(w.ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.until("both final", func() bool {
		// Make before break: the source's copy and one destination's, never a second.
		if n, dests := servingCopies(v1alpha1.KindDeployment, a, b, c), len(b.migrations(v1alpha1.RoleDestination))+len(c.migrations(v1alpha1.RoleDestination)); n > 2 || dests > 1 {
			t.Fatalf("%d copies run, %d destinations\n%s", n, dests, w.dump())
		}
		return final(a.named(mobility.Name)) && final(a.named("move-svc")) && len(b.migrations(v1alpha1.RoleDestination)) == 1 &&
			final(b.only(v1alpha1.RoleDestination))
	})
	if got := a.named("move-svc"); got.Status.Phase != v1alpha1.PhaseFailed || got.Status.Reason != api.ReasonAlreadyMigrating ||
		!strings.Contains(got.Status.Message, mobility.Name) {
		t.Errorf("the Manual Migration is %s/%s: %q; want Failed, AlreadyMigrating, naming %s", got.Status.Phase, got.Status.Reason, got.Status.Message, mobility.Name)
	}
	if got := a.named(mobility.Name); got.Status.Phase != v1alpha1.PhaseCompleted || got.Status.Destination != "edge-b" {
		t.Errorf("the mobility migration is %s to %s, want Completed to edge-b", got.Status.Phase, got.Status.Destination)
	}
	if n := len(c.migrations(v1alpha1.RoleDestination)); n != 0 {
		t.Errorf("edge-c has %d destination Migrations, want none", n)
	}
	if a.copies(v1alpha1.KindDeployment, "svc") != 0 || b.copies(v1alpha1.KindDeployment, "svc") != 1 {
		t.Errorf("copies: edge-a %d, edge-b %d; want 0 and 1", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
	}
}

// TestParkedScaleUp: a parked Deployment scaled up by hand or GitOps is scaled back to
// zero, with a Warning Event on it and on its Migration that says where the service runs,
// and counted; the service coming back (edgemigrate's own scale-up) is not taken for one.
func TestParkedScaleUp(t *testing.T) {
	w := newWorld(t)
	a := w.addClusterWithEvents("edge-a", nil, deployment("svc", 2, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	b := w.addCluster("edge-b", nil)
	w.until("moved", func() bool {
		ms := b.migrations(v1alpha1.RoleDestination)
		return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted && len(ms) == 1 && final(ms[0])
	})
	eventsOf(a.events)
	d, err := a.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = ptr.To[int32](3) // as kubectl scale or a GitOps sync would
	if _, err := a.kube.AppsV1().Deployments(testNamespace).Update(w.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.settle()
	a.waitQueued() // the Deployment informer's doing, not a resync's
	a.drain()
	d, _ = a.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{})
	if *d.Spec.Replicas != 0 || d.Annotations[api.AnnotationMigratedTo] != "edge-b" {
		t.Fatalf("the parked Deployment has %d replicas, migrated-to %q; want 0 and edge-b", *d.Spec.Replicas, d.Annotations[api.AnnotationMigratedTo])
	}
	events := eventsOf(a.events)
	want := "Warning " + api.EventParkedScaleUp + " Deployment svc was scaled to 3 replicas, but it is parked: the service runs in edge-b"
	if n := count(events, want); n != 2 {
		t.Errorf("events %q: want 2 (the Deployment's, the Migration's) starting %q", events, want)
	}
	if !strings.Contains(strings.Join(events, "\n"), "create a Manual Migration of it in edge-b") {
		t.Errorf("events %q do not say how to bring the service back", events)
	}
	if got := testutil.ToFloat64(a.c.metrics.parkedScaleUps); got != 1 {
		t.Errorf("edgemigrate_parked_scaleups_total %v, want 1", got)
	}

	// The service comes back: its parked copy is scaled up by the migration, not flagged.
	back := manual(v1alpha1.KindDeployment, "svc")
	back.UID, back.CreationTimestamp = "uid-back", metav1.Time{}
	if _, err := b.migs.EdgemigrateV1alpha1().Migrations(testNamespace).Create(w.ctx, back, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.until("back", func() bool {
		ms := a.migrations(v1alpha1.RoleDestination)
		return len(ms) == 1 && ms[0].Status.Phase == v1alpha1.PhaseCompleted
	})
	w.reconcile()
	if a.copies(v1alpha1.KindDeployment, "svc") != 1 || b.copies(v1alpha1.KindDeployment, "svc") != 0 {
		t.Errorf("copies: edge-a %d, edge-b %d; want 1 and 0", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
	}
	if got := testutil.ToFloat64(a.c.metrics.parkedScaleUps); got != 1 {
		t.Errorf("edgemigrate_parked_scaleups_total %v after the service came back, want still 1", got)
	}
	if n := count(eventsOf(a.events), "Warning "+api.EventParkedScaleUp); n != 0 {
		t.Errorf("%d ParkedScaleUp Events for the service coming back", n)
	}
}

// The gateway never sends a client to a dead cluster: a local copy serves if one is Ready,
// else the service is Unavailable, saying why; a copy that stood down sends the client to
// the service's home.
func TestRouteDead(t *testing.T) {
	mig := routeMigration
	moved := mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-b", 1)
	ready := mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseReady, "edge-b", 1)
	arrived := mig("m2", v1alpha1.RoleDestination, v1alpha1.PhaseCompleted, "edge-b", 2)
	arrived.Spec.Workload = v1alpha1.WorkloadReference{Kind: v1alpha1.KindDeployment, Name: "svc"}
	standby := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", UID: types.UID("uid-svc"),
		Annotations: map[string]string{api.AnnotationMigratedTo: "edge-b"}}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0)}}
	for _, tc := range []struct {
		name     string
		objs     []runtime.Object
		dead     bool
		kind     gateway.RouteKind
		resolves string
		reason   string
	}{
		{name: "moved to a live cluster", objs: []runtime.Object{moved}, kind: gateway.Remote, resolves: "edge-b"},
		{name: "moved to a dead cluster", objs: []runtime.Object{moved}, dead: true, kind: gateway.Unavailable,
			reason: "the service ran in cluster edge-b, dead on the ledger since"},
		{name: "moved to a dead cluster, the local copy back and Ready", objs: []runtime.Object{moved, servicePod("p1", svc, true)}, dead: true,
			kind: gateway.Local, resolves: "edge-a"},
		{name: "destination Ready but dead, the local copy still Ready", objs: []runtime.Object{ready, servicePod("p1", svc, true)}, dead: true,
			kind: gateway.Local, resolves: "edge-a"},
		{name: "the copy that arrived here stood down", objs: []runtime.Object{arrived, standby}, kind: gateway.Remote, resolves: "edge-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := newWorld(t).newCluster("edge-a", func(c *Config) { c.PublicEndpoint = "http://a" }, tc.objs...)
			cl.settle()
			cl.c.endpoints.Store("edge-b", "http://b")
			if tc.dead {
				cl.c.homes.dead = map[string]string{"edge-b": "2026-12-01T18:00:00Z"}
			}
			r := cl.c.Route("car-1")
			if r.Kind != tc.kind || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("Route = %+v; want %s, reason containing %q", r, tc.kind, tc.reason)
			}
			if r.Kind == gateway.Remote && r.Endpoint != "http://b" {
				t.Errorf("Route = %+v; want edge-b's endpoint", r)
			}
			got, ok := cl.c.Resolve("car-1")
			if map[bool]string{true: got.Cluster}[ok] != tc.resolves {
				t.Errorf("Resolve = %+v, %v; want %q", got, ok, tc.resolves)
			}
		})
	}
}
