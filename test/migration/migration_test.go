// Package migration holds the end-to-end tests of the migration controller: three real
// edge clusters (edge-a, edge-b, edge-c on a line, 2 km apart, 1.2 km coverage each), each
// with the real kube-scheduler, extender, webhook and descheduler, sharing one embedded
// ledger server. Scenarios share the fleet and use namespaces of their own.
package migration

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	edgemigratev1alpha1 "github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned/typed/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/inference"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/locator"
)

var shared fleettest.Shared

// Clients and their tokens, in every cluster's Secret.
var tokens = func() map[string]string {
	m := map[string]string{}
	for i := range 12 {
		m[fmt.Sprintf("car-%d", i)] = fmt.Sprintf("token-of-car-%d", i)
	}
	return m
}()

func TestMain(m *testing.M) {
	fleettest.Main(m, localfleet.Options{
		Clusters:     3,
		ClientTokens: tokens,
		Nodes: func(i int) []*corev1.Node {
			var nodes []*corev1.Node
			for j := range 2 {
				nodes = append(nodes, localclusterNode(i, j))
			}
			return nodes
		},
		DeschedulerArgs: []string{"--offload-after=1s", "--destination-ready-timeout=6s", "--migration-timeout=90s", "--resync-interval=2s"},
	}, &shared)
}

const timeout = 90 * time.Second

// scenario is one test's view of the fleet: its namespace (the same name in every cluster)
// and helpers.
type scenario struct {
	t     testing.TB
	ctx   context.Context
	f     *localfleet.Fleet
	ns    string
	migs  []edgemigratev1alpha1.EdgemigrateV1alpha1Interface
	edges map[string]*localfleet.Edge
}

func newScenario(t testing.TB) *scenario { return newScenarioOn(t, shared.Require(t)) }

func newScenarioOn(t testing.TB, f *localfleet.Fleet) *scenario {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	s := &scenario{t: t, ctx: ctx, f: f, ns: "mig-" + rand.String(6), edges: map[string]*localfleet.Edge{}}
	for _, e := range f.Edges {
		c, err := edgemigratev1alpha1.NewForConfig(e.Config)
		if err != nil {
			t.Fatal(err)
		}
		s.migs = append(s.migs, c)
		s.edges[e.ID] = e
	}
	if _, err := f.Edges[0].Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range f.Edges {
			// Deployments first, so no migration is triggered by their pods going away.
			_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), s.ns, metav1.DeleteOptions{})
		}
	})
	return s
}

func (s *scenario) edge(id string) *localfleet.Edge { return s.edges[id] }

// at returns the point metres north of edge-a's site, on the line of the sites.
func (s *scenario) at(metresNorth float64) geo.Point {
	return geo.North(s.f.Edges[0].Point(), metresNorth)
}

// drive reports the car's position to every cluster's locator.
func (s *scenario) drive(car string, p geo.Point) {
	s.t.Helper()
	if err := fleettest.Drive(s.ctx, s.f, car, tokens[car], p); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) waitFor(what string, cond func() (bool, error)) {
	s.t.Helper()
	err := wait.PollUntilContextTimeout(s.ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		s.t.Fatalf("waiting for %s: %v\n%s", what, err, s.state())
	}
}

func (s *scenario) state() string { return fleettest.State(context.Background(), s.f, s.ns) }

// running counts Running, not deleting pods with label app=name in a cluster.
func (s *scenario) running(e *localfleet.Edge, name string) int {
	pods, err := e.Client.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			n++
		}
	}
	return n
}

// runsOnlyIn waits until the service runs replicas copies in cluster id and none elsewhere.
func (s *scenario) runsOnlyIn(id, name string, replicas int) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%s running only in %s", name, id), func() (bool, error) {
		for _, e := range s.f.Edges {
			want := 0
			if e.ID == id {
				want = replicas
			}
			if s.running(e, name) != want {
				return false, nil
			}
		}
		return true, nil
	})
}

