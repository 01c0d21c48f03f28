package localcluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/edgemigrate/edgemigrate/api"
)

func TestJetsonNode(t *testing.T) {
	tests := []struct {
		name        string
		model       JetsonModel
		opts        NodeOptions
		wantProduct string
		wantSlots   int64
		wantMemory  string
		wantSharing string
		wantImages  int
	}{
		{"xavier", AGXXavier, NodeOptions{}, "NVIDIA-Jetson-AGX-Xavier", 1, "32Gi", "none", len(DefaultImages)},
		{"xavier time-sliced", AGXXavier, NodeOptions{GPUReplicas: 4}, "NVIDIA-Jetson-AGX-Xavier-SHARED", 4, "32Gi", "time-slicing", len(DefaultImages)},
		{"orin nx without images", OrinNX, NodeOptions{Images: []corev1.ContainerImage{}}, "NVIDIA-Jetson-Orin-NX", 1, "16Gi", "none", 0},
		{"agx orin, one replica is not shared", AGXOrin, NodeOptions{GPUReplicas: 1}, "NVIDIA-Jetson-AGX-Orin", 1, "64Gi", "none", len(DefaultImages)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := JetsonNode("n1", tt.model, tt.opts)
			if got := n.Labels[api.LabelGPUProduct]; got != tt.wantProduct {
				t.Errorf("product label %q, want %q", got, tt.wantProduct)
			}
			if got := n.Labels[api.LabelGPUSharingStrategy]; got != tt.wantSharing {
				t.Errorf("sharing strategy %q, want %q", got, tt.wantSharing)
			}
			if got := n.Labels[corev1.LabelArchStable]; got != "arm64" {
				t.Errorf("arch label %q, want arm64", got)
			}
			if n.Annotations[kwokNodeKey] != kwokNodeValue {
				t.Errorf("node not selected for kwok: annotations %v", n.Annotations)
			}
			for _, list := range []corev1.ResourceList{n.Status.Capacity, n.Status.Allocatable} {
				if got := list[api.ResourceGPU]; got.Value() != tt.wantSlots {
					t.Errorf("gpu slots %s, want %d", got.String(), tt.wantSlots)
				}
				if got := list[corev1.ResourceMemory]; got.Cmp(resource.MustParse(tt.wantMemory)) != 0 {
					t.Errorf("memory %s, want %s", got.String(), tt.wantMemory)
				}
			}
			if len(n.Status.Images) != tt.wantImages {
				t.Errorf("%d images, want %d", len(n.Status.Images), tt.wantImages)
			}
		})
	}

	n := JetsonNode("n2", AGXXavier, NodeOptions{Labels: map[string]string{"topology.kubernetes.io/zone": "rsu-7", api.LabelGPUFamily: "x"}})
	if n.Labels["topology.kubernetes.io/zone"] != "rsu-7" || n.Labels[api.LabelGPUFamily] != "x" {
		t.Errorf("extra labels not applied: %v", n.Labels)
	}
	// The node's resource lists must not alias: kwok and tests modify them independently.
	n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("1")
	if got := n.Status.Allocatable[corev1.ResourceCPU]; got.Cmp(AGXXavier.CPU) != 0 {
		t.Errorf("capacity and allocatable share a map")
	}
}
