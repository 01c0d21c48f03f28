package webhook

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// richPod has everything that changes a pod's effective requests: a restartable init
// container (sidecar), a plain init container larger than the app, overhead and
// pod-level resources.
func richPod() *corev1.Pod {
	p := typicalPod()
	p.Spec.InitContainers = []corev1.Container{
		{Name: "fetch-model", Image: sideImage, Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("8Gi")}}},
		{Name: "proxy", Image: "envoyproxy/envoy:v1.30", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("128Mi")}}},
	}
	p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	return p
}

// TestPodViewDemand: what the handler decodes of a pod gives the same demand, metadata,
// scheduler and images as the whole pod.
func TestPodViewDemand(t *testing.T) {
	podLevel := richPod()
	podLevel.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("6"), corev1.ResourceMemory: resource.MustParse("12Gi")}}
	pods := append(seedPods(), typicalPod(), richPod(), podLevel,
		pod(enabledNS, withGPU, annotated(api.AnnotationGPUMemory, "6Gi"), func(p *corev1.Pod) { p.Spec.SchedulerName = "" }))
	for _, p := range pods {
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var view podView
		if err := json.Unmarshal(raw, &view); err != nil {
			t.Fatal(err)
		}
		got := view.pod()
		if !equality.Semantic.DeepEqual(got.ObjectMeta, metaOf(p)) || got.Spec.SchedulerName != p.Spec.SchedulerName {
			t.Errorf("pod %s: metadata or scheduler differ:\n got %+v\nwant %+v", p.Name, got.ObjectMeta, p.ObjectMeta)
		}
		for i := range p.Spec.Containers {
			if got.Spec.Containers[i].Image != p.Spec.Containers[i].Image {
				t.Errorf("pod %s container %d: image %q, want %q", p.Name, i, got.Spec.Containers[i].Image, p.Spec.Containers[i].Image)
			}
		}
		want, wantErr := jetson.PodDemand(p)
		have, haveErr := jetson.PodDemand(got)
		if want != have || (wantErr == nil) != (haveErr == nil) {
			t.Errorf("pod %s: demand over the view %v (%v), over the pod %v (%v)", p.Name, have, haveErr, want, wantErr)
		}
	}
	// The rich pod's demand is driven by what the view must keep: the 3-CPU init container
	// outweighs the app (550m) and its sidecar (250m); overhead adds 100m.
	if d, _ := jetson.PodDemand(richPod()); d.CPUMilli != 3100 {
		t.Errorf("rich pod cpu %dm: the test pod no longer exercises init containers and overhead", d.CPUMilli)
	}
}

// metaOf is the metadata the view keeps.
func metaOf(p *corev1.Pod) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: p.Name, GenerateName: p.GenerateName, Namespace: p.Namespace,
		Labels: p.Labels, Annotations: p.Annotations, OwnerReferences: p.OwnerReferences}
}