// migration waits for a source Migration of the workload in cluster id to reach phase.
func (s *scenario) migration(id, workload string, phase v1alpha1.MigrationPhase) *v1alpha1.Migration {
	s.t.Helper()
	var found *v1alpha1.Migration
	s.waitFor(fmt.Sprintf("a source migration of %s in %s in phase %s", workload, id, phase), func() (bool, error) {
		list, err := s.migs[s.index(id)].Migrations(s.ns).List(s.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			m := &list.Items[i]
			if m.Status.Role == v1alpha1.RoleSource && m.Spec.Workload.Name == workload && m.Status.Phase == phase &&
				(found == nil || !m.CreationTimestamp.Before(&found.CreationTimestamp)) {
				found = m
			}
		}
		return found != nil, nil
	})
	return found
}

func (s *scenario) index(id string) int {
	for i, e := range s.f.Edges {
		if e.ID == id {
			return i
		}
	}
	s.t.Fatalf("no cluster %s", id)
	return -1
}

// endpoint asks a cluster's locator where the car's service runs.
func (s *scenario) endpoint(from, car string) string {
	r, err := locator.NewClient(s.edge(from).LocatorURL, s.f.CarClient(10*time.Second, false)).Endpoint(s.ctx, car)
	if err != nil {
		return "error: " + err.Error()
	}
	return r.Cluster
}

func (s *scenario) locatorSays(from, car, want string) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("the locator of %s to send %s to %s", from, car, want), func() (bool, error) {
		return s.endpoint(from, car) == want, nil
	})
}

// service is an opted-in inference Deployment bound to a car.
func (s *scenario) service(name, car string, replicas int32, gpuMemory string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: map[string]string{
					api.AnnotationMigrate: "true", api.AnnotationGPUMemory: gpuMemory}},
				Spec: inferenceSpec(),
			},
		},
	}
	if car != "" {
		d.Spec.Template.Annotations[api.AnnotationClientID] = car
	}
	return d
}

// inferenceSpec is Pod Security restricted, as a destination hosts no other.
func inferenceSpec() corev1.PodSpec {
	spec := corev1.PodSpec{
		Containers: []corev1.Container{{Name: "infer", Image: "nvcr.io/nvidia/l4t-ml:r35.2.1-py3",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}}}},
	}
	inference.Restrict(&spec)
	return spec
}

func (s *scenario) create(id string, d *appsv1.Deployment) {
	s.t.Helper()
	if _, err := s.edge(id).Client.AppsV1().Deployments(s.ns).Create(s.ctx, d, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) deployment(id, name string) *appsv1.Deployment {
	d, err := s.edge(id).Client.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatalf("reading Deployment %s in %s: %v", name, id, err)
	}
	return d
}

// scaledAway checks that the source kept its Deployment at zero replicas, pointing at dest.
func (s *scenario) scaledAway(id, name, dest string) {
	s.t.Helper()
	d := s.deployment(id, name)
	if ptr.Deref(d.Spec.Replicas, 1) != 0 || d.Annotations[api.AnnotationMigratedTo] != dest {
		s.t.Errorf("%s: Deployment %s has %d replicas and %s=%q; want 0 and %q", id, name,
			ptr.Deref(d.Spec.Replicas, 1), api.AnnotationMigratedTo, d.Annotations[api.AnnotationMigratedTo], dest)
	}
}

