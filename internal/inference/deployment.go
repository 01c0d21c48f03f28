// Package inference holds what callers of the seed's two inference services share: the
// services' manifest (Deployment). The services themselves are the classifier
// (internal/inference/mnist, image internal/images/classifier) and the driver-behaviour
// profiler (internal/inference/profile, image internal/images/profiler), served by
// internal/inference/service.
package inference

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/images"
)

// Port is the services' container port, named api.ServicePortName.
const Port = 8080

// GPUMemory is the Jetson GPU memory the Deployment declares (api.AnnotationGPUMemory):
// what the services would use on a Jetson's GPU; they compute on the CPU here.
const GPUMemory = "1Gi"

// Deployment returns the opted-in Deployment of one replica of an inference service image
// serving clientID: its pods carry the opt-in, client id and GPU memory annotations, name
// their port api.ServicePortName, find their identity (pod, namespace, node, cluster) in
// the environment through the downward API, and are probed on /readyz and /healthz.
// They are Pod Security restricted (Restrict), as a destination hosts no other. Placement
// (node selector, tolerations) is the caller's.
func Deployment(name, namespace, image, clientID string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(api.ServicePortName)}},
			PeriodSeconds: period, TimeoutSeconds: 1, FailureThreshold: 3,
		}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					api.AnnotationMigrate:   "true",
					api.AnnotationGPUMemory: GPUMemory,
					api.AnnotationClientID:  clientID,
				}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "service",
					Image: image,
					Args:  []string{fmt.Sprintf("--listen=:%d", Port)},
					Env: []corev1.EnvVar{
						{Name: "POD_NAME", ValueFrom: field("metadata.name")},
						{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
						{Name: "NODE_NAME", ValueFrom: field("spec.nodeName")},
						{Name: api.EnvCluster, ValueFrom: field(fmt.Sprintf("metadata.annotations['%s']", api.AnnotationSourceCluster))},
					},
					Ports:          []corev1.ContainerPort{{Name: api.ServicePortName, ContainerPort: Port, Protocol: corev1.ProtocolTCP}},
					ReadinessProbe: probe("/readyz", 1),
					LivenessProbe:  probe("/healthz", 5),
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
				}}},
			},
		},
	}
	Restrict(&d.Spec.Template.Spec)
	return d
}

// Restrict makes spec Pod Security restricted-compliant, as a destination's policy and
// admission demand of a peer's service: non-root as the user the project's images run as
// (images.NonRoot), the runtime's default seccomp profile, no privilege escalation, no
// capabilities, no service account token. Containers added later need Restrict again.
func Restrict(spec *corev1.PodSpec) {
	spec.AutomountServiceAccountToken = ptr.To(false)
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	sc := spec.SecurityContext
	sc.RunAsNonRoot, sc.RunAsUser, sc.RunAsGroup = ptr.To(true), ptr.To[int64](images.NonRoot), ptr.To[int64](images.NonRoot)
	sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			cs[i].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
		}
	}
}
