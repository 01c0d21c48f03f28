package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
)

const (
	testCluster = "edge-a"
	installNS   = "edgemigrate-system"
	enabledNS   = "inference"
	plainNS     = "plain"
	modelImage  = "nvcr.io/nvidia/l4t-ml:r35.2.1-py3"
	sideImage   = "busybox"
	modelSize   = 15_930_000_000
	sideSize    = 4_300_000
)

// testState is the cluster as the handler sees it, in memory.
type testState struct {
	namespaces map[string]map[string]string
	rsOwners   map[string]*metav1.OwnerReference // namespace/name → controller (nil: none)
	images     ImageIndex
	nsErr      error
}

func newTestState() *testState {
	s := &testState{
		namespaces: map[string]map[string]string{
			enabledNS:              {api.LabelNamespaceEnabled: "true"},
			plainNS:                {},
			metav1.NamespaceSystem: {api.LabelNamespaceEnabled: "true"},
			installNS:              {api.LabelNamespaceEnabled: "true"},
		},
		rsOwners: map[string]*metav1.OwnerReference{},
	}
	s.images.Rebuild([]*corev1.Node{{Status: corev1.NodeStatus{Images: []corev1.ContainerImage{
		{Names: []string{modelImage}, SizeBytes: modelSize},
		{Names: []string{"docker.io/library/busybox:latest"}, SizeBytes: sideSize},
	}}}})
	for _, ns := range []string{enabledNS, plainNS} {
		s.rsOwners[ns+"/web-5d8f"] = controllerRef("apps/v1", "Deployment", "web")
		s.rsOwners[ns+"/lonely"] = nil
		s.rsOwners[ns+"/rolled"] = controllerRef("argoproj.io/v1alpha1", "Rollout", "canary")
	}
	return s
}

func (s *testState) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	if s.nsErr != nil {
		return nil, s.nsErr
	}
	labels, ok := s.namespaces[name]
	if !ok {
		return nil, errors.New("namespace " + name + " not found")
	}
	return labels, nil
}

func (s *testState) ReplicaSetController(_ context.Context, namespace, name string) (*metav1.OwnerReference, error) {
	owner, ok := s.rsOwners[namespace+"/"+name]
	if !ok {
		return nil, errors.New("replicasets " + name + " not found")
	}
	return owner, nil
}

func (s *testState) ImageSize(image string) (int64, bool) { return s.images.Size(image) }

func controllerRef(apiVersion, kind, name string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(name + "-uid"), Controller: ptr.To(true)}
}

// pod is a typical inference pod; options shape it.
func pod(ns string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "model", Namespace: ns},
		Spec: corev1.PodSpec{
			SchedulerName: corev1.DefaultSchedulerName,
			Containers: []corev1.Container{{
				Name:  "model",
				Image: modelImage,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
			}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func annotated(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func ownedBy(apiVersion, kind, name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{*controllerRef(apiVersion, kind, name)}
		p.Name, p.GenerateName = "", name+"-"
	}
}

func withGPU(p *corev1.Pod) {
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{api.ResourceGPU: resource.MustParse("1")}
	p.Spec.Containers[0].Resources.Requests[api.ResourceGPU] = resource.MustParse("1")
}

func withSidecar(image string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: image})
	}
}

func withVolume(v corev1.VolumeSource) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v" + strconv.Itoa(len(p.Spec.Volumes)), VolumeSource: v})
	}
}

var withClaim = withVolume(corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}})