// TestE2EMobility: the car drives out of edge-a's coverage into edge-b's; its service
// follows it, make-before-break, and the locators send it to edge-b. It drives back and the
// service returns to edge-a, reusing the Deployment edge-a kept at zero.
func TestE2EMobility(t *testing.T) {
	s := newScenario(t)
	s.drive("car-1", s.at(0))
	s.create("edge-a", s.service("detector", "car-1", 1, "4Gi"))
	s.runsOnlyIn("edge-a", "detector", 1)
	s.locatorSays("edge-a", "car-1", "edge-a")

	s.drive("car-1", s.at(1000)) // still within 1.2 km of edge-a: nothing moves
	s.drive("car-1", s.at(2000)) // at edge-b, 2 km from edge-a
	m := s.migration("edge-a", "detector", v1alpha1.PhaseCompleted)
	if m.Spec.Reason != v1alpha1.ReasonClientMobility || m.Status.Destination != "edge-b" {
		t.Errorf("migration %s: reason %s destination %s; want ClientMobility to edge-b", m.Name, m.Spec.Reason, m.Status.Destination)
	}
	s.runsOnlyIn("edge-b", "detector", 1)
	s.scaledAway("edge-a", "detector", "edge-b")
	s.locatorSays("edge-a", "car-1", "edge-b")
	s.locatorSays("edge-b", "car-1", "edge-b")
	s.checkRedirect("edge-a", "car-1", s.edge("edge-b").LocatorURL)

	s.drive("car-1", s.at(0))
	back := s.migration("edge-b", "detector", v1alpha1.PhaseCompleted)
	if back.Status.Destination != "edge-a" {
		t.Errorf("return migration went to %s, want edge-a", back.Status.Destination)
	}
	s.runsOnlyIn("edge-a", "detector", 1)
	s.scaledAway("edge-b", "detector", "edge-a")
	s.locatorSays("edge-a", "car-1", "edge-a")
}

func (s *scenario) checkRedirect(from, car, wantPrefix string) {
	s.t.Helper()
	client := s.f.CarClient(10*time.Second, true)
	resp, err := client.Get(s.edge(from).LocatorURL + "/v1/clients/" + car + "/redirect/infer?frame=7")
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, wantPrefix) || !strings.HasSuffix(loc, "/infer?frame=7") {
		s.t.Errorf("redirect from %s: %d to %q; want 307 to %s…/infer?frame=7", from, resp.StatusCode, loc, wantPrefix)
	}
}

// TestE2EOffload: edge-a's Jetsons are full, so a new opted-in service cannot be scheduled
// there; after --offload-after it runs in a neighbour instead, and edge-a keeps its
// Deployment at zero, saying where it went.
func TestE2EOffload(t *testing.T) {
	s := newScenario(t)
	// One 27 GiB model per 32 GiB Xavier fills every node of edge-a.
	filler := s.service("filler", "", 2, "26Gi")
	filler.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "filler"}}, TopologyKey: corev1.LabelHostname}}}}
	s.create("edge-a", filler)
	// Gone before the next test, which would otherwise find edge-a full while the namespace
	// terminates.
	t.Cleanup(func() {
		a := s.edge("edge-a")
		_ = a.Client.AppsV1().Deployments(s.ns).Delete(s.ctx, "filler", metav1.DeleteOptions{})
		s.waitFor("the filler gone from edge-a", func() (bool, error) {
			pods, err := a.Client.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{LabelSelector: "app=filler"})
			return err == nil && len(pods.Items) == 0, err
		})
	})
	s.waitFor("the filler on both nodes of edge-a", func() (bool, error) { return s.running(s.edge("edge-a"), "filler") == 2, nil })

	s.create("edge-a", s.service("segmenter", "", 1, "8Gi"))
	m := s.migration("edge-a", "segmenter", v1alpha1.PhaseCompleted)
	if m.Spec.Reason != v1alpha1.ReasonInsufficientResources {
		t.Errorf("reason %s, want InsufficientResources", m.Spec.Reason)
	}
	s.runsOnlyIn(m.Status.Destination, "segmenter", 1)
	s.scaledAway("edge-a", "segmenter", m.Status.Destination)
	if s.running(s.edge("edge-a"), "filler") != 2 {
		t.Errorf("the filler moved")
	}
}

