package realmigration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	edgemigratev1alpha1 "github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned/typed/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/inference"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

// waitTimeout bounds every wait: generous, the machine may be loaded; nothing is timed.
const waitTimeout = 3 * time.Minute

// scenario is one test's view of the fleet: its namespace (the same in both clusters), the
// serving intervals of its pods, and the car it drives.
type scenario struct {
	t   testing.TB
	ctx context.Context
	f   *localfleet.Fleet
	ns  string
	// ready records the namespace's pods' serving intervals (scenario.watch).
	ready *fleettest.Readiness
	// driver is the test's car, once started (scenario.startCar).
	driver *driver
}

func newScenario(t testing.TB) *scenario {
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
		// The next test finds the real nodes' resources (the one GPU) free again.
		for _, e := range f.Edges {
			_ = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				pods, err := e.Client.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{})
				return err == nil && len(pods.Items) == 0, nil
			})
		}
	})
	ready, err := fleettest.WatchReadiness(ctx, f, s.ns, "")
	if err != nil {
		t.Fatal(err)
	}
	s.ready = ready
	return s
}

// onRealNodes pins a Deployment to real nodes; the destination's copy is made from this
// manifest, placement included.
func onRealNodes(d *appsv1.Deployment) *appsv1.Deployment {
	d.Spec.Template.Spec.NodeSelector, d.Spec.Template.Spec.Tolerations = localcluster.RealNodePlacement()
	return d
}

// service is client's Deployment of repository's image on real nodes: the manifest of the
// inference services, which the test service shares, args appended to its command line.
// Without a client, it serves none (and so never follows a car).
func (s *scenario) service(repository, name, client string, args ...string) *appsv1.Deployment {
	d := inference.Deployment(name, s.ns, fleettest.Image(s.t, repository), client)
	if client == "" {
		delete(d.Spec.Template.Annotations, api.AnnotationClientID)
	}
	c := &d.Spec.Template.Spec.Containers[0]
	c.Args = append(c.Args, args...)
	return onRealNodes(d)
}

func (s *scenario) create(e *localfleet.Edge, d *appsv1.Deployment) {
	s.t.Helper()
	if _, err := e.Client.AppsV1().Deployments(s.ns).Create(s.ctx, d, metav1.CreateOptions{}); err != nil {
		s.t.Fatalf("creating Deployment %s in %s: %v", d.Name, e.ID, err)
	}
}

func (s *scenario) waitFor(what string, cond func() (bool, error)) {
	s.t.Helper()
	err := wait.PollUntilContextTimeout(s.ctx, 200*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		s.t.Fatalf("waiting for %s: %v\n%s", what, err, s.state())
	}
}

// state describes the fleet's migrations and pods, the pods' serving intervals and the
// car's figures, for a failure's message.
func (s *scenario) state() string {
	out := fleettest.State(context.Background(), s.f, s.ns) + s.ready.String()
	if s.driver != nil {
		out += s.driver.String()
	}
	return out
}

func (s *scenario) migrations(e *localfleet.Edge) edgemigratev1alpha1.MigrationInterface {
	c, err := edgemigratev1alpha1.NewForConfig(e.Config)
	if err != nil {
		s.t.Fatal(err)
	}
	return c.Migrations(s.ns)
}

// migration waits for a Migration of workload at e with role and phase, created at or
// after after (to the second, as its timestamp).
func (s *scenario) migration(e *localfleet.Edge, workload string, role v1alpha1.MigrationRole, phase v1alpha1.MigrationPhase, after time.Time) *v1alpha1.Migration {
	s.t.Helper()
	var found *v1alpha1.Migration
	s.waitFor(fmt.Sprintf("a %s %s migration of %s at %s", phase, role, workload, e.ID), func() (bool, error) {
		list, err := s.migrations(e).List(s.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			m := &list.Items[i]
			if m.Status.Role == role && m.Spec.Workload.Name == workload && m.Status.Phase == phase &&
				!m.CreationTimestamp.Time.Before(after.Truncate(time.Second)) {
				found = m
			}
		}
		return found != nil, nil
	})
	return found
}

// completed waits for a Completed source migration of workload at e, newer than after.
func (s *scenario) completed(e *localfleet.Edge, workload string, after time.Time) *v1alpha1.Migration {
	s.t.Helper()
	return s.migration(e, workload, v1alpha1.RoleSource, v1alpha1.PhaseCompleted, after)
}

// pods lists the workload's pods at e, deleting ones included.
func (s *scenario) pods(e *localfleet.Edge, name string) []corev1.Pod {
	s.t.Helper()
	list, err := e.Client.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		s.t.Fatal(err)
	}
	return list.Items
}