// reviewFor is the AdmissionReview the API server sends for p: the object carries its own
// apiVersion and kind.
func reviewFor(t testing.TB, p *corev1.Pod, op admissionv1.Operation) []byte {
	t.Helper()
	p = p.DeepCopy()
	p.APIVersion, p.Kind = "v1", "Pod"
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "0d3e4f5a-1111-2222-3333-444455556666",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: p.Namespace,
			Name:      p.Name,
			Operation: op,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// admit runs one review through the handler and returns the response, the outcome and the
// pod as the patch leaves it.
func admit(t *testing.T, h *Handler, p *corev1.Pod, op admissionv1.Operation) (*admissionv1.AdmissionResponse, Outcome, *corev1.Pod) {
	t.Helper()
	review, outcome, err := h.Review(context.Background(), reviewFor(t, p, op))
	if err != nil {
		t.Fatalf("Review: %v", err)
	}
	resp := review.Response
	if resp == nil || resp.UID != "0d3e4f5a-1111-2222-3333-444455556666" {
		t.Fatalf("response %+v does not answer the request's uid", resp)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		t.Errorf("response review is %s %s", review.APIVersion, review.Kind)
	}
	if len(resp.Patch) == 0 {
		if resp.PatchType != nil {
			t.Errorf("patch type %v without a patch", *resp.PatchType)
		}
		return resp, outcome, p
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch without JSONPatch type: %v", resp.PatchType)
	}
	var ops []patchOp
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatalf("patch is not a JSONPatch: %v", err)
	}
	for _, op := range ops {
		if op.Op != "add" {
			t.Errorf("patch has %s operation on %s: the webhook must only add", op.Op, op.Path)
		}
	}
	decoded, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("decoding patch %s: %v", resp.Patch, err)
	}
	before, _ := json.Marshal(p)
	after, err := decoded.Apply(before)
	if err != nil {
		t.Fatalf("applying patch %s: %v", resp.Patch, err)
	}
	patched := &corev1.Pod{}
	if err := json.Unmarshal(after, patched); err != nil {
		t.Fatal(err)
	}
	return resp, outcome, patched
}