// TestE2EDestinationFailure: edge-b wins the bid (ties go to the lower id) but its copy is
// never scheduled (its nodes are cordoned by a taint the bid does not see); after
// --destination-ready-timeout edge-b deletes it and reports failure, and the ledger picks
// edge-c. Then the car drives where nobody covers it: the migration fails with the reason
// and the service keeps running where it is.
func TestE2EDestinationFailure(t *testing.T) {
	s := newScenario(t)
	s.drive("car-2", s.at(0))
	s.create("edge-a", s.service("tracker", "car-2", 1, "4Gi"))
	s.runsOnlyIn("edge-a", "tracker", 1)

	b := s.edge("edge-b")
	nodes, err := b.Client.CoreV1().Nodes().List(s.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	taint := corev1.Taint{Key: "edgemigrate.io/test-maintenance", Effect: corev1.TaintEffectNoSchedule}
	for _, n := range nodes.Items {
		n.Spec.Taints = append(n.Spec.Taints, taint)
		if _, err := b.Client.CoreV1().Nodes().Update(s.ctx, &n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		nodes, _ := b.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		for _, n := range nodes.Items {
			var keep []corev1.Taint
			for _, tt := range n.Spec.Taints {
				if tt.Key != taint.Key {
					keep = append(keep, tt)
				}
			}
			n.Spec.Taints = keep
			_, _ = b.Client.CoreV1().Nodes().Update(context.Background(), &n, metav1.UpdateOptions{})
		}
	})

	s.drive("car-2", s.at(3000)) // 1 km from edge-b and from edge-c
	m := s.migration("edge-a", "tracker", v1alpha1.PhaseCompleted)
	if m.Status.Destination != "edge-c" || len(m.Status.Excluded) != 1 || m.Status.Excluded[0] != "edge-b" {
		t.Errorf("destination %s, excluded %v; want edge-c after edge-b failed", m.Status.Destination, m.Status.Excluded)
	}
	s.runsOnlyIn("edge-c", "tracker", 1)
	if _, err := b.Client.AppsV1().Deployments(s.ns).Get(s.ctx, "tracker", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("edge-b kept its failed copy: %v", err)
	}

	s.drive("car-2", s.at(12000)) // 8 km beyond edge-c: nobody covers it
	failed := s.migration("edge-c", "tracker", v1alpha1.PhaseFailed)
	if failed.Status.Reason != "NoDestination" || !strings.Contains(failed.Status.Message, "cover the client") {
		t.Errorf("failed migration: reason %s message %q", failed.Status.Reason, failed.Status.Message)
	}
	s.runsOnlyIn("edge-c", "tracker", 1)
	s.waitFor("a MigrationFailed event on the service's pod", func() (bool, error) {
		evs, err := s.edge("edge-c").Client.CoreV1().Events(s.ns).List(s.ctx, metav1.ListOptions{FieldSelector: "reason=MigrationFailed,involvedObject.kind=Pod"})
		return err == nil && len(evs.Items) > 0, err
	})
}

// TestE2EPodDisruptionBudget: a bare pod protected by a PodDisruptionBudget moves only when
// the budget allows; until then both copies run, the client is sent to the destination and
// the Migration says what it waits for.
func TestE2EPodDisruptionBudget(t *testing.T) {
	s := newScenario(t)
	a := s.edge("edge-a")
	s.drive("car-3", s.at(0))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "planner", Namespace: s.ns, Labels: map[string]string{"app": "planner"},
			Annotations: map[string]string{api.AnnotationMigrate: "true", api.AnnotationGPUMemory: "2Gi", api.AnnotationClientID: "car-3"}},
		Spec: inferenceSpec(),
	}
	if _, err := a.Client.CoreV1().Pods(s.ns).Create(s.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "planner", Namespace: s.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "planner"}}}}
	if _, err := a.Client.PolicyV1().PodDisruptionBudgets(s.ns).Create(s.ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.runsOnlyIn("edge-a", "planner", 1)
	s.waitFor("the budget to be computed", func() (bool, error) {
		p, err := a.Client.PolicyV1().PodDisruptionBudgets(s.ns).Get(s.ctx, "planner", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 1, err
	})

	s.drive("car-3", s.at(2000))
	blocked := s.migration("edge-a", "planner", v1alpha1.PhaseReady)
	s.waitFor("the Migration to say the budget blocks the eviction", func() (bool, error) {
		m, err := s.migs[0].Migrations(s.ns).Get(s.ctx, blocked.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range m.Status.Conditions {
			if c.Type == "SourceRemoved" && c.Reason == "EvictionBlocked" {
				return true, nil
			}
		}
		return false, nil
	})
	if s.running(a, "planner") != 1 || s.running(s.edge("edge-b"), "planner") != 1 {
		t.Fatalf("while blocked, want one copy in each cluster:\n%s", s.state())
	}
	s.locatorSays("edge-a", "car-3", "edge-b")

	if err := a.Client.PolicyV1().PodDisruptionBudgets(s.ns).Delete(s.ctx, "planner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.migration("edge-a", "planner", v1alpha1.PhaseCompleted)
	s.runsOnlyIn("edge-b", "planner", 1)
}

// TestE2ECrash kills a descheduler with SIGKILL as soon as a migration reaches each phase,
// restarts it, and checks that the migration still ends with exactly one running copy.
func TestE2ECrash(t *testing.T) {
	for i, tc := range []struct {
		kill  string // which cluster's descheduler
		role  v1alpha1.MigrationRole
		phase v1alpha1.MigrationPhase
	}{
		{"edge-a", v1alpha1.RoleSource, v1alpha1.PhaseProposed},
		{"edge-a", v1alpha1.RoleSource, v1alpha1.PhaseDecided},
		{"edge-a", v1alpha1.RoleSource, v1alpha1.PhaseReady},
		{"edge-b", v1alpha1.RoleDestination, v1alpha1.PhaseCreating},
		{"edge-b", v1alpha1.RoleDestination, v1alpha1.PhaseReady},
	} {
		t.Run(tc.kill+"-"+string(tc.role)+"-"+string(tc.phase), func(t *testing.T) {
			s := newScenario(t)
			car := fmt.Sprintf("car-%d", 5+i)
			name := "crash"
			s.drive(car, s.at(0))
			s.create("edge-a", s.service(name, car, 1, "2Gi"))
			s.runsOnlyIn("edge-a", name, 1)

			// Watch rather than poll: a phase may last only milliseconds.
			w, err := s.migs[s.index(tc.kill)].Migrations(s.ns).Watch(s.ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			s.drive(car, s.at(2000))
			victim := s.edge(tc.kill)
			deadline := time.After(timeout)
		watching:
			for {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						t.Fatalf("watch ended before a %s migration in %s reached %s\n%s", tc.role, tc.kill, tc.phase, s.state())
					}
					if m, isMig := ev.Object.(*v1alpha1.Migration); isMig && m.Status.Role == tc.role && m.Status.Phase == tc.phase {
						break watching
					}
				case <-deadline:
					t.Fatalf("no %s migration in %s reached %s\n%s", tc.role, tc.kill, tc.phase, s.state())
				}
			}
			victim.KillDescheduler()
			if err := victim.StartDescheduler(s.ctx); err != nil {
				t.Fatal(err)
			}
			s.migration("edge-a", name, v1alpha1.PhaseCompleted)
			s.runsOnlyIn("edge-b", name, 1)
			s.scaledAway("edge-a", name, "edge-b")
		})
	}
}

func localclusterNode(i, j int) *corev1.Node {
	return localcluster.JetsonNode(fmt.Sprintf("xavier-%d-%d", i, j), localcluster.AGXXavier, localcluster.NodeOptions{})
}

// TestE2EManual: a user asks for a migration with kubectl-style YAML; the ledger picks the
// destination, and `kubectl get mig` shows it with its printer columns.
func TestE2EManual(t *testing.T) {
	s := newScenario(t)
	s.create("edge-a", s.service("batch", "", 2, "2Gi"))
	s.runsOnlyIn("edge-a", "batch", 2)
	m := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: "move-batch", Namespace: s.ns},
		Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindDeployment, Name: "batch"}, Reason: v1alpha1.ReasonManual}}
	if _, err := s.migs[0].Migrations(m.Namespace).Create(s.ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := s.migration("edge-a", "batch", v1alpha1.PhaseCompleted)
	if done.Status.Destination == "" || done.Status.Destination == "edge-a" || done.Status.Replicas != 2 {
		t.Fatalf("destination %q replicas %d", done.Status.Destination, done.Status.Replicas)
	}
	s.runsOnlyIn(done.Status.Destination, "batch", 2)

	bin, err := localcluster.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(s.ctx, filepath.Join(bin, "kubectl"), "--kubeconfig", s.edge("edge-a").Kubeconfig, "get", "mig", "-n", s.ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get mig: %v\n%s", err, out)
	}
	for _, want := range []string{"ROLE", "PHASE", "REASON", "DESTINATION", "AGE", "move-batch", "Source", "Completed", "Manual", done.Status.Destination} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl get mig lacks %q:\n%s", want, out)
		}
	}

	// A Migration that names no workload of this cluster fails with the reason.
	ghost := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: "move-ghost", Namespace: s.ns},
		Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindPod, Name: "ghost"}, Reason: v1alpha1.ReasonManual}}
	if _, err := s.migs[0].Migrations(ghost.Namespace).Create(s.ctx, ghost, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	failed := s.migration("edge-a", "ghost", v1alpha1.PhaseFailed)
	if failed.Status.Reason != "WorkloadNotFound" {
		t.Errorf("ghost migration: reason %s message %q", failed.Status.Reason, failed.Status.Message)
	}
	// The API server refuses Migrations the schema rejects, naming what is wrong.
	for _, tc := range []struct {
		spec v1alpha1.MigrationSpec
		want string
	}{
		{v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: "StatefulSet", Name: "x"}, Reason: v1alpha1.ReasonManual}, "StatefulSet"},
		{v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindPod, Name: "x"}, Reason: v1alpha1.ReasonClientMobility}, "clientLocation"},
		{v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindPod, Name: "x"}, Reason: "Because"}, "Because"},
	} {
		bad := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-", Namespace: s.ns}, Spec: tc.spec}
		if _, err := s.migs[0].Migrations(bad.Namespace).Create(s.ctx, bad, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("creating an invalid Migration %+v: %v; want an error naming %q", tc.spec, err, tc.want)
		}
	}
}

