package webhook

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podView is the part of a pod the handler reads: metadata it decides on, the scheduler
// name, images, which volumes are PersistentVolumeClaims, and what jetson.PodDemand reads (resources, restart policies of init
// containers, overhead, pod-level resources). Decoding a whole pod — volumes, probes,
// env, managedFields — was most of an admission's cost; json skips the rest without
// building it. TestPodViewDemand holds PodDemand over the view equal to PodDemand over
// the whole pod.
type podView struct {
	// APIVersion and Kind are the object's own, which must agree with request.kind.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name            string                  `json:"name"`
		GenerateName    string                  `json:"generateName"`
		Namespace       string                  `json:"namespace"`
		Labels          map[string]string       `json:"labels"`
		Annotations     map[string]string       `json:"annotations"`
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
	} `json:"metadata"`
	Spec struct {
		SchedulerName  string                       `json:"schedulerName"`
		Containers     []containerView              `json:"containers"`
		InitContainers []containerView              `json:"initContainers"`
		Overhead       corev1.ResourceList          `json:"overhead"`
		Resources      *corev1.ResourceRequirements `json:"resources"`
		Volumes        []volumeView                 `json:"volumes"`
	} `json:"spec"`
}

// volumeView: a volume's name and claim, the rest of its source skipped.
type volumeView struct {
	Name                  string                                    `json:"name"`
	PersistentVolumeClaim *corev1.PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim"`
}

type containerView struct {
	Name          string                         `json:"name"`
	Image         string                         `json:"image"`
	Resources     corev1.ResourceRequirements    `json:"resources"`
	RestartPolicy *corev1.ContainerRestartPolicy `json:"restartPolicy"`
}

// pod returns the view as a Pod with only those fields set.
func (v *podView) pod() *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: v.Metadata.Name, GenerateName: v.Metadata.GenerateName, Namespace: v.Metadata.Namespace,
			Labels: v.Metadata.Labels, Annotations: v.Metadata.Annotations, OwnerReferences: v.Metadata.OwnerReferences,
		},
		Spec: corev1.PodSpec{
			SchedulerName:  v.Spec.SchedulerName,
			Containers:     containers(v.Spec.Containers),
			InitContainers: containers(v.Spec.InitContainers),
			Overhead:       v.Spec.Overhead,
			Resources:      v.Spec.Resources,
		},
	}
	for _, vol := range v.Spec.Volumes {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: vol.Name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: vol.PersistentVolumeClaim}})
	}
	return p
}

func containers(views []containerView) []corev1.Container {
	if views == nil {
		return nil
	}
	out := make([]corev1.Container, len(views))
	for i, c := range views {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources, RestartPolicy: c.RestartPolicy}
	}
	return out
}