func TestAdmit(t *testing.T) {
	base := func(ns string, extra map[string]string) map[string]string {
		m := map[string]string{
			api.AnnotationSourceCluster: testCluster,
			api.AnnotationDemand:        "cpu=500m,memory=1Gi,gpu=0,gpu-memory=0",
			api.AnnotationImageSize:     "15930000000",
		}
		maps.Copy(m, extra)
		for k, v := range m {
			if v == "" {
				delete(m, k)
			}
		}
		return m
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		op   admissionv1.Operation
		// want
		outcome         Outcome
		scheduler       string
		annotations     map[string]string // the pod's annotations after the patch
		denyContains    []string
		warningContains string
	}{
		{
			name: "bare pod, namespace opted in", pod: pod(enabledNS),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{api.AnnotationWorkload: "Pod/inference/model"}),
		},
		{
			name: "bare pod opted in by annotation, GPU and GPU memory", pod: pod(plainNS, withGPU, annotated(api.AnnotationMigrate, "true", api.AnnotationGPUMemory, "4Gi")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(plainNS, map[string]string{
				api.AnnotationMigrate: "true", api.AnnotationGPUMemory: "4Gi",
				api.AnnotationWorkload: "Pod/plain/model",
				api.AnnotationDemand:   "cpu=500m,memory=1Gi,gpu=1,gpu-memory=4Gi",
			}),
		},
		{
			name: "Deployment-owned pod with GPU", pod: pod(enabledNS, withGPU, ownedBy("apps/v1", "ReplicaSet", "web-5d8f")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload: "Deployment/inference/web",
				api.AnnotationDemand:   "cpu=500m,memory=1Gi,gpu=1,gpu-memory=0",
			}),
		},
		{
			name: "ReplicaSet without Deployment", pod: pod(enabledNS, ownedBy("apps/v1", "ReplicaSet", "lonely")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{api.AnnotationWorkload: "ReplicaSet/inference/lonely"}),
		},
		{
			name: "ReplicaSet of an unknown controller", pod: pod(enabledNS, ownedBy("apps/v1", "ReplicaSet", "rolled")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload:      "Rollout/inference/canary",
				api.AnnotationNotMigratable: "Rollout: " + reasonUnknown,
			}),
		},
		{
			name: "DaemonSet-owned pod", pod: pod(enabledNS, ownedBy("apps/v1", "DaemonSet", "agent")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload:      "DaemonSet/inference/agent",
				api.AnnotationNotMigratable: "DaemonSet: " + reasonDaemonSet,
			}),
		},
		{
			name: "Job-owned pod", pod: pod(enabledNS, ownedBy("batch/v1", "Job", "train")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload:      "Job/inference/train",
				api.AnnotationNotMigratable: "Job: " + reasonJob,
			}),
		},
		{
			name: "StatefulSet-owned pod", pod: pod(enabledNS, ownedBy("apps/v1", "StatefulSet", "db")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload:      "StatefulSet/inference/db",
				api.AnnotationNotMigratable: "StatefulSet: " + reasonStatefulSet,
			}),
		},
		{
			name: "Deployment with a PersistentVolumeClaim", pod: pod(enabledNS, ownedBy("apps/v1", "ReplicaSet", "web-5d8f"), withClaim),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload:      "Deployment/inference/web",
				api.AnnotationNotMigratable: "Deployment: " + api.NotMigratablePVC,
			}),
		},
		{
			name: "bare pod with a PersistentVolumeClaim", pod: pod(enabledNS, withClaim),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload:      "Pod/inference/model",
				api.AnnotationNotMigratable: "Pod: " + api.NotMigratablePVC,
			}),
		},
		{
			name: "StatefulSet with a PersistentVolumeClaim keeps its own reason", pod: pod(enabledNS, ownedBy("apps/v1", "StatefulSet", "db"), withClaim),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{
				api.AnnotationWorkload:      "StatefulSet/inference/db",
				api.AnnotationNotMigratable: "StatefulSet: " + reasonStatefulSet,
			}),
		},
		{
			name: "ConfigMap and emptyDir volumes travel", pod: pod(enabledNS, withVolume(corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}),
				withVolume(corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "labels"}}})),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{api.AnnotationWorkload: "Pod/inference/model"}),
		},
		{
			name: "bare pod with a generated name has no workload yet", pod: pod(enabledNS, func(p *corev1.Pod) { p.Name, p.GenerateName = "", "model-" }),
			outcome: OutcomePatched, scheduler: api.SchedulerName, annotations: base(enabledNS, nil),
		},
		{
			name: "custom scheduler is kept", pod: pod(enabledNS, func(p *corev1.Pod) { p.Spec.SchedulerName = "gang" }),
			outcome: OutcomePatched, scheduler: "gang",
			annotations: base(enabledNS, map[string]string{api.AnnotationWorkload: "Pod/inference/model"}),
		},
		{
			name: "an image no node knows: no image size", pod: pod(enabledNS, withSidecar("example.com/unknown:1")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{api.AnnotationWorkload: "Pod/inference/model", api.AnnotationImageSize: ""}),
		},
		{
			name: "image sizes add up, short names match", pod: pod(enabledNS, withSidecar(sideImage), withSidecar("docker.io/library/busybox:latest")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{api.AnnotationWorkload: "Pod/inference/model", api.AnnotationImageSize: "15934300000"}),
		},
		{
			name: "existing annotations are kept, others added", pod: pod(enabledNS, annotated(api.AnnotationWorkload, "Deployment/inference/other", "team", "vision")),
			outcome: OutcomePatched, scheduler: api.SchedulerName,
			annotations: base(enabledNS, map[string]string{api.AnnotationWorkload: "Deployment/inference/other", "team": "vision"}),
		},
		{
			name: "opted out by annotation in an opted-in namespace", pod: pod(enabledNS, annotated(api.AnnotationMigrate, "false")),
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName, annotations: map[string]string{api.AnnotationMigrate: "false"},
		},
		{
			name: "opted out by label", pod: pod(enabledNS, func(p *corev1.Pod) { p.Labels = map[string]string{api.LabelMigrate: "false"} }),
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName,
		},
		{
			name: "namespace not opted in", pod: pod(plainNS),
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName,
		},
		{
			name: "migrate value neither true nor false: warned, namespace decides", pod: pod(plainNS, annotated(api.AnnotationMigrate, "yes")),
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName, annotations: map[string]string{api.AnnotationMigrate: "yes"},
			warningContains: `annotation edgemigrate.io/migrate: "yes" is neither`,
		},
		{
			name: "kube-system is never touched", pod: pod(metav1.NamespaceSystem, annotated(api.AnnotationMigrate, "true")),
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName, annotations: map[string]string{api.AnnotationMigrate: "true"},
		},
		{
			name: "install namespace is never touched", pod: pod(installNS, annotated(api.AnnotationMigrate, "true")),
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName, annotations: map[string]string{api.AnnotationMigrate: "true"},
		},
		{
			name: "update is not mutated", pod: pod(enabledNS), op: admissionv1.Update,
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName,
		},
		{
			name: "malformed gpu-memory is denied", pod: pod(enabledNS, annotated(api.AnnotationGPUMemory, "four gigs")),
			outcome: OutcomeDenied, denyContains: []string{api.AnnotationGPUMemory, `"four gigs"`},
		},
		{
			name: "negative gpu-memory is denied", pod: pod(plainNS, annotated(api.AnnotationMigrate, "true", api.AnnotationGPUMemory, "-4Gi")),
			outcome: OutcomeDenied, denyContains: []string{api.AnnotationGPUMemory, `"-4Gi"`, "negative"},
		},
		{
			name: "malformed gpu-memory on a pod not opted in is not the webhook's business", pod: pod(plainNS, annotated(api.AnnotationGPUMemory, "lots")),
			outcome: OutcomeSkipped, scheduler: corev1.DefaultSchedulerName, annotations: map[string]string{api.AnnotationGPUMemory: "lots"},
		},
		{
			name: "unknown ReplicaSet: tagged without workload, warned", pod: pod(enabledNS, ownedBy("apps/v1", "ReplicaSet", "gone")),
			outcome: OutcomePatched, scheduler: api.SchedulerName, annotations: base(enabledNS, nil),
			warningContains: "reading the pod's ReplicaSet inference/gone",
		},
	}
	h := NewHandler(Config{ClusterID: testCluster, InstallNamespace: installNS}, newTestState())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := tt.op
			if op == "" {
				op = admissionv1.Create
			}
			resp, outcome, patched := admit(t, h, tt.pod, op)
			if outcome != tt.outcome {
				t.Errorf("outcome %s, want %s", outcome, tt.outcome)
			}
			if tt.warningContains != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tt.warningContains) {
				t.Errorf("warnings %q, want one containing %q", resp.Warnings, tt.warningContains)
			}
			if tt.outcome == OutcomeDenied {
				if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
					t.Fatalf("response %+v, want denied with 400", resp)
				}
				for _, s := range tt.denyContains {
					if !strings.Contains(resp.Result.Message, s) {
						t.Errorf("denial %q does not mention %s", resp.Result.Message, s)
					}
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("pod denied: %+v", resp.Result)
			}
			if patched.Spec.SchedulerName != tt.scheduler {
				t.Errorf("schedulerName %q, want %q", patched.Spec.SchedulerName, tt.scheduler)
			}
			if !maps.Equal(patched.Annotations, tt.annotations) {
				t.Errorf("annotations after patch:\n got %v\nwant %v", patched.Annotations, tt.annotations)
			}
			if tt.outcome != OutcomePatched {
				if len(resp.Patch) != 0 {
					t.Errorf("outcome %s with patch %s", outcome, resp.Patch)
				}
				return
			}
			// Reinvocation (reinvocationPolicy IfNeeded) on the patched pod adds nothing.
			again, outcome, _ := admit(t, h, patched, op)
			if len(again.Patch) != 0 || outcome != OutcomeUnchanged {
				t.Errorf("second admission of the patched pod: outcome %s, patch %s; want unchanged, empty", outcome, again.Patch)
			}
		})
	}
}