// TestE2EDryRun: with --dry-run the descheduler records what it would do and moves nothing:
// the Migration stays Pending with reason DryRun, nothing reaches the ledger, and the
// service keeps running where it is.
func TestE2EDryRun(t *testing.T) {
	shared.Require(t) // skips as the other scenarios do
	f := fleettest.Start(t, localfleet.Options{Clusters: 2, ClientTokens: tokens,
		Nodes:           func(i int) []*corev1.Node { return []*corev1.Node{localclusterNode(i, 0)} },
		DeschedulerArgs: []string{"--dry-run", "--resync-interval=2s"}})
	s := newScenarioOn(t, f)
	s.drive("car-1", s.at(0))
	s.create("edge-a", s.service("detector", "car-1", 1, "4Gi"))
	s.runsOnlyIn("edge-a", "detector", 1)
	s.drive("car-1", s.at(2000))
	m := s.migration("edge-a", "detector", v1alpha1.PhasePending)
	s.waitFor("the Migration to say it is a dry run", func() (bool, error) {
		got, err := s.migs[0].Migrations(s.ns).Get(s.ctx, m.Name, metav1.GetOptions{})
		return err == nil && got.Status.Reason == "DryRun", err
	})
	l, err := f.Ledger(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open, err := l.ListOpenMigrations(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 0 {
		t.Errorf("a dry run proposed %d migrations to the ledger", len(open))
	}
	s.runsOnlyIn("edge-a", "detector", 1)
}
