package localcluster

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgemigrate/edgemigrate/api"
)

func TestContainerdConfig(t *testing.T) {
	cfg := containerdConfig("/tmp/c/nodes/real-0", "/run/edgemigrate-localcluster/emrn0n0", "/usr/lib/cni")
	for _, want := range []string{
		`root = "/tmp/c/nodes/real-0/containerd/root"`,
		`address = "/run/edgemigrate-localcluster/emrn0n0/containerd.sock"`,
		`address = "/run/edgemigrate-localcluster/emrn0n0/containerd.sock.ttrpc"`,
		`sandbox_image = "edgemigrate.local/pause:3.10"`,
		// What this VM lacks, and a streaming server that stays on the node's loopback.
		"restrict_oom_score_adj = true", "disable_apparmor = true", `stream_server_address = "127.0.0.1"`,
		"netns_mounts_under_state_dir = true", "SystemdCgroup = false",
		`Root = "/tmp/c/nodes/real-0/containerd/runc"`,
		`bin_dir = "/usr/lib/cni"`, `config_path = "/tmp/c/nodes/real-0/containerd/certs.d"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("containerd configuration lacks %s:\n%s", want, cfg)
		}
	}
	// Nothing shared with another containerd on the machine.
	for _, shared := range []string{"/run/containerd", "/var/lib/containerd", "/opt/containerd"} {
		if strings.Contains(cfg, shared) {
			t.Errorf("containerd configuration uses the shared %s", shared)
		}
	}
}

func TestRealNodeLabels(t *testing.T) {
	n := &RealNode{Name: "edge-0-real-0"}
	labels := map[string]string{}
	for _, kv := range strings.Split(n.nodeLabels(), ",") {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	for k, v := range map[string]string{
		api.LabelGPUProduct: RealNodeModel.Product, RealNodeLabel: "true",
	} {
		if labels[k] != v {
			t.Errorf("label %s=%q, want %q (all: %v)", k, labels[k], v, labels)
		}
	}
	for _, k := range []string{"type", "kubernetes.io/arch", "kubernetes.io/hostname"} {
		if _, ok := labels[k]; ok {
			t.Errorf("a real node's kubelet is given label %s, which is kwok's or its own", k)
		}
	}
}

func TestRealNetAddresses(t *testing.T) {
	a, b := &realNet{slot: 0}, &realNet{slot: 3}
	if a.nodeIP(1) != "10.250.0.11" || b.podCIDR(1) != "10.251.25.0/24" || b.clusterCIDR() != "10.251.24.0/21" {
		t.Errorf("addresses: %s %s %s", a.nodeIP(1), b.podCIDR(1), b.clusterCIDR())
	}
	// Each slot's pod subnets stay inside its cluster CIDR and apart from the next slot's.
	if a.podCIDR(maxRealNodes-1) != "10.251.7.0/24" || (&realNet{slot: 1}).podCIDR(0) != "10.251.8.0/24" {
		t.Errorf("pod subnets overlap between slots: %s, %s", a.podCIDR(maxRealNodes-1), (&realNet{slot: 1}).podCIDR(0))
	}
}

func TestBlobRepository(t *testing.T) {
	tests := []struct {
		method, path, repo string
		ok                 bool
	}{
		{http.MethodGet, "/v2/testservice/blobs/sha256:abc", "testservice", true},
		{http.MethodGet, "/v2/team/edgemigrate/blobs/sha256:abc", "team/edgemigrate", true},
		{http.MethodHead, "/v2/testservice/blobs/sha256:abc", "", false},
		{http.MethodGet, "/v2/testservice/manifests/0.1.0", "", false},
		{http.MethodGet, "/v2/testservice/blobs/uploads/x", "", false},
		{http.MethodGet, "/v2//blobs/sha256:abc", "", false},
	}
	for _, tt := range tests {
		repo, ok := blobRepository(httptest.NewRequest(tt.method, tt.path, nil))
		if repo != tt.repo || ok != tt.ok {
			t.Errorf("%s %s: %q %v, want %q %v", tt.method, tt.path, repo, ok, tt.repo, tt.ok)
		}
	}
}

func TestRealNodesOption(t *testing.T) {
	for _, n := range []int{-1, maxRealNodes + 1} {
		o := Options{BinDir: fakeBinDir(t, "exit 0"), RealNodes: n}
		if err := o.defaults(); err == nil || !strings.Contains(err.Error(), "real nodes asked for") {
			t.Errorf("RealNodes=%d: %v", n, err)
		}
	}
	o := Options{BinDir: fakeBinDir(t, "exit 0"), RealNodes: 1}
	if err := o.defaults(); err == nil || !strings.Contains(err.Error(), "kubelet is missing") {
		t.Errorf("RealNodes without a kubelet binary: %v", err)
	}
}
