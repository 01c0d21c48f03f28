package descheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/client-go/testing"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// phases records every phase each Migration of a cluster was written with, in order.
func (cl *cluster) recordPhases() map[string][]v1alpha1.MigrationPhase {
	seen := map[string][]v1alpha1.MigrationPhase{}
	cl.migs.PrependReactor("update", "migrations", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() == "status" {
			m := action.(clienttesting.UpdateAction).GetObject().(*v1alpha1.Migration)
			if s := seen[m.Name]; len(s) == 0 || s[len(s)-1] != m.Status.Phase {
				seen[m.Name] = append(s, m.Status.Phase)
			}
		}
		return false, nil, nil
	})
	return seen
}

func phasesOf(seen map[string][]v1alpha1.MigrationPhase, name string) string {
	var out []string
	for _, p := range seen[name] {
		out = append(out, string(p))
	}
	return strings.Join(out, "→")
}

// workloads moved in the tests, as they run in edge-a before a migration.
var workloads = []struct {
	kind string
	objs func() []runtime.Object
}{
	{v1alpha1.KindDeployment, func() []runtime.Object { return []runtime.Object{deployment("svc", 2, "2Gi")} }},
	{v1alpha1.KindPod, func() []runtime.Object { return []runtime.Object{barePod("svc")} }},
}

// TestPhases: a migration goes through every phase of both roles, make before break, and
// ends with one copy at the destination.
func TestPhases(t *testing.T) {
	for _, wl := range workloads {
		t.Run(wl.kind, func(t *testing.T) {
			w := newWorld(t)
			a := w.addCluster("edge-a", nil, append(wl.objs(), manual(wl.kind, "svc"))...)
			b := w.addCluster("edge-b", nil)
			srcPhases, dstPhases := a.recordPhases(), b.recordPhases()
			w.until("the source completes", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
			w.until("the destination completes", func() bool { return b.only(v1alpha1.RoleDestination).Status.Phase == v1alpha1.PhaseCompleted })

			src, dst := a.only(v1alpha1.RoleSource), b.only(v1alpha1.RoleDestination)
			if got := phasesOf(srcPhases, src.Name); got != "Pending→Proposed→Decided→Ready→Completed" {
				t.Errorf("source phases %s", got)
			}
			if got := phasesOf(dstPhases, dst.Name); got != "Creating→Ready→Completed" {
				t.Errorf("destination phases %s", got)
			}
			if a.copies(wl.kind, "svc") != 0 || b.copies(wl.kind, "svc") != 1 {
				t.Errorf("copies: edge-a %d, edge-b %d; want 0 and 1", a.copies(wl.kind, "svc"), b.copies(wl.kind, "svc"))
			}
			if src.Status.Destination != "edge-b" || src.Status.DestinationEndpoint != b.cfg.PublicEndpoint || dst.Spec.LedgerID != src.Status.LedgerID {
				t.Errorf("source status %+v, destination spec %+v", src.Status, dst.Spec)
			}
			for _, m := range []v1alpha1.Migration{src, dst} {
				if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
					t.Errorf("%s: Ready condition %+v", m.Name, c)
				}
				if m.Status.ObservedGeneration != m.Generation {
					t.Errorf("%s: observedGeneration %d, generation %d", m.Name, m.Status.ObservedGeneration, m.Generation)
				}
			}
			if !meta.IsStatusConditionTrue(src.Status.Conditions, v1alpha1.ConditionSourceRemoved) {
				t.Errorf("source conditions %+v: want SourceRemoved", src.Status.Conditions)
			}
			if lm := w.ledgerMigration(src.Status.LedgerID); lm.State != chaincode.StateCompleted {
				t.Errorf("ledger state %s", lm.State)
			}
			if got := testutil.ToFloat64(a.c.metrics.migrations.WithLabelValues(string(v1alpha1.ReasonManual), string(v1alpha1.PhaseCompleted))); got != 1 {
				t.Errorf("edge-a counted %v completed migrations, want 1", got)
			}
			if got := testutil.ToFloat64(b.c.metrics.bids.WithLabelValues("true", "false")); got != 1 {
				t.Errorf("edge-b counted %v bids, want 1", got)
			}
			if wl.kind == v1alpha1.KindDeployment {
				d, _ := a.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{})
				if d.Annotations[api.AnnotationMigratedTo] != "edge-b" || d.Annotations[api.AnnotationMigrationID] != src.Status.LedgerID {
					t.Errorf("the source Deployment is not marked as moved: %v", d.Annotations)
				}
				moved, _ := b.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{})
				if *moved.Spec.Replicas != 2 || src.Status.Replicas != 2 || moved.Annotations[api.AnnotationMigratedFrom] != "edge-a" {
					t.Errorf("moved Deployment: %d replicas (status %d), annotations %v", *moved.Spec.Replicas, src.Status.Replicas, moved.Annotations)
				}
			}
		})
	}
}

