package descheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/mtls"
)

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
	o.ClusterID, o.Location, o.PublicEndpoint, o.LedgerURL = "edge-a", "35.888,128.611", "https://10.0.0.5:8090", "https://ledger:8070"
	o.Identity = mtls.Files{CertFile: "tls.crt", KeyFile: "tls.key", CAFile: "ca.crt"}
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
		// Mutual TLS between clusters.
		{"plain ledger url", func(o *Options) { o.LedgerURL = "http://127.0.0.1:8070" }, "mutual TLS only"},
		{"remote ledger without identity", func(o *Options) { o.Identity = mtls.Files{} }, "needs the cluster identity"},
		{"half an identity", func(o *Options) { o.Identity.CAFile = "" }, "go together"},
		{"plain endpoint with identity", func(o *Options) { o.PublicEndpoint = "http://10.0.0.5:8090" }, "want https"},
		{"plain endpoint off loopback", func(o *Options) {
			o.LedgerBackend, o.FabricPeer, o.FabricMSPID, o.FabricCert, o.FabricKey = BackendFabric, "peer:7051", "Org1MSP", "c", "k"
			o.Identity, o.PublicEndpoint, o.ListenAddress = mtls.Files{}, "http://10.0.0.5:8090", "127.0.0.1:8090"
		}, "plain HTTP, on loopback only"},
		{"plain listener off loopback", func(o *Options) {
			o.LedgerBackend, o.FabricPeer, o.FabricMSPID, o.FabricCert, o.FabricKey = BackendFabric, "peer:7051", "Org1MSP", "c", "k"
			o.Identity, o.PublicEndpoint = mtls.Files{}, "http://127.0.0.1:8090"
		}, "plain HTTP listens on loopback only"},
		{"plain on loopback", func(o *Options) {
			o.LedgerBackend, o.FabricPeer, o.FabricMSPID, o.FabricCert, o.FabricKey = BackendFabric, "peer:7051", "Org1MSP", "c", "k"
			o.Identity, o.PublicEndpoint, o.ListenAddress = mtls.Files{}, "http://127.0.0.1:8090", "127.0.0.1:8090"
		}, ""},
		{"fabric", func(o *Options) { o.LedgerBackend = BackendFabric }, "--fabric-peer"},
		{"backend", func(o *Options) { o.LedgerBackend = "etcd" }, "want remote or fabric"},
		{"radius", func(o *Options) { o.CoverageRadius = -1 }, "non-negative"},
		{"concurrency", func(o *Options) { o.MaxConcurrentMigrations = 0 }, "--max-concurrent-migrations"},
		{"durations", func(o *Options) { o.OffloadAfter = 0 }, "--offload-after must be positive"},
		{"drain timeout", func(o *Options) { o.DrainTimeout = 0 }, "--drain-timeout must be positive"},
		{"gateway timeout", func(o *Options) { o.GatewayRequestTimeout = -time.Second }, "--gateway-request-timeout must be positive"},
		{"gateway body", func(o *Options) { o.GatewayMaxBodyBytes = 0 }, "--gateway-max-body-bytes must be positive"},
		{"bid timeout beyond the ledger's bound", func(o *Options) { o.BidTimeout = 11 * time.Minute }, "--bid-timeout 11m0s: want 1ms to 10m0s"},
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