// runningOnRealNode waits until e runs exactly one Ready pod of the workload, on its real
// node, its container started once and answering its probe from the host at the pod's
// IP, and the node running one process of command (the image's binary) and one sandbox.
func (s *scenario) runningOnRealNode(e *localfleet.Edge, name, command string) corev1.Pod {
	s.t.Helper()
	node := e.Cluster.RealNodes()[0]
	var pod corev1.Pod
	s.waitFor(name+" Ready on the real node of "+e.ID, func() (bool, error) {
		pods := s.pods(e, name)
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
	if _, err := get(pod.Status.PodIP, "/readyz"); err != nil {
		s.t.Errorf("%s: pod %s at %s: %v", e.ID, pod.Name, pod.Status.PodIP, err)
	}
	// The container and its sandbox, seen by the host: one process each.
	for _, c := range []string{command, images.Pause} {
		if n := processes(node, pod, c); n != 1 {
			s.t.Errorf("%s: %d %s processes of pod %s on the real node, want 1", e.ID, n, c, pod.Name)
		}
	}
	return pod
}

// stopped waits until e has no pod of the workload left and its real node runs neither
// its container's process (command) nor a sandbox, then checks that the old pod's address
// no longer answers and the Deployment is kept at zero, saying where it went.
func (s *scenario) stopped(e *localfleet.Edge, name, command string, old corev1.Pod) {
	s.t.Helper()
	node := e.Cluster.RealNodes()[0]
	s.waitFor("no pod of "+name+" left at "+e.ID, func() (bool, error) {
		return len(s.pods(e, name)) == 0 && processes(node, old, command) == 0 && processes(node, old, images.Pause) == 0, nil
	})
	if _, err := get(old.Status.PodIP, "/readyz"); err == nil {
		s.t.Errorf("%s: the old pod's address %s still answers", e.ID, old.Status.PodIP)
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
// time from the car's move to the test seeing it Completed.
func report(t testing.TB, m *v1alpha1.Migration, trigger time.Time) {
	t.Helper()
	t.Logf("migration %s: the car's move → Completed seen by the test %s", m.Name, time.Since(trigger).Round(time.Millisecond))
	start := m.Status.StartTime
	if start == nil || m.Status.ReadyTime == nil || m.Status.CompletionTime == nil {
		t.Errorf("migration %s lacks timestamps: %+v", m.Name, m.Status)
		return
	}
	t.Logf("migration %s %s→%s on real nodes: trigger→destination Ready %s, →source removed %s (whole seconds)", m.Name,
		m.Spec.Workload.Name, m.Status.Destination, m.Status.ReadyTime.Sub(start.Time), m.Status.CompletionTime.Sub(start.Time))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// get asks a pod directly, from the host, bypassing every gateway: GET path at ip:8080.
func get(ip, path string) ([]byte, error) {
	if ip == "" {
		return nil, fmt.Errorf("no pod IP")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ip + ":8080" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s at %s: reading the answer: %w", path, ip, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s at %s: %s: %s", path, ip, resp.Status, body)
	}
	return body, nil
}

// processes counts the node's processes of pod (its cgroup path names the pod's UID)
// running command (a binary of `make images`): other tests' pods may still be stopping.
func processes(n *localcluster.RealNode, pod corev1.Pod, command string) int {
	return len(slices.DeleteFunc(n.Processes(), func(pid int) bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != command {
			return true
		}
		cgroup, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		return err != nil || !strings.Contains(string(cgroup), "pod"+string(pod.UID))
	}))
}

// moment is the first time, on the test's clock, a watch saw something.
type moment struct {
	once sync.Once
	at   time.Time
	seen chan struct{}
}

func (m *moment) mark() { m.once.Do(func() { m.at = time.Now(); close(m.seen) }) }

// when waits until the moment has come and returns it.
func (s *scenario) when(what string, m *moment) time.Time {
	s.t.Helper()
	select {
	case <-m.seen:
		return m.at
	case <-time.After(waitTimeout):
		s.t.Fatalf("waiting for %s: not seen in %s\n%s", what, waitTimeout, s.state())
	case <-s.ctx.Done():
		s.t.Fatalf("waiting for %s: %v\n%s", what, s.ctx.Err(), s.state())
	}
	return time.Time{}
}

// watchFirst returns the moment a watch of e's namespace (one resource's informer of
// factory) first sees an object satisfying cond, added or updated.
func watchFirst[T any](s *scenario, e *localfleet.Edge, informer func(informers.SharedInformerFactory) cache.SharedIndexInformer, cond func(T) bool) *moment {
	s.t.Helper()
	m := &moment{seen: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(e.Client, 0, informers.WithNamespace(s.ns))
	inf := informer(factory)
	check := func(obj any) {
		if o, ok := obj.(T); ok && cond(o) {
			m.mark()
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: check, UpdateFunc: func(_, obj any) { check(obj) }}); err != nil {
		s.t.Fatal(err)
	}
	factory.Start(s.ctx.Done())
	if !cache.WaitForCacheSync(s.ctx.Done(), inf.HasSynced) {
		s.t.Fatalf("watching %s", e.ID)
	}
	return m
}

// podCreated is the moment e's watch first sees a pod of the workload.
func (s *scenario) podCreated(e *localfleet.Edge, name string) *moment {
	return watchFirst(s, e, func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().Pods().Informer()
	},
		func(p *corev1.Pod) bool { return p.Labels["app"] == name })
}

// scaledToZero is the moment e's watch first sees the workload's Deployment asked for no
// replica.
func (s *scenario) scaledToZero(e *localfleet.Edge, name string) *moment {
	return watchFirst(s, e, func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Apps().V1().Deployments().Informer()
	},
		func(d *appsv1.Deployment) bool { return d.Name == name && ptr.Deref(d.Spec.Replicas, 1) == 0 })
}