// TestAdmitFailsOpen: when the webhook cannot read the cluster it admits the pod unchanged
// and says why.
func TestAdmitFailsOpen(t *testing.T) {
	state := newTestState()
	state.nsErr = errors.New("connection refused")
	h := NewHandler(Config{ClusterID: testCluster}, state)
	resp, outcome, _ := admit(t, h, pod(enabledNS), admissionv1.Create)
	if !resp.Allowed || len(resp.Patch) != 0 || outcome != OutcomeFailedOpen {
		t.Fatalf("allowed %v patch %s outcome %s; want allowed, no patch, failed-open", resp.Allowed, resp.Patch, outcome)
	}
	if !strings.Contains(strings.Join(resp.Warnings, ""), "connection refused") {
		t.Errorf("warnings %q do not say why", resp.Warnings)
	}

	// A request without a pod is let through the same way.
	body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"namespace":"inference","operation":"CREATE"}}`)
	review, outcome, err := h.Review(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	if !review.Response.Allowed || outcome != OutcomeFailedOpen || !strings.Contains(strings.Join(review.Response.Warnings, ""), "no pod") {
		t.Errorf("request without a pod: %+v outcome %s", review.Response, outcome)
	}
}

func TestDecodeReviewErrors(t *testing.T) {
	tests := map[string]struct{ body, want string }{
		"empty":          {"", "empty request body"},
		"whitespace":     {"  \n", "empty request body"},
		"not json":       {"<xml/>", "decoding AdmissionReview"},
		"trailing data":  {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"} {}`, "decoding AdmissionReview"},
		"wrong version":  {`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`, `apiVersion "admission.k8s.io/v1beta1"`},
		"wrong kind":     {`{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}`, `kind "Pod"`},
		"no request":     {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "no request"},
		"no uid":         {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, "no uid"},
		"request a list": {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[]}`, "decoding AdmissionReview"},
		"pod not a pod":  {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"spec":{"containers":"x"}}}}`, "decoding AdmissionReview"},
		"slow quantity":  {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":{"spec":{"overhead":{"cpu":"1e-99999999"}}}}}`, "too large an exponent"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeReview([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNormalizeImage(t *testing.T) {
	tests := map[string]string{
		"busybox":                          "docker.io/library/busybox:latest",
		"busybox:1.36":                     "docker.io/library/busybox:1.36",
		"library/busybox":                  "docker.io/library/busybox:latest",
		"nvidia/cuda:12":                   "docker.io/nvidia/cuda:12",
		"nvcr.io/nvidia/l4t-ml:r35":        "nvcr.io/nvidia/l4t-ml:r35",
		"localhost:5000/model":             "localhost:5000/model:latest",
		"registry:5000/model:v1":           "registry:5000/model:v1",
		"localhost/model":                  "localhost/model:latest",
		"busybox@sha256:abc":               "docker.io/library/busybox@sha256:abc",
		"nvcr.io/nvidia/l4t@sha256:abc":    "nvcr.io/nvidia/l4t@sha256:abc",
		"docker.io/library/busybox:latest": "docker.io/library/busybox:latest",
	}
	for in, want := range tests {
		if got := normalizeImage(in); got != want {
			t.Errorf("normalizeImage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAdmitRefusesSlowQuantities: values that would take resource.ParseQuantity minutes
// are refused before decoding, with an error saying so.
func TestAdmitRefusesSlowQuantities(t *testing.T) {
	h := NewHandler(Config{ClusterID: testCluster}, newTestState())
	for _, q := range []string{"1e-99999999", strings.Repeat("9", 1<<16), "1" + strings.Repeat("0", 100) + "Ki"} {
		body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"namespace":"inference","operation":"CREATE",` +
			`"object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","resources":{"requests":{"cpu":"` + q + `"}}}]}}}}`)
		_, outcome, err := h.Review(context.Background(), body)
		if err == nil || outcome != OutcomeInvalid || !strings.Contains(err.Error(), "too large an exponent") {
			t.Errorf("quantity %.20s…: error %v outcome %s", q, err, outcome)
		}
	}
	// Ordinary values, including digests and numbers, pass.
	for _, s := range []string{"1e3", "123456789", "500m", "4Gi", "1.5", "sha256:1e99999999", "0x1e99999", "-1"} {
		if err := checkQuantities([]byte(`{"a":"` + s + `"}`)); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
	if err := checkQuantities([]byte(`{"a\"b":"c\\", "d":"1e-99999"}`)); err == nil {
		t.Error("escaped quotes hid a slow quantity")
	}
	if err := checkQuantities([]byte(`{"cpu":1e-99999999}`)); err == nil {
		t.Error("a bare JSON number with a huge exponent passed")
	}
	if err := checkQuantities([]byte(`{"cpu":2,"n":-1.5e3,"ok":[1,2]}`)); err != nil {
		t.Errorf("ordinary numbers refused: %v", err)
	}
}

// objectReview is an AdmissionReview for a pod CREATE in plainNS whose object is object, as
// JSON: what a caller, not the API server, may send.
func objectReview(kind metav1.GroupVersionKind, object string) []byte {
	k, _ := json.Marshal(kind)
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":` + string(k) +
		`,"resource":{"version":"v1","resource":"pods"},"namespace":"` + plainNS + `","operation":"CREATE","object":` + object + `}}`)
}

