package descheduler

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/gateway"
	"github.com/edgemigrate/edgemigrate/locator"
)

func routeController(t *testing.T, migs []*v1alpha1.Migration, pods []*corev1.Pod) *Controller {
	t.Helper()
	var objs []runtime.Object
	for _, m := range migs {
		objs = append(objs, m)
	}
	for _, p := range pods {
		objs = append(objs, p)
	}
	cl := newWorld(t).newCluster("edge-a", func(c *Config) { c.PublicEndpoint = "http://a" }, objs...)
	cl.settle()
	// What resync reads from the ledger's cluster records.
	cl.c.endpoints.Store("edge-b", "http://b")
	return cl.c
}

func routeMigration(name string, role v1alpha1.MigrationRole, phase v1alpha1.MigrationPhase, peer string, created int) *v1alpha1.Migration {
	m := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: "1",
		CreationTimestamp: metav1.NewTime(time.Unix(1_800_000_000+int64(created), 0))},
		Spec:   v1alpha1.MigrationSpec{ClientID: "car-1"},
		Status: v1alpha1.MigrationStatus{Role: role, Phase: phase}}
	if role == v1alpha1.RoleSource {
		m.Status.Source, m.Status.Destination, m.Status.DestinationEndpoint = "edge-a", peer, "http://"+peer[len("edge-"):]
	} else {
		m.Status.Source, m.Status.Destination = peer, "edge-a"
	}
	return m
}

// servicePod is a pod of car-1's service; ready gives it the Ready condition and an IP.
func servicePod(name, workload string, ready bool, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: map[string]string{
		api.AnnotationClientID: "car-1", api.AnnotationWorkload: workload}},
		Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "model", Ports: []corev1.ContainerPort{
			{Name: "metrics", ContainerPort: 9100}, {Name: api.ServicePortName, ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9000}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if ready {
		p.Status.PodIP = "10.1.0." + name[len(name)-1:]
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

const svc = "Deployment/ns/svc"

// Resolve follows the make-before-break order: the destination once it is Ready, here
// while a Ready copy runs here, the source while a copy here starts or after it failed,
// else where the latest completed migration sent the client.
func TestResolve(t *testing.T) {
	mig := routeMigration
	running := servicePod("p1", svc, false)
	ready := servicePod("p1", svc, true)
	for _, tc := range []struct {
		name string
		migs []*v1alpha1.Migration
		pods []*corev1.Pod
		want string
	}{
		{"unknown", nil, nil, ""},
		{"runs here", nil, []*corev1.Pod{ready}, "edge-a"},
		{"starts here, no migration", nil, []*corev1.Pod{running}, "edge-a"},
		{"moving, destination not ready", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseDecided, "edge-b", 1)}, []*corev1.Pod{ready}, "edge-a"},
		{"destination ready, local copy still running", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseReady, "edge-b", 1)}, []*corev1.Pod{ready}, "edge-b"},
		{"moved away", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-b", 1)}, nil, "edge-b"},
		{"moved away twice", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-b", 1),
			mig("m2", v1alpha1.RoleDestination, v1alpha1.PhaseCompleted, "edge-b", 2), mig("m3", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-c", 3)}, nil, "edge-c"},
		{"came back, pods starting", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-b", 1),
			mig("m2", v1alpha1.RoleDestination, v1alpha1.PhaseReady, "edge-b", 2)}, nil, "edge-a"},
		{"failed migration keeps it here", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseFailed, "edge-b", 1)}, []*corev1.Pod{ready}, "edge-a"},
		// The copy here runs but is not Ready: the source still serves.
		{"arriving, copy running not Ready", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleDestination, v1alpha1.PhaseCreating, "edge-b", 1)}, []*corev1.Pod{running}, "edge-b"},
		{"arriving, no pod yet", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleDestination, v1alpha1.PhaseCreating, "edge-b", 1)}, nil, "edge-b"},
		{"given back", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleDestination, v1alpha1.PhaseFailed, "edge-b", 1)}, nil, "edge-b"},
		{"aborted", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleDestination, v1alpha1.PhaseAborted, "edge-b", 1)}, nil, "edge-b"},
		{"given back long ago, moved since", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleDestination, v1alpha1.PhaseFailed, "edge-b", 1),
			mig("m2", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-c", 2)}, nil, "edge-c"},
		{"arriving from a cluster of unknown endpoint", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleDestination, v1alpha1.PhaseCreating, "edge-x", 1)}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := routeController(t, tc.migs, tc.pods).Resolve("car-1")
			if got := map[bool]string{true: r.Cluster}[ok]; got != tc.want {
				t.Errorf("Resolve = %+v, %v; want cluster %q", r, ok, tc.want)
			}
			if ok && r.Endpoint == "" {
				t.Errorf("route %+v has no endpoint", r)
			}
		})
	}
	var _ locator.Resolver = &Controller{}
}

