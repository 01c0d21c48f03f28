package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// reviewAPIVersion and reviewKind are the only AdmissionReview the webhook speaks; its
// MutatingWebhookConfiguration lists admissionReviewVersions: ["v1"].
var (
	reviewAPIVersion = admissionv1.SchemeGroupVersion.String()
	reviewKind       = "AdmissionReview"
)

// admissionReview is an admission.k8s.io/v1 AdmissionReview whose object is decoded as a
// pod in the same pass: decoding the envelope and then its raw object would scan the pod
// twice more.
type admissionReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *admissionRequest `json:"request"`
}

// admissionRequest is an AdmissionRequest with its object decoded as a pod.
type admissionRequest struct {
	admissionv1.AdmissionRequest
	// Pod shadows AdmissionRequest.Object (same JSON name, shallower): the object, if any,
	// as far as the handler reads it.
	Pod *podView `json:"object"`
}

// decodeReview parses an admission.k8s.io/v1 AdmissionReview carrying a request. Every
// way body can be wrong is an error saying what was expected.
func decodeReview(body []byte) (*admissionReview, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty request body: want an admission.k8s.io/v1 AdmissionReview")
	}
	if err := checkQuantities(body); err != nil {
		return nil, fmt.Errorf("refusing to decode AdmissionReview: %w", err)
	}
	review := &admissionReview{}
	if err := json.Unmarshal(body, review); err != nil {
		return nil, fmt.Errorf("decoding AdmissionReview: %w", err)
	}
	if review.APIVersion != reviewAPIVersion || review.Kind != reviewKind {
		return nil, fmt.Errorf("got apiVersion %q kind %q: want %s %s", review.APIVersion, review.Kind, reviewAPIVersion, reviewKind)
	}
	if review.Request == nil {
		return nil, errors.New("AdmissionReview has no request")
	}
	if review.Request.UID == "" {
		return nil, errors.New("AdmissionReview request has no uid")
	}
	if err := checkObjectKind(review.Request); err != nil {
		return nil, err
	}
	return review, nil
}

// checkObjectKind refuses a request whose object is not of request.kind: the API server
// always sends the object with its own apiVersion and kind, so a ConfigMap or a Deployment
// under request.kind Pod is a caller's error, and patching it as a pod would hand back a
// patch for an object that is not one.
func checkObjectKind(req *admissionRequest) error {
	if req.Pod == nil {
		return nil // no object: nothing to contradict (Admit says what it makes of that)
	}
	want := schema.GroupVersion{Group: req.Kind.Group, Version: req.Kind.Version}.String()
	if req.Pod.APIVersion != want || req.Pod.Kind != req.Kind.Kind {
		return fmt.Errorf("AdmissionReview request.kind is %s %s but its object says apiVersion %q kind %q: refusing a review whose object is not what it claims",
			want, req.Kind.Kind, req.Pod.APIVersion, req.Pod.Kind)
	}
	return nil
}

// responseReview wraps resp in the AdmissionReview the API server expects back.
func responseReview(resp *admissionv1.AdmissionResponse) *admissionv1.AdmissionReview {
	review := &admissionv1.AdmissionReview{Response: resp}
	review.APIVersion = reviewAPIVersion
	review.Kind = reviewKind
	return review
}