// TestReviewObjectKind: the object's own apiVersion and kind must be request.kind's. A
// ConfigMap or a Deployment sent under request.kind Pod, opted in by annotation, is refused
// as a malformed review (400; the API server would admit it unmutated under failurePolicy
// Ignore) and never gets a pod patch.
func TestReviewObjectKind(t *testing.T) {
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	optedIn := `"metadata":{"name":"x","namespace":"` + plainNS + `","annotations":{"edgemigrate.io/migrate":"true"}}`
	podSpec := `"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"memory":"1Gi"}}}]}`
	h := NewHandler(Config{ClusterID: testCluster, InstallNamespace: installNS}, newTestState())
	for _, tc := range []struct {
		name    string
		kind    metav1.GroupVersionKind
		object  string
		wantErr string // empty: answered
		// wantPatch is whether an answer patches.
		wantPatch bool
	}{
		{name: "ConfigMap under Pod", kind: podKind, object: `{"apiVersion":"v1","kind":"ConfigMap",` + optedIn + `,"data":{"a":"b"}}`,
			wantErr: `request.kind is v1 Pod but its object says apiVersion "v1" kind "ConfigMap"`},
		{name: "Deployment under Pod", kind: podKind, object: `{"apiVersion":"apps/v1","kind":"Deployment",` + optedIn + `,"spec":{"template":{` + podSpec + `}}}`,
			wantErr: `apiVersion "apps/v1" kind "Deployment"`},
		{name: "pod spec without apiVersion and kind", kind: podKind, object: `{` + optedIn + `,` + podSpec + `}`,
			wantErr: `apiVersion "" kind ""`},
		{name: "pod of another version", kind: podKind, object: `{"apiVersion":"v2","kind":"Pod",` + optedIn + `,` + podSpec + `}`,
			wantErr: `apiVersion "v2" kind "Pod"`},
		{name: "Pod under Deployment", kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			object: `{"apiVersion":"v1","kind":"Pod",` + optedIn + `,` + podSpec + `}`, wantErr: `request.kind is apps/v1 Deployment`},
		{name: "a real pod is patched", kind: podKind, object: `{"apiVersion":"v1","kind":"Pod",` + optedIn + `,` + podSpec + `}`, wantPatch: true},
		{name: "a Deployment under its own kind is left alone", kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			object: `{"apiVersion":"apps/v1","kind":"Deployment",` + optedIn + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			review, outcome, err := h.Review(context.Background(), objectReview(tc.kind, tc.object))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || outcome != OutcomeInvalid || review != nil {
					t.Fatalf("error %v, outcome %s, review %v; want an invalid review saying %q", err, outcome, review, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !review.Response.Allowed || (len(review.Response.Patch) != 0) != tc.wantPatch {
				t.Fatalf("allowed %v, patch %s; want allowed and a patch: %v", review.Response.Allowed, review.Response.Patch, tc.wantPatch)
			}
		})
	}
}