// Route gives the gateway the Ready pods of the client's service with their service port,
// or where it runs, or why it cannot answer.
func TestRoute(t *testing.T) {
	annotate := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations[api.AnnotationServicePort] = v }
	}
	for _, tc := range []struct {
		name     string
		migs     []*v1alpha1.Migration
		pods     []*corev1.Pod
		kind     gateway.RouteKind
		backends []gateway.Backend
		endpoint string
		reason   string
	}{
		{name: "unknown", kind: gateway.NotKnown},
		{name: "one Ready pod, port named http", pods: []*corev1.Pod{servicePod("p1", svc, true)},
			kind: gateway.Local, backends: []gateway.Backend{{Pod: "ns/p1", Address: "10.1.0.1:8080"}}},
		{name: "Ready pods only, sorted", pods: []*corev1.Pod{servicePod("p2", svc, true), servicePod("p1", svc, true), servicePod("p3", svc, false)},
			kind: gateway.Local, backends: []gateway.Backend{{Pod: "ns/p1", Address: "10.1.0.1:8080"}, {Pod: "ns/p2", Address: "10.1.0.2:8080"}}},
		{name: "annotation names a port", pods: []*corev1.Pod{servicePod("p1", svc, true, annotate("grpc"))},
			kind: gateway.Local, backends: []gateway.Backend{{Pod: "ns/p1", Address: "10.1.0.1:9000"}}},
		{name: "annotation numbers a port", pods: []*corev1.Pod{servicePod("p1", svc, true, annotate("7000"))},
			kind: gateway.Local, backends: []gateway.Backend{{Pod: "ns/p1", Address: "10.1.0.1:7000"}}},
		{name: "annotation out of range", pods: []*corev1.Pod{servicePod("p1", svc, true, annotate("70000"))},
			kind: gateway.Unavailable, reason: "not a port number"},
		{name: "annotation not a name", pods: []*corev1.Pod{servicePod("p1", svc, true, annotate("Not_A_Port"))},
			kind: gateway.Unavailable, reason: "neither a port number nor a port name"},
		{name: "annotation names no port", pods: []*corev1.Pod{servicePod("p1", svc, true, annotate("admin"))},
			kind: gateway.Unavailable, reason: `no TCP container port named "admin"`},
		{name: "no port named http", pods: []*corev1.Pod{servicePod("p1", svc, true, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil })},
			kind: gateway.Unavailable, reason: `no TCP container port named "http"`},
		{name: "not Ready yet", pods: []*corev1.Pod{servicePod("p1", svc, false)}, kind: gateway.Unavailable, reason: "no pod of the service is Ready yet"},
		{name: "pods of two workloads", pods: []*corev1.Pod{servicePod("p1", svc, true), servicePod("p2", "Deployment/ns/other", true)},
			kind: gateway.Unavailable, reason: "pods of 2 workloads serve client car-1 here (Deployment/ns/other, Deployment/ns/svc)"},
		{name: "deleting pod: gone", pods: []*corev1.Pod{servicePod("p1", svc, true, func(p *corev1.Pod) {
			now := metav1.Now()
			p.DeletionTimestamp, p.Finalizers = &now, []string{"test/keep"}
		})}, kind: gateway.NotKnown},
		{name: "came back, pods starting", migs: []*v1alpha1.Migration{routeMigration("m1", v1alpha1.RoleDestination, v1alpha1.PhaseReady, "edge-b", 1)},
			kind: gateway.Unavailable, reason: "not created yet"},
		{name: "destination Ready: redirect although the local copy is Ready", pods: []*corev1.Pod{servicePod("p1", svc, true)},
			migs: []*v1alpha1.Migration{routeMigration("m1", v1alpha1.RoleSource, v1alpha1.PhaseReady, "edge-b", 1)}, kind: gateway.Remote, endpoint: "http://b"},
		{name: "arriving: redirect to the source", pods: []*corev1.Pod{servicePod("p1", svc, false)},
			migs: []*v1alpha1.Migration{routeMigration("m1", v1alpha1.RoleDestination, v1alpha1.PhaseCreating, "edge-b", 1)}, kind: gateway.Remote, endpoint: "http://b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := routeController(t, tc.migs, tc.pods).Route("car-1")
			if r.Kind != tc.kind || r.Endpoint != tc.endpoint || !strings.Contains(r.Reason, tc.reason) || len(r.Backends) != len(tc.backends) {
				t.Fatalf("Route = %+v; want %s, endpoint %q, reason containing %q, backends %v", r, tc.kind, tc.endpoint, tc.reason, tc.backends)
			}
			for i := range r.Backends {
				if r.Backends[i] != tc.backends[i] {
					t.Errorf("backends %v, want %v", r.Backends, tc.backends)
				}
			}
			if (r.Kind == gateway.Local || r.Kind == gateway.Unavailable) && r.Cluster != "edge-a" {
				t.Errorf("cluster %q, want edge-a", r.Cluster)
			}
		})
	}
	var _ gateway.Router = &Controller{}
}

// Only the leading, registered controller routes the gateway; other replicas answer 503.
func TestLeaderRouter(t *testing.T) {
	c := routeController(t, nil, []*corev1.Pod{servicePod("p1", svc, true)})
	var ctrl atomic.Pointer[Controller]
	var leading atomic.Bool
	r := leaderRouter("edge-a", &ctrl, &leading)
	if got := r.Route("car-1"); got.Kind != gateway.Unavailable || got.Reason != "not the leader" {
		t.Errorf("before leading: %+v", got)
	}
	ctrl.Store(c)
	leading.Store(true)
	if got := r.Route("car-1"); got.Kind != gateway.Unavailable || got.Reason != "the descheduler is starting" {
		t.Errorf("leading, not registered: %+v", got)
	}
	c.registered.Store(true)
	if got := r.Route("car-1"); got.Kind != gateway.Local || len(got.Backends) != 1 {
		t.Errorf("leading and registered: %+v", got)
	}
	leading.Store(false)
	if got := r.Route("car-1"); got.Kind != gateway.Unavailable || got.Reason != "not the leader" {
		t.Errorf("after losing the lease: %+v", got)
	}
}
