// Package jetsontest builds the nodes and pods that unit tests of placement (the model, the
// node usage cache, the extender) decide on, so each test states only the quantities it is about.
package jetsontest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/edgemigrate/edgemigrate/api"
)

// Gi is a gibibyte in bytes.
const Gi = int64(1) << 30

// Namespace is the namespace of Pod's pods.
const Namespace = "ns"

// JetsonNode is an AGX Xavier node with 8 CPUs, 4 GPU slots and mem of allocatable memory.
func JetsonNode(name, mem string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			api.LabelGPUProduct: "NVIDIA-Jetson-AGX-Xavier", corev1.LabelArchStable: "arm64",
		}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("8"),
			corev1.ResourceMemory: resource.MustParse(mem),
			api.ResourceGPU:       resource.MustParse("4"),
		}},
	}
}

// PlainNode is an amd64 node with 16 CPUs and 64Gi, which the Jetson selector does not match.
func PlainNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelArchStable: "amd64"}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
		}},
	}
}

// Pod is a pending pod of edgemigrate's scheduler in Namespace, with UID "uid-<name>",
// requesting mem and declaring gpuMem (either may be empty), bound to node when node is not
// empty.
func Pod(name, node, mem, gpuMem string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, UID: types.UID("uid-" + name), Annotations: map[string]string{}},
		Spec: corev1.PodSpec{
			NodeName:      node,
			SchedulerName: api.SchedulerName,
			Containers:    []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if mem != "" {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	if gpuMem != "" {
		p.Annotations[api.AnnotationGPUMemory] = gpuMem
	}
	return p
}

// Key is the namespaced name of Pod(name, ...).
func Key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: Namespace, Name: name}
}