// TestFailures: each way a migration can fail leaves the service running somewhere, once,
// and says why.
func TestFailures(t *testing.T) {
	notJetson := jetsonNode("plain-0")
	notJetson.Labels = nil
	for _, tc := range []struct {
		name string
		// setup builds the world; the Migration is edge-a's.
		setup func(w *world) (a *cluster, others []*cluster)
		// done is when to stop.
		phase  v1alpha1.MigrationPhase
		reason string
		// where the service runs in the end.
		runsIn string
		check  func(t *testing.T, w *world, src v1alpha1.Migration)
	}{{
		name: "workload not found",
		setup: func(w *world) (*cluster, []*cluster) {
			return w.addCluster("edge-a", nil, manual(v1alpha1.KindDeployment, "svc")), []*cluster{w.addCluster("edge-b", nil)}
		},
		phase: v1alpha1.PhaseFailed, reason: "WorkloadNotFound",
		check: func(t *testing.T, w *world, src v1alpha1.Migration) {
			if _, err := w.store.Client("MSP-edge-a").GetMigration(w.ctx, src.Status.LedgerID); chaincode.CodeOf(err) != chaincode.CodeNotFound {
				t.Errorf("the ledger knows %s: %v", src.Status.LedgerID, err)
			}
		},
	}, {
		name: "a workload with a PersistentVolumeClaim is not migratable",
		setup: func(w *world) (*cluster, []*cluster) {
			d := deployment("svc", 1, "2Gi")
			d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: "data",
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
			return w.addCluster("edge-a", nil, d, manual(v1alpha1.KindDeployment, "svc")), []*cluster{w.addCluster("edge-b", nil)}
		},
		phase: v1alpha1.PhaseFailed, reason: "NotMigratable", runsIn: "edge-a",
		check: func(t *testing.T, w *world, src v1alpha1.Migration) {
			if !strings.Contains(src.Status.Message, "uses PersistentVolumeClaim data (volume data)") {
				t.Errorf("message %q does not say why", src.Status.Message)
			}
			if _, err := w.store.Client("MSP-edge-a").GetMigration(w.ctx, src.Status.LedgerID); chaincode.CodeOf(err) != chaincode.CodeNotFound {
				t.Errorf("the ledger knows %s: %v", src.Status.LedgerID, err)
			}
		},
	}, {
		name: "no destination",
		setup: func(w *world) (*cluster, []*cluster) {
			return w.addCluster("edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc")),
				[]*cluster{w.addCluster("edge-b", nil, notJetson.DeepCopy())}
		},
		phase: v1alpha1.PhaseFailed, reason: "NoDestination", runsIn: "edge-a",
		check: func(t *testing.T, w *world, src v1alpha1.Migration) {
			lm := w.ledgerMigration(src.Status.LedgerID)
			if lm.State != chaincode.StateRejected || len(src.Status.Bids) != 1 || src.Status.Bids[0].CanHost {
				t.Errorf("ledger %s, bids %+v: want Rejected after edge-b's refusal", lm.State, src.Status.Bids)
			}
		},
	}, {
		name: "destination not Ready in time: the next bidder takes it",
		setup: func(w *world) (*cluster, []*cluster) {
			short := func(c *Config) { c.DestinationReadyTimeout = 10 * time.Second }
			a := w.addCluster("edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
			b := w.addCluster("edge-b", short)
			b.noKubelet = true
			return a, []*cluster{b, w.addCluster("edge-c", short)}
		},
		phase: v1alpha1.PhaseCompleted, reason: "Completed", runsIn: "edge-c",
		check: func(t *testing.T, w *world, src v1alpha1.Migration) {
			b := w.clusters[1]
			if got := b.only(v1alpha1.RoleDestination); got.Status.Phase != v1alpha1.PhaseFailed || got.Status.Reason != "DestinationFailed" {
				t.Errorf("edge-b's Migration %s/%s: want Failed/DestinationFailed", got.Status.Phase, got.Status.Reason)
			}
			if !slices.Equal(src.Status.Excluded, []string{"edge-b"}) || src.Status.Destination != "edge-c" {
				t.Errorf("excluded %v, destination %s; want edge-b excluded, edge-c chosen", src.Status.Excluded, src.Status.Destination)
			}
		},
	}, {
		name: "abort before Ready",
		setup: func(w *world) (*cluster, []*cluster) {
			a := w.addCluster("edge-a", func(c *Config) { c.MigrationTimeout = 20 * time.Second },
				deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
			b := w.addCluster("edge-b", nil)
			b.noKubelet = true
			return a, []*cluster{b}
		},
		phase: v1alpha1.PhaseAborted, reason: "Timeout", runsIn: "edge-a",
		check: func(t *testing.T, w *world, src v1alpha1.Migration) {
			b := w.clusters[1]
			w.until("the destination cleans up", func() bool { return final(b.only(v1alpha1.RoleDestination)) })
			if got := b.only(v1alpha1.RoleDestination); got.Status.Phase != v1alpha1.PhaseAborted {
				t.Errorf("edge-b's Migration is %s, want Aborted", got.Status.Phase)
			}
			if lm := w.ledgerMigration(src.Status.LedgerID); lm.State != chaincode.StateAborted {
				t.Errorf("ledger state %s, want Aborted", lm.State)
			}
		},
	}, {
		name: "dry run",
		setup: func(w *world) (*cluster, []*cluster) {
			return w.addCluster("edge-a", func(c *Config) { c.DryRun = true }, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc")),
				[]*cluster{w.addCluster("edge-b", nil)}
		},
		phase: v1alpha1.PhasePending, reason: "DryRun", runsIn: "edge-a",
		check: func(t *testing.T, w *world, src v1alpha1.Migration) {
			if _, err := w.store.Client("MSP-edge-a").GetMigration(w.ctx, src.Status.LedgerID); chaincode.CodeOf(err) != chaincode.CodeNotFound {
				t.Errorf("a dry run proposed %s: %v", src.Status.LedgerID, err)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			a, others := tc.setup(w)
			w.until("phase "+string(tc.phase), func() bool {
				m := a.only(v1alpha1.RoleSource)
				return m.Status.Phase == tc.phase && (tc.phase != v1alpha1.PhasePending || m.Status.Reason != "")
			})
			src := a.only(v1alpha1.RoleSource)
			if src.Status.Reason != tc.reason {
				t.Errorf("source reason %q (%s), want %q", src.Status.Reason, src.Status.Message, tc.reason)
			}
			if c := meta.FindStatusCondition(src.Status.Conditions, v1alpha1.ConditionReady); tc.phase != v1alpha1.PhaseCompleted && (c == nil || c.Status != metav1.ConditionFalse) {
				t.Errorf("Ready condition %+v, want False", c)
			}
			if tc.check != nil {
				tc.check(t, w, src)
			}
			w.reconcile()
			for _, cl := range append([]*cluster{a}, others...) {
				want := 0
				if cl.id == tc.runsIn {
					want = 1
				}
				if got := cl.copies(v1alpha1.KindDeployment, "svc"); got != want {
					t.Errorf("%s runs %d copies, want %d\n%s", cl.id, got, want, w.dump())
				}
			}
		})
	}
}

// TestEvictionBlocked: a PodDisruptionBudget holds the source's pod; once the destination is
// Ready the source never aborts, it retries until the eviction goes through.
func TestEvictionBlocked(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", func(c *Config) { c.MigrationTimeout = 20 * time.Second }, barePod("svc"), manual(v1alpha1.KindPod, "svc"))
	b := w.addCluster("edge-b", nil)
	a.evictionBlocked.Store(true)
	w.until("eviction blocked", func() bool {
		c := meta.FindStatusCondition(a.only(v1alpha1.RoleSource).Status.Conditions, v1alpha1.ConditionSourceRemoved)
		return c != nil && c.Reason == reasonEvictionBlocked
	})
	for range 40 { // past --migration-timeout
		w.clock.Step(time.Second)
		w.reconcile()
	}
	if src := a.only(v1alpha1.RoleSource); src.Status.Phase != v1alpha1.PhaseReady || a.copies(v1alpha1.KindPod, "svc") != 1 {
		t.Fatalf("with the eviction blocked past the timeout: phase %s, %d local copies; want Ready and 1", src.Status.Phase, a.copies(v1alpha1.KindPod, "svc"))
	}
	a.evictionBlocked.Store(false)
	w.until("completed", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	if a.copies(v1alpha1.KindPod, "svc") != 0 || b.copies(v1alpha1.KindPod, "svc") != 1 {
		t.Errorf("copies: edge-a %d, edge-b %d", a.copies(v1alpha1.KindPod, "svc"), b.copies(v1alpha1.KindPod, "svc"))
	}
}

// TestMaxConcurrent: beyond --max-concurrent-migrations, Migrations wait Pending (Queued)
// and start as others finish.
func TestMaxConcurrent(t *testing.T) {
	w := newWorld(t)
	first, second := manual(v1alpha1.KindDeployment, "one"), manual(v1alpha1.KindDeployment, "two")
	second.CreationTimestamp = metav1.NewTime(first.CreationTimestamp.Add(time.Second))
	// Two services of one car would be ambiguous at its gateway: each has its own.
	two := deployment("two", 1, "2Gi")
	two.Spec.Template.Annotations[api.AnnotationClientID] = "car-2"
	a := w.addCluster("edge-a", func(c *Config) { c.MaxConcurrentMigrations = 1 },
		deployment("one", 1, "2Gi"), two, first, second)
	b := w.addCluster("edge-b", nil)
	a.settle()
	a.c.resync(w.ctx)
	a.drain() // status written
	a.c.resync(w.ctx)
	a.drain() // one proposes, the other waits
	var queued, moving int
	for _, m := range a.migrations(v1alpha1.RoleSource) {
		switch {
		case m.Status.Phase == v1alpha1.PhasePending && m.Status.Reason == "Queued":
			queued++
		case m.Status.Phase == v1alpha1.PhaseProposed:
			moving++
		}
	}
	if queued != 1 || moving != 1 {
		t.Fatalf("queued %d, proposed %d; want 1 and 1\n%s", queued, moving, w.dump())
	}
	w.until("both moved", func() bool {
		for _, m := range a.migrations(v1alpha1.RoleSource) {
			if m.Status.Phase != v1alpha1.PhaseCompleted {
				return false
			}
		}
		return true
	})
	if b.copies(v1alpha1.KindDeployment, "one") != 1 || b.copies(v1alpha1.KindDeployment, "two") != 1 {
		t.Errorf("edge-b runs %d and %d", b.copies(v1alpha1.KindDeployment, "one"), b.copies(v1alpha1.KindDeployment, "two"))
	}
}

// state is what a world holds, without what differs between runs (times, versions).
func (w *world) state() string {
	type mig struct {
		Cluster, Name                  string
		Role                           v1alpha1.MigrationRole
		Phase                          v1alpha1.MigrationPhase
		Reason, Destination            string
		Replicas                       int32
		Bids                           []v1alpha1.Bid
		Excluded                       []string
		Conditions                     []string
		LedgerState, LedgerDestination string
		LedgerExcluded                 []string
		Deployments, Pods              []string
	}
	var out []mig
	for _, cl := range w.clusters {
		list, _ := cl.migs.EdgemigrateV1alpha1().Migrations("").List(w.ctx, metav1.ListOptions{})
		for _, m := range list.Items {
			s := mig{Cluster: cl.id, Name: m.Name, Role: m.Status.Role, Phase: m.Status.Phase, Reason: m.Status.Reason,
				Destination: m.Status.Destination, Replicas: m.Status.Replicas, Bids: m.Status.Bids, Excluded: m.Status.Excluded}
			for _, c := range m.Status.Conditions {
				s.Conditions = append(s.Conditions, c.Type+"="+string(c.Status)+"/"+c.Reason)
			}
			if lm, err := cl.ledger.GetMigration(w.ctx, ledgerIDOf(&m)); err == nil {
				s.LedgerState, s.LedgerExcluded = string(lm.State), lm.Excluded
				if lm.Decision != nil {
					s.LedgerDestination = lm.Decision.Destination
				}
			}
			out = append(out, s)
		}
		deps, _ := cl.kube.AppsV1().Deployments("").List(w.ctx, metav1.ListOptions{})
		pods, _ := cl.kube.CoreV1().Pods("").List(w.ctx, metav1.ListOptions{})
		s := mig{Cluster: cl.id}
		for _, d := range deps.Items {
			s.Deployments = append(s.Deployments, fmt.Sprintf("%s×%d to:%s", d.Name, *d.Spec.Replicas, d.Annotations[api.AnnotationMigratedTo]))
		}
		for _, p := range pods.Items {
			s.Pods = append(s.Pods, p.Name+" ready:"+map[bool]string{true: "y", false: "n"}[podReady(&p)])
		}
		slices.Sort(s.Deployments)
		slices.Sort(s.Pods)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b mig) int { return strings.Compare(a.Cluster+"/"+a.Name, b.Cluster+"/"+b.Name) })
	b, _ := json.MarshalIndent(out, "", " ")
	return string(b)
}

// TestIdempotent: running every reconcile twice in a row ends in the same objects and
// ledger state as running it once, at every step of the way.
func TestIdempotent(t *testing.T) {
	for _, wl := range workloads {
		t.Run(wl.kind, func(t *testing.T) {
			run := func(twice bool) []string {
				w := newWorld(t)
				a := w.addCluster("edge-a", nil, append(wl.objs(), manual(wl.kind, "svc"))...)
				b := w.addCluster("edge-b", nil)
				a.twice, b.twice = twice, twice
				var states []string
				for range 30 {
					w.reconcile()
					states = append(states, w.state())
					if ms := a.migrations(v1alpha1.RoleSource); len(ms) == 1 && final(ms[0]) && len(b.migrations(v1alpha1.RoleDestination)) == 1 &&
						final(b.only(v1alpha1.RoleDestination)) {
						return states
					}
					w.clock.Step(time.Second)
				}
				t.Fatalf("never finished (twice %v)\n%s", twice, w.dump())
				return nil
			}
			once, twice := run(false), run(true)
			if got, want := twice[len(twice)-1], once[len(once)-1]; got != want {
				t.Errorf("final state with every reconcile run twice:\n%s\nonce:\n%s", got, want)
			}
		})
	}
}

// TestResume: a fresh controller, built from the state left when a migration reached each
// phase (as after a crash: no queue, no cache), finishes it with exactly one copy.
func TestResume(t *testing.T) {
	for _, wl := range workloads {
		for _, tc := range []struct {
			cluster string
			role    v1alpha1.MigrationRole
			phase   v1alpha1.MigrationPhase
		}{
			{"edge-a", v1alpha1.RoleSource, v1alpha1.PhasePending},
			{"edge-a", v1alpha1.RoleSource, v1alpha1.PhaseProposed},
			{"edge-a", v1alpha1.RoleSource, v1alpha1.PhaseDecided},
			{"edge-a", v1alpha1.RoleSource, v1alpha1.PhaseReady},
			{"edge-b", v1alpha1.RoleDestination, v1alpha1.PhaseCreating},
			{"edge-b", v1alpha1.RoleDestination, v1alpha1.PhaseReady},
		} {
			t.Run(wl.kind+"/"+tc.cluster+"/"+string(tc.phase), func(t *testing.T) {
				w := newWorld(t)
				a := w.addCluster("edge-a", nil, append(wl.objs(), manual(wl.kind, "svc"))...)
				b := w.addCluster("edge-b", nil)
				crash := map[string]*cluster{"edge-a": a, "edge-b": b}[tc.cluster]
				crash.crashAt = func(m *v1alpha1.Migration) bool { return m.Status.Role == tc.role && m.Status.Phase == tc.phase }
				w.until("completed", func() bool {
					ms := a.migrations(v1alpha1.RoleSource)
					return len(ms) == 1 && ms[0].Status.Phase == v1alpha1.PhaseCompleted
				})
				if crash.restarts != 1 {
					t.Fatalf("%s restarted %d times, want once at %s", crash.id, crash.restarts, tc.phase)
				}
				w.until("the destination completes", func() bool { return final(b.only(v1alpha1.RoleDestination)) })
				if a.copies(wl.kind, "svc") != 0 || b.copies(wl.kind, "svc") != 1 || b.only(v1alpha1.RoleDestination).Status.Phase != v1alpha1.PhaseCompleted {
					t.Errorf("copies: edge-a %d, edge-b %d\n%s", a.copies(wl.kind, "svc"), b.copies(wl.kind, "svc"), w.dump())
				}
			})
		}
	}
}

// TestTriggers: an unschedulable opted-in pod is offloaded once --offload-after has passed
// (its pod events schedule the check), and a client leaving the coverage moves its service.
func TestTriggers(t *testing.T) {
	t.Run("offload", func(t *testing.T) {
		w := newWorld(t)
		d := deployment("svc", 1, "2Gi")
		pending := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
		pending.Name, pending.Namespace = "svc-x", testNamespace
		pending.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
			Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.NewTime(w.clock.Now())}}}
		a := w.newCluster("edge-a", nil, d, pending)
		a.settle()
		a.drain()
		if n := len(a.migrations("")); n != 0 {
			t.Fatalf("%d Migrations before --offload-after", n)
		}
		w.clock.Step(3 * time.Second)
		a.waitQueued()
		a.drain()
		ms := a.migrations("")
		if len(ms) != 1 || ms[0].Spec.Reason != v1alpha1.ReasonInsufficientResources || ms[0].Spec.Workload.Name != "svc" || ms[0].Spec.ClientID != "car-1" {
			t.Fatalf("Migrations %+v, want one InsufficientResources of svc for its client car-1 (the gateway routes it by that)", ms)
		}
	})
	t.Run("client mobility", func(t *testing.T) {
		w := newWorld(t)
		p := barePod("svc")
		a := w.newCluster("edge-a", nil, p)
		a.settle()
		a.locations.m["car-1"] = sites["edge-a"]
		a.c.checkClients(w.ctx)
		if n := len(a.migrations("")); n != 0 {
			t.Fatalf("%d Migrations while the car is covered", n)
		}
		a.locations.m["car-1"] = sites["edge-b"]
		a.c.checkClients(w.ctx)
		ms := a.migrations("")
		if len(ms) != 1 || ms[0].Spec.Reason != v1alpha1.ReasonClientMobility || ms[0].Spec.ClientLocation == nil {
			t.Fatalf("Migrations %+v, want one ClientMobility with the car's location", ms)
		}
		a.settle()
		a.c.checkClients(w.ctx)
		if n := len(a.migrations("")); n != 1 {
			t.Errorf("%d Migrations after a second check, want still 1", n)
		}
	})
}