// The cluster identity must name this cluster: peers and the ledger know it by it.
func TestLoadIdentity(t *testing.T) {
	ca, err := mtls.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteIdentity(t.TempDir(), "edge-b", "EdgeBMSP", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		cluster string
		files   mtls.Files
		want    string
	}{
		{"edge-b", files, ""},
		{"edge-a", files, `is for cluster "edge-b", not --cluster-id "edge-a"`},
		{"edge-b", mtls.Files{CertFile: files.CertFile, KeyFile: files.KeyFile, CAFile: files.CertFile + ".absent"}, "reading CA bundle"},
	} {
		o := validOptions()
		o.ClusterID, o.Identity = tc.cluster, tc.files
		id, err := loadIdentity(ctx, o)
		if tc.want == "" {
			if self, _ := id.Self(); err != nil || self.ClusterID != "edge-b" {
				t.Errorf("loadIdentity(%s) = %+v, %v", tc.cluster, self, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadIdentity(%s): %v, want %q", tc.cluster, err, tc.want)
		}
	}
	if id, err := loadIdentity(ctx, &Options{}); id != nil || err != nil {
		t.Errorf("no identity files: %v, %v; want none and no error", id, err)
	}
}

// The workload in a bundle, as snapshot takes it from the cluster, keeps what the user
// wrote and drops what describes one cluster's copy, so the destination's webhook,
// scheduler and controllers write their own; it carries its origin.
func TestManifestRoundTrip(t *testing.T) {
	d := deployment("web", 3, "4Gi")
	d.ResourceVersion = "7"
	d.Labels = map[string]string{"app": "web", api.LabelMigrationID: "edge-b-0123456789ab"}
	d.Annotations = map[string]string{"team": "vision", api.AnnotationMigratedTo: "edge-b", "deployment.kubernetes.io/revision": "3"}
	d.Spec.Template.Annotations[api.AnnotationSourceCluster] = "edge-a"
	unscaled := deployment("batch", 1, "1Gi")
	unscaled.Spec.Replicas = nil
	unscaled.Annotations = map[string]string{api.AnnotationOrigin: "edge-c/apps/uid-first"}
	p := barePod("solo")
	p.Spec.Priority, p.Spec.PriorityClassName = ptr.To[int32](1000), "inference"
	p.Annotations[api.AnnotationDemand] = "cpu=500m"
	// The destination's webhook writes its own cluster (api.EnvCluster reads it).
	p.Annotations[api.AnnotationSourceCluster] = "edge-a"
	cl := newWorld(t).newCluster("edge-a", nil, d, unscaled, p)
	cl.settle()

	roundTrip := func(kind, name string) *serviceBundle {
		t.Helper()
		b, err := cl.c.buildBundle(v1alpha1.WorkloadReference{Kind: kind, Name: name}, testNamespace)
		if err != nil {
			t.Fatal(err)
		}
		data, err := encodeBundle(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeBundle(data)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	got := roundTrip(v1alpha1.KindDeployment, "web")
	meta := got.Workload.Deployment.ObjectMeta
	if meta.UID != "" || meta.ResourceVersion != "" || meta.Generation != 0 || meta.Annotations["team"] != "vision" || len(meta.Annotations) != 2 ||
		meta.Annotations[api.AnnotationOrigin] != "edge-a/apps/uid-web" || got.Origin != "edge-a/apps/uid-web" {
		t.Errorf("metadata not cleaned, or no origin: %+v (origin %q)", meta, got.Origin)
	}
	if _, ok := meta.Labels[api.LabelMigrationID]; ok || meta.Labels["app"] != "web" {
		t.Errorf("labels %v: want app kept, the earlier migration's id dropped", meta.Labels)
	}
	if got.Workload.replicas() != 3 || got.Workload.template().Annotations[api.AnnotationClientID] != "car-1" {
		t.Errorf("replicas %d, client %q; want 3 and car-1", got.Workload.replicas(), got.Workload.template().Annotations[api.AnnotationClientID])
	}
	for _, k := range []string{api.AnnotationSourceCluster, api.AnnotationWorkload} {
		if _, ok := got.Workload.Deployment.Spec.Template.Annotations[k]; ok {
			t.Errorf("the pod template kept %s", k)
		}
	}
	if b := roundTrip(v1alpha1.KindDeployment, "batch"); b.Workload.replicas() != 1 || b.Origin != "edge-c/apps/uid-first" {
		t.Errorf("a Deployment without replicas moves %d, origin %q; want 1 and the first copy's", b.Workload.replicas(), b.Origin)
	}

	pod := roundTrip(v1alpha1.KindPod, "solo").Workload.Pod
	if pod.Spec.NodeName != "" || pod.Spec.Priority != nil || pod.Spec.PriorityClassName != "inference" {
		t.Errorf("pod spec: node %q priority %v class %q; want no node, no priority, the class kept",
			pod.Spec.NodeName, pod.Spec.Priority, pod.Spec.PriorityClassName)
	}
	for _, k := range []string{api.AnnotationDemand, api.AnnotationWorkload, api.AnnotationSourceCluster} {
		if _, ok := pod.Annotations[k]; ok {
			t.Errorf("the pod kept %s", k)
		}
	}
	if pod.Annotations[api.AnnotationClientID] != "car-1" {
		t.Errorf("the pod lost its client: %v", pod.Annotations)
	}

	if _, err := cl.c.snapshot(v1alpha1.WorkloadReference{Kind: "StatefulSet", Name: "db"}, testNamespace); err == nil {
		t.Error("snapshot of a StatefulSet succeeded")
	}
	for _, bad := range []string{"", "{", `{"version":"v1","origin":"o","workload":{"kind":"Deployment"}}`,
		`{"version":"v1","origin":"o","workload":{"kind":"StatefulSet","pod":{}}}`, `{"version":"v2","origin":"o","workload":{"kind":"Pod","pod":{}}}`,
		`{"version":"v1","workload":{"kind":"Pod","pod":{}}}`, `{"version":"v1","origin":"o","workload":{"kind":"Pod","pod":{}},"secrets":[]}`} {
		if _, err := decodeBundle([]byte(bad)); err == nil {
			t.Errorf("decodeBundle(%q) accepted it", bad)
		}
	}
}

func TestSourceLedgerID(t *testing.T) {
	c := &Controller{cfg: &Config{ClusterID: strings.Repeat("e", 40)}}
	id := c.sourceLedgerID(&v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{UID: "0f2c1c4e-5b7d-4c8e-9a3b-2d1e0f9a8b7c"}})
	if id != strings.Repeat("e", 40)+"-0f2c1c4e5b7d" || len(id) > 63 {
		t.Errorf("ledger id %q", id)
	}
}
