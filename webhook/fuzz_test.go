package webhook

import (
	"context"
	"encoding/json"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// FuzzReview feeds arbitrary bodies to the decoder and handler: no panic; a body that is
// not an answerable review is an error with a message; an answer carries the request's
// uid and, when it patches, a JSONPatch of additions only.
// Seeds: testdata/fuzz/FuzzReview, plus the pod shapes of TestAdmit.
func FuzzReview(f *testing.F) {
	for _, p := range seedPods() {
		f.Add(reviewFor(f, p, admissionv1.Create))
	}
	// Objects that are not what request.kind says, opted in as a pod would be.
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	meta := `"metadata":{"name":"x","annotations":{"` + api.AnnotationMigrate + `":"true"}}`
	f.Add(objectReview(podKind, `{"apiVersion":"v1","kind":"ConfigMap",`+meta+`,"data":{"a":"b"}}`))
	f.Add(objectReview(podKind, `{"apiVersion":"apps/v1","kind":"Deployment",`+meta+`,"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`))
	h := NewHandler(Config{ClusterID: testCluster, InstallNamespace: installNS}, newTestState())
	f.Fuzz(func(t *testing.T, body []byte) {
		review, outcome, err := h.Review(context.Background(), body)
		if err != nil {
			if err.Error() == "" || review != nil || outcome != OutcomeInvalid {
				t.Fatalf("error %q with review %v outcome %s", err, review, outcome)
			}
			return
		}
		req, _ := decodeReview(body)
		resp := review.Response
		if resp == nil || resp.UID != req.Request.UID {
			t.Fatalf("response %+v does not answer uid %q", resp, req.Request.UID)
		}
		if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
			t.Fatalf("denied without a message: %+v", resp)
		}
		if _, err := json.Marshal(review); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
		// The pod view decides like the whole pod would.
		var whole struct {
			Request struct {
				Object *corev1.Pod `json:"object"`
			} `json:"request"`
		}
		if json.Unmarshal(body, &whole) == nil && whole.Request.Object != nil && req.Request.Pod != nil {
			want, wantErr := jetson.PodDemand(whole.Request.Object)
			have, haveErr := jetson.PodDemand(req.Request.Pod.pod())
			if want != have || (wantErr == nil) != (haveErr == nil) {
				t.Fatalf("demand over the view %v (%v), over the whole pod %v (%v)", have, haveErr, want, wantErr)
			}
		}
		if len(resp.Patch) == 0 {
			return
		}
		// Only pods are patched.
		var object struct {
			Request struct {
				Object metav1.TypeMeta `json:"object"`
			} `json:"request"`
		}
		if err := json.Unmarshal(body, &object); err != nil || object.Request.Object != (metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}) {
			t.Fatalf("patched an object of %+v (%v)", object.Request.Object, err)
		}
		var ops []patchOp
		if err := json.Unmarshal(resp.Patch, &ops); err != nil {
			t.Fatalf("patch %s is not JSON: %v", resp.Patch, err)
		}
		for _, op := range ops {
			if op.Op != "add" {
				t.Fatalf("patch %s: %s operation", resp.Patch, op.Op)
			}
		}
		if _, err := jsonpatch.DecodePatch(resp.Patch); err != nil {
			t.Fatalf("patch %s does not decode: %v", resp.Patch, err)
		}
	})
}

func seedPods() []*corev1.Pod {
	return []*corev1.Pod{
		pod(enabledNS),
		pod(plainNS, withGPU, annotated(api.AnnotationMigrate, "true", api.AnnotationGPUMemory, "4Gi")),
		pod(enabledNS, ownedBy("apps/v1", "ReplicaSet", "web-5d8f")),
		pod(enabledNS, ownedBy("apps/v1", "DaemonSet", "agent")),
		pod(enabledNS, annotated(api.AnnotationGPUMemory, "1e-99999999")),
		pod(enabledNS, annotated(api.AnnotationMigrate, "false")),
	}
}
