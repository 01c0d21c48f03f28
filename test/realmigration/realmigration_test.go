package realmigration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	edgemigratev1alpha1 "github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned/typed/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

const (
	waitTimeout = 3 * time.Minute
	name        = "detector"
)

// scenario is the test's view of the fleet: its namespace (the same in both clusters).
type scenario struct {
	t   *testing.T
	ctx context.Context
	f   *localfleet.Fleet
	ns  string
}

func newScenario(t *testing.T) *scenario {
	f := shared.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	s := &scenario{t: t, ctx: ctx, f: f, ns: "realmig-" + rand.String(6)}
	if _, err := f.Edges[0].Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range f.Edges {
			_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), s.ns, metav1.DeleteOptions{})
		}
	})
	return s
}

// testServiceImage is the test service's reference in the OCI layout the clusters'
// registries serve.
func testServiceImage(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(localcluster.ImagesDirEnv)
	if dir == "" {
		bin, err := localcluster.FindBinDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(bin, "images")
	}
	built, err := images.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range built {
		if strings.HasPrefix(b.Ref, images.Registry+"/"+images.TestService+":") {
			return b.Ref
		}
	}
	t.Fatalf("no %s image in %s", images.TestService, dir)
	return ""
}

// service is the car's opted-in Deployment of the real test service, pinned to real
// nodes: the destination's copy is made from this manifest, placement included.
func (s *scenario) service(image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					api.AnnotationMigrate: "true", api.AnnotationGPUMemory: "1Gi", api.AnnotationClientID: car}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "main", Image: image,
					Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
				}}},
			},
		},
	}
	d.Spec.Template.Spec.NodeSelector, d.Spec.Template.Spec.Tolerations = localcluster.RealNodePlacement()
	return d
}

func (s *scenario) waitFor(what string, cond func() (bool, error)) {
	s.t.Helper()
	err := wait.PollUntilContextTimeout(s.ctx, 200*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		s.t.Fatalf("waiting for %s: %v\n%s", what, err, s.state())
	}
}

func (s *scenario) state() string { return fleettest.State(context.Background(), s.f, s.ns) }

func (s *scenario) migrations(e *localfleet.Edge) edgemigratev1alpha1.MigrationInterface {
	c, err := edgemigratev1alpha1.NewForConfig(e.Config)
	if err != nil {
		s.t.Fatal(err)
	}
	return c.Migrations(s.ns)
}

// drive reports the car at edge to's site to both clusters' locators.
func (s *scenario) drive(to *localfleet.Edge) {
	s.t.Helper()
	if err := fleettest.Drive(s.ctx, s.f, car, carToken, to.Point()); err != nil {
		s.t.Fatal(err)
	}
}

// completed waits for a Completed source Migration of the service at e, newer than after.
func (s *scenario) completed(e *localfleet.Edge, after time.Time) *v1alpha1.Migration {
	s.t.Helper()
	var found *v1alpha1.Migration
	s.waitFor("a Completed source migration at "+e.ID, func() (bool, error) {
		list, err := s.migrations(e).List(s.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			m := &list.Items[i]
			if m.Status.Role == v1alpha1.RoleSource && m.Spec.Workload.Name == name && m.Status.Phase == v1alpha1.PhaseCompleted &&
				!m.CreationTimestamp.Time.Before(after.Truncate(time.Second)) {
				found = m
			}
		}
		return found != nil, nil
	})
	return found
}

// pods lists the service's pods at e, deleting ones included.
func (s *scenario) pods(e *localfleet.Edge) []corev1.Pod {
	s.t.Helper()
	list, err := e.Client.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		s.t.Fatal(err)
	}
	return list.Items
}

// runningOnRealNode waits until e runs exactly one Ready pod of the service, on its real
// node, its container started once and answering from the host at the pod's IP.
func (s *scenario) runningOnRealNode(e *localfleet.Edge) corev1.Pod {
	s.t.Helper()
	node := e.Cluster.RealNodes()[0]
	var pod corev1.Pod
	s.waitFor(name+" Ready on the real node of "+e.ID, func() (bool, error) {
		pods := s.pods(e)
		if len(pods) != 1 || pods[0].DeletionTimestamp != nil || !podReady(&pods[0]) {
			return false, nil
		}
		pod = pods[0]
		return true, nil
	})
	if pod.Spec.NodeName != node.Name {
		s.t.Errorf("%s: pod %s on %s, want the real node %s", e.ID, pod.Name, pod.Spec.NodeName, node.Name)
	}
	if len(pod.Status.ContainerStatuses) != 1 {
		s.t.Fatalf("%s: pod %s has %d container statuses", e.ID, pod.Name, len(pod.Status.ContainerStatuses))
	}
	cs := pod.Status.ContainerStatuses[0]
	if !ptr.Deref(cs.Started, false) || !cs.Ready || cs.State.Running == nil || cs.RestartCount != 0 || !strings.HasPrefix(cs.ContainerID, "containerd://") {
		status, _ := json.Marshal(cs)
		s.t.Errorf("%s: container of %s: %s; want started, ready, running in containerd, never restarted", e.ID, pod.Name, status)
	}
	if got, err := answer(pod.Status.PodIP); err != nil || got != pod.Name {
		s.t.Errorf("%s: GET / at pod IP %s: pod %q, %v; want %s's answer", e.ID, pod.Status.PodIP, got, err, pod.Name)
	}
	// The container and its sandbox, seen by the host: one process each.
	for _, command := range []string{images.TestService, images.Pause} {
		if n := processes(node, command); n != 1 {
			s.t.Errorf("%s: %d %s processes on the real node, want 1", e.ID, n, command)
		}
	}
	return pod
}

