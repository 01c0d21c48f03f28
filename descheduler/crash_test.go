package descheduler

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
)

// crashing is the status a kubelet gives a pod whose container keeps exiting with an error.
var crashing = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.2.0.9",
	Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
	ContainerStatuses: []corev1.ContainerStatus{{Name: "model", RestartCount: 2,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s restarting failed container"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
			Message: "missing /etc/model/weights"}}}}}

// crashCopies plays a kubelet whose migrated copies crash: a Deployment's get a crashing
// pod, a Pod's status turns to crashing.
func (cl *cluster) crashCopies() {
	ctx := cl.w.ctx
	deps, _ := cl.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	for _, d := range deps.Items {
		if d.Annotations[api.AnnotationMigrationID] == "" {
			continue
		}
		p := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy(), Status: crashing}
		p.Namespace, p.Name, p.Spec.NodeName = d.Namespace, d.Name+"-crash", cl.id+"-xavier-0"
		_, _ = cl.kube.CoreV1().Pods(d.Namespace).Create(ctx, p, metav1.CreateOptions{}) // AlreadyExists after the first round
	}
	pods, _ := cl.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		if p.Annotations[api.AnnotationMigrationID] != "" && len(p.Status.ContainerStatuses) == 0 {
			p.Spec.NodeName, p.Status = cl.id+"-xavier-0", crashing
			if _, err := cl.kube.CoreV1().Pods(p.Namespace).Update(ctx, &p, metav1.UpdateOptions{}); err != nil {
				cl.w.t.Fatal(err)
			}
		}
	}
}

// TestDestinationCrash: a destination whose copy crashes before it is Ready gives the
// migration back at once, with the container's reason, instead of waiting for
// --destination-ready-timeout; the next bidder takes the service.
func TestDestinationCrash(t *testing.T) {
	for _, wl := range workloads {
		t.Run(wl.kind, func(t *testing.T) {
			w := newWorld(t)
			a := w.addCluster("edge-a", nil, append(wl.objs(), manual(wl.kind, "svc"))...)
			// A timeout no run of this test reaches: only the crash can end edge-b's part.
			long := func(c *Config) { c.DestinationReadyTimeout = time.Hour }
			b := w.newClusterWith(func(cl *cluster) { cl.noKubelet, cl.events = true, record.NewFakeRecorder(1000) }, "edge-b", long)
			if err := b.c.register(w.ctx); err != nil {
				t.Fatal(err)
			}
			b.c.registered.Store(true)
			c := w.addCluster("edge-c", long)
			start := w.clock.Now()
			w.until("edge-b gives the migration back", func() bool {
				b.crashCopies()
				ms := b.migrations(v1alpha1.RoleDestination)
				return len(ms) == 1 && ms[0].Status.Phase == v1alpha1.PhaseFailed
			})
			if waited := w.clock.Since(start); waited >= time.Hour {
				t.Fatalf("gave up after %s: the timeout, not the crash", waited)
			}
			got := b.only(v1alpha1.RoleDestination)
			for _, want := range []string{"crashed before it was Ready", "container model", "CrashLoopBackOff", "exit code 1 (Error): missing /etc/model/weights"} {
				if !strings.Contains(got.Status.Message, want) {
					t.Errorf("edge-b's Migration says %q, want it to contain %q", got.Status.Message, want)
				}
			}
			if got.Status.Reason != "DestinationFailed" {
				t.Errorf("edge-b's reason %q", got.Status.Reason)
			}
			if n := b.copies(wl.kind, "svc"); n != 0 {
				t.Errorf("edge-b keeps %d copies", n)
			}
			if kind := wl.kind; kind == v1alpha1.KindDeployment {
				if _, err := b.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{}); err == nil {
					t.Error("edge-b's crashed Deployment is still there")
				}
			} else if _, err := b.kube.CoreV1().Pods(testNamespace).Get(w.ctx, "svc", metav1.GetOptions{}); err == nil {
				t.Error("edge-b's crashed Pod is still there")
			}
			if events := eventsOf(b.events); count(events, "Warning DestinationFailed the copy crashed") != 1 {
				t.Errorf("edge-b's events %q: want one DestinationFailed", events)
			}
			w.until("edge-c takes it", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
			if src := a.only(v1alpha1.RoleSource); src.Status.Destination != "edge-c" || c.copies(wl.kind, "svc") != 1 {
				t.Errorf("destination %s, edge-c copies %d; want edge-c, 1", src.Status.Destination, c.copies(wl.kind, "svc"))
			}
			if lm := w.ledgerMigration(a.only(v1alpha1.RoleSource).Status.LedgerID); len(lm.Excluded) != 1 || lm.Excluded[0] != "edge-b" {
				t.Errorf("ledger excluded %v, want edge-b", lm.Excluded)
			}
		})
	}
}