func final(m v1alpha1.Migration) bool { return m.Final() }

// TestRun: two controllers run as the binary runs them (informers, workers, the ledger's
// event stream, the periodic loops, the real clock) and move a service; the position in
// the ledger's event stream is saved.
func TestRun(t *testing.T) {
	w := newWorld(t)
	w.realClock = true
	fast := func(c *Config) {
		c.ResyncInterval, c.CapacityReportInterval = 100*time.Millisecond, 100*time.Millisecond
	}
	// Both on the ledger first: a proposal decided before edge-b registers gets no bid.
	a := w.addCluster("edge-a", fast, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	b := w.addCluster("edge-b", fast)
	ctx, stop := context.WithCancel(w.ctx)
	done := make(chan error, 2)
	for _, cl := range []*cluster{a, b} {
		go func() { done <- cl.c.Run(ctx) }()
	}
	// The harness started the informers under each cluster's own context: Run's Shutdown
	// waits for them.
	shutdown := func() {
		stop()
		a.stop()
		b.stop()
	}
	stopped := false
	defer func() {
		if !stopped {
			shutdown()
			<-done
			<-done
		}
	}()
	err := wait.PollUntilContextTimeout(w.ctx, 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		a.playControllers()
		b.playControllers()
		ms := b.migrations(v1alpha1.RoleDestination)
		return a.c.Ready() && b.c.Ready() && len(ms) == 1 && ms[0].Status.Phase == v1alpha1.PhaseCompleted, nil
	})
	if err != nil {
		t.Fatalf("the service did not move: %v\n%s", err, w.dump())
	}
	if a.copies(v1alpha1.KindDeployment, "svc") != 0 || b.copies(v1alpha1.KindDeployment, "svc") != 1 {
		t.Errorf("copies: edge-a %d, edge-b %d", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
	}
	err = wait.PollUntilContextTimeout(w.ctx, 50*time.Millisecond, 3*checkpointSaveInterval, true, func(ctx context.Context) (bool, error) {
		cm, err := b.kube.CoreV1().ConfigMaps(api.SystemNamespace).Get(ctx, checkpointConfigMap, metav1.GetOptions{})
		return err == nil && cm.Data["edge-b"] != "", nil
	})
	if err != nil {
		t.Errorf("edge-b never saved its ledger checkpoint: %v", err)
	}
	shutdown()
	stopped = true
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	if cp := b.c.loadCheckpoint(w.ctx); cp == (ledger.Checkpoint{}) {
		t.Error("the saved checkpoint reads back as the start of the stream")
	}
}
