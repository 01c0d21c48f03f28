package migration

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
)

// TestE2EOneMigrationPerWorkload: two Manual Migrations of one Deployment, created back to
// back on real API servers: the second ends Failed (AlreadyMigrating, naming the first),
// the first moves the service, and one destination in the fleet runs it.
func TestE2EOneMigrationPerWorkload(t *testing.T) {
	s := newScenario(t)
	s.create("edge-a", s.service("twice", "", 1, "2Gi"))
	s.runsOnlyIn("edge-a", "twice", 1)
	for _, name := range []string{"move-1", "move-2"} {
		m := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
			Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindDeployment, Name: "twice"}, Reason: v1alpha1.ReasonManual}}
		if _, err := s.migs[0].Migrations(s.ns).Create(s.ctx, m, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	failed := s.migration("edge-a", "twice", v1alpha1.PhaseFailed)
	if failed.Name != "move-2" || failed.Status.Reason != api.ReasonAlreadyMigrating || !strings.Contains(failed.Status.Message, "move-1") {
		t.Errorf("failed %s: %s %q; want move-2, AlreadyMigrating, naming move-1", failed.Name, failed.Status.Reason, failed.Status.Message)
	}
	done := s.migration("edge-a", "twice", v1alpha1.PhaseCompleted)
	if done.Name != "move-1" {
		t.Errorf("completed %s, want move-1", done.Name)
	}
	s.runsOnlyIn(done.Status.Destination, "twice", 1)
	destinations := 0
	for i := range s.f.Edges {
		list, err := s.migs[i].Migrations(s.ns).List(s.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range list.Items {
			if m.Status.Role == v1alpha1.RoleDestination {
				destinations++
			}
		}
	}
	if destinations != 1 {
		t.Errorf("%d destination Migrations in the fleet, want 1\n%s", destinations, s.state())
	}
}

// TestE2EParkedScaleUp: a parked Deployment scaled up through the scale subresource (as
// kubectl scale or an HPA-less GitOps sync would) is scaled back to zero by the real
// descheduler, with a Warning Event that says where the service runs.
func TestE2EParkedScaleUp(t *testing.T) {
	s := newScenario(t)
	s.create("edge-a", s.service("parked", "", 1, "2Gi"))
	s.runsOnlyIn("edge-a", "parked", 1)
	m := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: "move-parked", Namespace: s.ns},
		Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindDeployment, Name: "parked"}, Reason: v1alpha1.ReasonManual}}
	if _, err := s.migs[0].Migrations(s.ns).Create(s.ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dest := s.migration("edge-a", "parked", v1alpha1.PhaseCompleted).Status.Destination
	s.runsOnlyIn(dest, "parked", 1)
	s.scaledAway("edge-a", "parked", dest)

	deployments := s.edge("edge-a").Client.AppsV1().Deployments(s.ns)
	if _, err := deployments.UpdateScale(s.ctx, "parked", &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "parked", Namespace: s.ns},
		Spec: autoscalingv1.ScaleSpec{Replicas: 2}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the parked Deployment back at zero", func() (bool, error) {
		d, err := deployments.Get(s.ctx, "parked", metav1.GetOptions{})
		return err == nil && ptr.Deref(d.Spec.Replicas, 1) == 0, err
	})
	s.scaledAway("edge-a", "parked", dest)
	s.runsOnlyIn(dest, "parked", 1)
	s.waitFor("a ParkedScaleUp Event on the Deployment", func() (bool, error) {
		evs, err := s.edge("edge-a").Client.CoreV1().Events(s.ns).List(s.ctx, metav1.ListOptions{
			FieldSelector: "reason=" + api.EventParkedScaleUp + ",involvedObject.kind=Deployment,involvedObject.name=parked"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Type == "Warning" && strings.Contains(e.Message, "the service runs in "+dest) {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestE2EDeadDestination: the destination's descheduler dies after a completed migration
// (SIGKILL; its API server and pods stay, as in a partition). Once it is silent for the
// ledger's dead-after window (the default, 2 min, plus the 30 s skew) a live member marks
// it dead and the source scales its parked copy back up. When the dead cluster's
// descheduler comes back it stands its copy down before it is ready: the service runs in
// the source only.
func TestE2EDeadDestination(t *testing.T) {
	s := newScenario(t)
	s.create("edge-a", s.service("homed", "", 1, "2Gi"))
	s.runsOnlyIn("edge-a", "homed", 1)
	m := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: "move-homed", Namespace: s.ns},
		Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindDeployment, Name: "homed"}, Reason: v1alpha1.ReasonManual}}
	if _, err := s.migs[0].Migrations(s.ns).Create(s.ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := s.migration("edge-a", "homed", v1alpha1.PhaseCompleted)
	dest := s.edge(done.Status.Destination)
	s.runsOnlyIn(dest.ID, "homed", 1)
	l, err := s.f.Ledger(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lm, err := l.GetMigration(s.ctx, done.Status.LedgerID)
	if err != nil {
		t.Fatal(err)
	}
	origin := lm.Metadata.Origin

	dest.KillDescheduler()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = dest.StartDescheduler(context.Background())
		}
	})
	deadline := chaincode.DefaultDeadAfter + chaincode.MaxClockSkew + time.Minute
	err = wait.PollUntilContextTimeout(s.ctx, time.Second, deadline, true, func(ctx context.Context) (bool, error) {
		h, err := l.GetHome(ctx, origin)
		if err != nil {
			return false, err
		}
		return h.Cluster == "edge-a" && s.running(s.edge("edge-a"), "homed") == 1, nil
	})
	if err != nil {
		t.Fatalf("edge-a never took the service back from dead %s: %v\n%s", dest.ID, err, s.state())
	}
	if cl, err := l.GetCluster(s.ctx, dest.ID); err != nil || !cl.Dead {
		t.Errorf("%s on the ledger: %+v, %v; want dead", dest.ID, cl, err)
	}
	// What a partition can cause: the dead cluster's copy runs on, unseen, until it is back.
	if n := s.running(dest, "homed"); n != 1 {
		t.Logf("%s runs %d copies while dead", dest.ID, n)
	}

	if err := dest.StartDescheduler(s.ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// Ready means registered and afterRegister done: the copy is stood down already.
	if d := s.deployment(dest.ID, "homed"); ptr.Deref(d.Spec.Replicas, 1) != 0 || d.Annotations[api.AnnotationMigratedTo] != "edge-a" {
		t.Errorf("%s came back with %d replicas, migrated-to %q; want 0 and edge-a", dest.ID, ptr.Deref(d.Spec.Replicas, 1), d.Annotations[api.AnnotationMigratedTo])
	}
	s.runsOnlyIn("edge-a", "homed", 1)
	if cl, err := l.GetCluster(s.ctx, dest.ID); err != nil || cl.Dead {
		t.Errorf("%s on the ledger after it came back: %+v, %v; want live", dest.ID, cl, err)
	}
	s.waitFor("a Superseded Event at "+dest.ID, func() (bool, error) {
		evs, err := dest.Client.CoreV1().Events(s.ns).List(s.ctx, metav1.ListOptions{FieldSelector: "reason=" + api.EventSuperseded})
		return err == nil && len(evs.Items) > 0, err
	})
}
