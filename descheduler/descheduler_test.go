package descheduler

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/locator"
)

const gi = int64(1) << 30

func TestPlaceReplicas(t *testing.T) {
	xavier := jetson.Capacity{Jetson: true, Model: "NVIDIA-Jetson-AGX-Xavier", CPUMilli: 8000, Memory: 32 * gi, GPUSlots: 1}
	model := jetson.Demand{CPUMilli: 500, Memory: 1 * gi, GPUMemory: 7 * gi}
	for _, tc := range []struct {
		name     string
		used     []jetson.Demand
		replicas int32
		canHost  bool
		why      string
	}{
		{name: "no nodes", replicas: 1, why: "no Jetson nodes"},
		{name: "empty node", used: []jetson.Demand{{}}, replicas: 1, canHost: true},
		{name: "four fit on one node", used: []jetson.Demand{{}}, replicas: 4, canHost: true},
		{name: "the fifth does not", used: []jetson.Demand{{}}, replicas: 5, why: "replica 5 of 5 fits no node (unified memory: need 8.0Gi, free 0"},
		{name: "spread over two nodes", used: []jetson.Demand{{Memory: 20 * gi}, {Memory: 20 * gi}}, replicas: 2, canHost: true},
		{name: "full nodes", used: []jetson.Demand{{Memory: 27 * gi}, {Memory: 30 * gi}}, replicas: 1, why: "replica 1 of 1 fits no node"},
		{name: "zero replicas still needs room for one", used: []jetson.Demand{{Memory: 30 * gi}}, replicas: 0, why: "fits no node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			used := append([]jetson.Demand(nil), tc.used...)
			ev := placeReplicas(jetson.Binpack, len(used), func(i int) (jetson.Capacity, *jetson.Demand) { return xavier, &used[i] }, model, tc.replicas)
			if ev.canHost != tc.canHost || !strings.Contains(ev.reason, tc.why) {
				t.Errorf("placeReplicas = %+v; want canHost %v and a reason containing %q", ev, tc.canHost, tc.why)
			}
			if ev.canHost && (ev.score < 0 || ev.score > 100) {
				t.Errorf("score %d outside 0–100", ev.score)
			}
		})
	}
}

func TestSplitWorkload(t *testing.T) {
	for in, ok := range map[string]bool{
		"Deployment/ns/web": true, "Pod/ns/p": true, "StatefulSet/ns/s": false, "Deployment/ns/": false,
		"Deployment//x": false, "Deployment/ns/a/b": false, "": false,
	} {
		if _, _, _, got := splitWorkload(in); got != ok {
			t.Errorf("splitWorkload(%q) ok = %v, want %v", in, got, ok)
		}
	}
}

func validOptions() *Options {
	o := NewOptions()
	o.ClusterID, o.Location, o.PublicEndpoint, o.LedgerURL = "edge-a", "35.888,128.611", "http://10.0.0.5:8090", "http://ledger:8070"
	return o
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"valid", func(*Options) {}, ""},
		{"cluster id", func(o *Options) { o.ClusterID = "Edge_A" }, "--cluster-id"},
		{"long cluster id", func(o *Options) { o.ClusterID = strings.Repeat("a", 41) }, "at most 40"},
		{"location", func(o *Options) { o.Location = "91,0" }, "--location"},
		{"endpoint", func(o *Options) { o.PublicEndpoint = "10.0.0.5:8090" }, "--public-endpoint"},
		{"ledger url", func(o *Options) { o.LedgerURL = "" }, "--ledger-url"},
		{"fabric", func(o *Options) { o.LedgerBackend = BackendFabric }, "--fabric-peer"},
		{"backend", func(o *Options) { o.LedgerBackend = "etcd" }, "want remote or fabric"},
		{"radius", func(o *Options) { o.CoverageRadius = -1 }, "non-negative"},
		{"concurrency", func(o *Options) { o.MaxConcurrentMigrations = 0 }, "--max-concurrent-migrations"},
		{"durations", func(o *Options) { o.OffloadAfter = 0 }, "--offload-after must be positive"},
		{"policy", func(o *Options) { o.Jetson.Policy = "random" }, "random"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions()
			tc.change(o)
			err := o.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// The manifest that travels on the ledger keeps what the user wrote and drops what describes
// one cluster's copy, so the destination's webhook and controllers write their own.
func TestManifestRoundTrip(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1", ResourceVersion: "7", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"team": "vision", api.AnnotationMigratedTo: "edge-b", "deployment.kubernetes.io/revision": "3"}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{
			Annotations: map[string]string{api.AnnotationClientID: "car-1", api.AnnotationSourceCluster: "edge-a"}}}},
	}
	w := workloadManifest{Kind: v1alpha1.KindDeployment, Deployment: &appsv1.Deployment{ObjectMeta: cleanMeta(d.ObjectMeta), Spec: d.Spec}}
	w.Deployment.Spec.Template.ObjectMeta = cleanMeta(w.Deployment.Spec.Template.ObjectMeta)
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeManifest(string(data))
	if err != nil {
		t.Fatal(err)
	}
	meta := got.Deployment.ObjectMeta
	if meta.UID != "" || meta.ResourceVersion != "" || meta.Annotations["team"] != "vision" || len(meta.Annotations) != 1 {
		t.Errorf("metadata not cleaned: %+v", meta)
	}
	if specReplicas(string(data)) != 3 || clientOfSpec(string(data)) != "car-1" {
		t.Errorf("replicas %d client %q; want 3 and car-1", specReplicas(string(data)), clientOfSpec(string(data)))
	}
	if _, ok := got.Deployment.Spec.Template.Annotations[api.AnnotationSourceCluster]; ok {
		t.Error("the pod template kept the source cluster annotation")
	}
	for _, bad := range []string{"", "{", `{"kind":"Deployment"}`, `{"kind":"StatefulSet","pod":{}}`} {
		if _, err := decodeManifest(bad); err == nil {
			t.Errorf("decodeManifest(%q) accepted it", bad)
		}
	}
	if specReplicas("garbage") != 1 {
		t.Error("specReplicas of garbage should be 1")
	}
}