// stopped waits until e has no pod of the service left and its real node runs neither its
// container's process nor its sandbox's, then checks that the old pod's address no longer
// answers and the Deployment is kept at zero.
func (s *scenario) stopped(e *localfleet.Edge, old corev1.Pod) {
	s.t.Helper()
	node := e.Cluster.RealNodes()[0]
	s.waitFor("no pod of "+name+" left at "+e.ID, func() (bool, error) {
		return len(s.pods(e)) == 0 && processes(node, images.TestService) == 0 && processes(node, images.Pause) == 0, nil
	})
	if got, err := answer(old.Status.PodIP); err == nil {
		s.t.Errorf("%s: the old pod's address %s still answers (pod %q)", e.ID, old.Status.PodIP, got)
	}
	d, err := e.Client.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatalf("%s kept no Deployment: %v", e.ID, err)
	}
	if ptr.Deref(d.Spec.Replicas, 1) != 0 || d.Annotations[api.AnnotationMigratedTo] == "" {
		s.t.Errorf("%s: Deployment has %d replicas and %s=%q; want it kept at 0, saying where it went", e.ID,
			ptr.Deref(d.Spec.Replicas, 1), api.AnnotationMigratedTo, d.Annotations[api.AnnotationMigratedTo])
	}
}

// report logs the migration's durations from its own timestamps (whole seconds) and the
// time from the car's report to the test seeing it Completed.
func report(t *testing.T, m *v1alpha1.Migration, trigger time.Time) {
	t.Helper()
	t.Logf("migration %s: the car's report → Completed seen by the test %s", m.Name, time.Since(trigger).Round(time.Millisecond))
	start := m.Status.StartTime
	if start == nil || m.Status.ReadyTime == nil || m.Status.CompletionTime == nil {
		t.Errorf("migration %s lacks timestamps: %+v", m.Name, m.Status)
		return
	}
	t.Logf("migration %s %s→%s on real nodes: trigger→destination Ready %s, →source removed %s", m.Name,
		m.Spec.Workload.Name, m.Status.Destination, m.Status.ReadyTime.Sub(start.Time), m.Status.CompletionTime.Sub(start.Time))
}

// TestE2ERealNodeMobility: the car drives from edge-a's coverage into edge-b's; its
// service, a real container on edge-a's real node, follows it: at edge-b a container is
// really started (pulled from edge-b's registry) and answers, then edge-a's is really
// stopped. The car drives back and edge-a's kept Deployment runs again, from the image its
// node already holds.
func TestE2ERealNodeMobility(t *testing.T) {
	s := newScenario(t)
	a, b := s.f.Edges[0], s.f.Edges[1]
	image := testServiceImage(t)

	s.drive(a)
	if _, err := a.Client.AppsV1().Deployments(s.ns).Create(s.ctx, s.service(image), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	atA := s.runningOnRealNode(a)
	pullsB := b.Cluster.Registry().BlobPulls(images.TestService)

	trigger := time.Now()
	s.drive(b)
	m := s.completed(a, trigger)
	if m.Spec.Reason != v1alpha1.ReasonClientMobility || m.Status.Destination != b.ID {
		t.Errorf("migration %s: reason %s destination %s; want ClientMobility to %s", m.Name, m.Spec.Reason, m.Status.Destination, b.ID)
	}
	report(t, m, trigger)
	atB := s.runningOnRealNode(b)
	s.stopped(a, atA)
	if got := b.Cluster.Registry().BlobPulls(images.TestService); got <= pullsB {
		t.Errorf("%s's registry served %d blobs of %s, %d before the migration: the destination's node pulled nothing", b.ID, got, images.TestService, pullsB)
	}

	if t.Failed() {
		return
	}
	pullsA := a.Cluster.Registry().BlobPulls(images.TestService)
	trigger = time.Now()
	s.drive(a)
	back := s.completed(b, trigger)
	if back.Status.Destination != a.ID {
		t.Errorf("return migration went to %s, want %s", back.Status.Destination, a.ID)
	}
	report(t, back, trigger)
	s.runningOnRealNode(a)
	s.stopped(b, atB)
	if d, err := a.Client.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{}); err != nil || ptr.Deref(d.Spec.Replicas, 0) != 1 {
		t.Errorf("%s's kept Deployment was not scaled back to 1: %v", a.ID, err)
	}
	// The image is still on edge-a's node (a tag other than latest: pulled if not present).
	if got := a.Cluster.Registry().BlobPulls(images.TestService); got != pullsA {
		t.Errorf("%s's registry served %d blobs of %s, %d before the return: the node's image was not reused", a.ID, got, images.TestService, pullsA)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// answer is the pod name the test service at ip says it runs in.
func answer(ip string) (string, error) {
	if ip == "" {
		return "", fmt.Errorf("no pod IP")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ip + ":8080/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	var got struct{ Pod string }
	if err := json.Unmarshal(body, &got); err != nil {
		return "", fmt.Errorf("answer %q: %w", body, err)
	}
	return got.Pod, nil
}

// processes counts the node's processes running command (a binary of `make images`).
func processes(n *localcluster.RealNode, command string) int {
	return len(slices.DeleteFunc(n.Processes(), func(pid int) bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return err != nil || strings.TrimSpace(string(comm)) != command
	}))
}
