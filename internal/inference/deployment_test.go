package inference

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/policy"
)

func TestDeployment(t *testing.T) {
	d := Deployment("detector", "cars", "edgemigrate.local/classifier:0.1.0", "car-7")
	if d.Name != "detector" || d.Namespace != "cars" || *d.Spec.Replicas != 1 {
		t.Fatalf("deployment %s/%s with %d replicas", d.Namespace, d.Name, *d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Fatalf("selector %v does not select the template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	ann := d.Spec.Template.Annotations
	if ann[api.AnnotationMigrate] != "true" || ann[api.AnnotationClientID] != "car-7" || ann[api.AnnotationGPUMemory] != GPUMemory {
		t.Errorf("template annotations %v", ann)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "edgemigrate.local/classifier:0.1.0" {
		t.Errorf("image %q", c.Image)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != api.ServicePortName || c.Ports[0].ContainerPort != Port {
		t.Errorf("ports %v, want %s=%d", c.Ports, api.ServicePortName, Port)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			t.Errorf("env %s is not from the downward API", e.Name)
			continue
		}
		env[e.Name] = e.ValueFrom.FieldRef.FieldPath
	}
	want := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "NODE_NAME": "spec.nodeName",
		api.EnvCluster: "metadata.annotations['" + api.AnnotationSourceCluster + "']"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s from %q, want %q", k, env[k], v)
		}
	}
	for name, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.StrVal != api.ServicePortName || p.PeriodSeconds > 5 {
			t.Errorf("probe %s: %+v", name, p)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("requests %v", c.Resources.Requests)
	}
	// The names must be valid Kubernetes names (the API server would refuse the object).
	if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
		t.Errorf("container name %q: %v", c.Name, errs)
	}
}

// TestDeploymentIsHostable: the default destination policy (Pod Security restricted, no
// token) hosts the services, and Restrict leaves no container out.
func TestDeploymentIsHostable(t *testing.T) {
	d := Deployment("detector", "cars", "edgemigrate.local/classifier:0.1.0", "car-7")
	if err := policy.Default().CheckBundle("cars", policy.Objects{Deployment: d}); err != nil {
		t.Errorf("the default policy refuses inference.Deployment: %v", err)
	}
	spec := corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
		Containers: []corev1.Container{{Name: "a", Image: "nginx"}, {Name: "b", Image: "nginx"}}}
	if err := policy.Default().CheckPodSpec(&spec, "cars"); err == nil {
		t.Fatal("an unrestricted spec passes the policy; the test above proves nothing")
	}
	Restrict(&spec)
	if err := policy.Default().CheckPodSpec(&spec, "cars"); err != nil {
		t.Errorf("after Restrict: %v", err)
	}
}