func TestSourceLedgerID(t *testing.T) {
	c := &Controller{id: strings.Repeat("e", 40)}
	id := c.sourceLedgerID(&v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{UID: "0f2c1c4e-5b7d-4c8e-9a3b-2d1e0f9a8b7c"}})
	if id != strings.Repeat("e", 40)+"-0f2c1c4e5b7d" || len(id) > 63 {
		t.Errorf("ledger id %q", id)
	}
}

// Resolve follows the make-before-break order: the destination once it is Ready, here
// while a copy runs here, else where the latest completed migration sent the client.
func TestResolve(t *testing.T) {
	newController := func(migs []*v1alpha1.Migration, pods []*corev1.Pod) *Controller {
		c := &Controller{id: "edge-a", o: &Options{PublicEndpoint: "http://a"}}
		c.migInformer = cache.NewSharedIndexInformer(&cache.ListWatch{}, &v1alpha1.Migration{}, 0, cache.Indexers{
			indexClient: func(obj any) ([]string, error) { return []string{obj.(*v1alpha1.Migration).Spec.ClientID}, nil },
		})
		for _, m := range migs {
			if err := c.migInformer.GetIndexer().Add(m); err != nil {
				t.Fatal(err)
			}
		}
		c.podIndex = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{indexPodClient: func(obj any) ([]string, error) {
			return []string{obj.(*corev1.Pod).Annotations[api.AnnotationClientID]}, nil
		}})
		for _, p := range pods {
			if err := c.podIndex.Add(p); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	at := func(s int) metav1.Time { return metav1.NewTime(time.Unix(1_800_000_000+int64(s), 0)) }
	mig := func(name, role, phase, dest string, created int) *v1alpha1.Migration {
		return &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: at(created), ResourceVersion: "1"},
			Spec:   v1alpha1.MigrationSpec{ClientID: "car-1"},
			Status: v1alpha1.MigrationStatus{Role: role, Phase: phase, Destination: dest, DestinationEndpoint: "http://" + dest}}
	}
	running := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Annotations: map[string]string{api.AnnotationClientID: "car-1"}},
		Spec: corev1.PodSpec{NodeName: "n"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, tc := range []struct {
		name string
		migs []*v1alpha1.Migration
		pods []*corev1.Pod
		want string
	}{
		{"unknown", nil, nil, ""},
		{"runs here", nil, []*corev1.Pod{running}, "edge-a"},
		{"moving, destination not ready", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseDecided, "edge-b", 1)}, []*corev1.Pod{running}, "edge-a"},
		{"destination ready, local copy still running", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseReady, "edge-b", 1)}, []*corev1.Pod{running}, "edge-b"},
		{"moved away", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-b", 1)}, nil, "edge-b"},
		{"moved away twice", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-b", 1),
			mig("m2", v1alpha1.RoleDestination, v1alpha1.PhaseCompleted, "edge-a", 2), mig("m3", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-c", 3)}, nil, "edge-c"},
		{"came back, pods starting", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseCompleted, "edge-b", 1),
			mig("m2", v1alpha1.RoleDestination, v1alpha1.PhaseReady, "edge-a", 2)}, nil, "edge-a"},
		{"failed migration keeps it here", []*v1alpha1.Migration{mig("m1", v1alpha1.RoleSource, v1alpha1.PhaseFailed, "", 1)}, []*corev1.Pod{running}, "edge-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := newController(tc.migs, tc.pods).Resolve("car-1")
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
