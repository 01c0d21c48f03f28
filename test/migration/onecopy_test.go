package migration

import (
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
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
