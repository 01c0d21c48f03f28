// Package webhook is edgemigrate's mutating admission webhook. It opts pods in (namespace
// label or pod annotation), points them at the Jetson-aware scheduler and tags them with
// the metadata a migration needs: source cluster, the workload that would move, demand and
// image size. It only ever adds to a pod, so running it twice changes nothing, and its own
// failures let the pod through unchanged: it must never be why a pod could not be created.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// Config is what the handler writes and where it must stay out.
type Config struct {
	// ClusterID is written as edgemigrate.io/source-cluster.
	ClusterID string
	// SchedulerName replaces the default scheduler on opted-in pods.
	SchedulerName string
	// InstallNamespace is the webhook's own namespace, never mutated.
	InstallNamespace string
}

// State is what the handler reads from the cluster.
type State interface {
	// NamespaceLabels returns a namespace's labels.
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
	// ReplicaSetController returns the controller of a ReplicaSet, nil when it has none.
	ReplicaSetController(ctx context.Context, namespace, name string) (*metav1.OwnerReference, error)
	// ImageSize returns an image's size as some node's status.images reports it.
	ImageSize(image string) (int64, bool)
}

// Outcome is what the handler did with one request; it labels the metrics.
type Outcome string

const (
	// OutcomePatched: an opted-in pod got a non-empty patch.
	OutcomePatched Outcome = "patched"
	// OutcomeUnchanged: an opted-in pod already carried everything (a reinvocation).
	OutcomeUnchanged Outcome = "unchanged"
	// OutcomeSkipped: not a pod create, a protected namespace, or a pod not opted in.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeDenied: the pod's author made a mistake the webhook reports.
	OutcomeDenied Outcome = "denied"
	// OutcomeFailedOpen: the webhook could not do its job and let the pod through.
	OutcomeFailedOpen Outcome = "failed-open"
	// OutcomeInvalid: the body was not an AdmissionReview.
	OutcomeInvalid Outcome = "invalid"
)

// protectedNamespaces are never mutated, whatever the webhook configuration says.
var protectedNamespaces = map[string]bool{
	metav1.NamespaceSystem:    true,
	metav1.NamespacePublic:    true,
	corev1.NamespaceNodeLease: true,
}

// Handler answers AdmissionReviews for pods.
type Handler struct {
	cfg   Config
	state State
}

// NewHandler returns a handler writing cfg and reading state.
func NewHandler(cfg Config, state State) *Handler {
	if cfg.SchedulerName == "" {
		cfg.SchedulerName = api.SchedulerName
	}
	return &Handler{cfg: cfg, state: state}
}

// Review decodes an AdmissionReview and answers it. An error means body is not a review the
// handler can answer (the HTTP layer answers 400 with it).
func (h *Handler) Review(ctx context.Context, body []byte) (*admissionv1.AdmissionReview, Outcome, error) {
	review, err := decodeReview(body)
	if err != nil {
		return nil, OutcomeInvalid, err
	}
	var pod *corev1.Pod
	if review.Request.Pod != nil {
		pod = review.Request.Pod.pod()
	}
	resp, outcome := h.Admit(ctx, &review.Request.AdmissionRequest, pod)
	return responseReview(resp), outcome, nil
}

// Admit answers one admission request for pod, the request's object.
func (h *Handler) Admit(ctx context.Context, req *admissionv1.AdmissionRequest, pod *corev1.Pod) (*admissionv1.AdmissionResponse, Outcome) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return resp, OutcomeSkipped
	}
	ns := req.Namespace
	if protectedNamespaces[ns] || ns == h.cfg.InstallNamespace || ns == "" {
		return resp, OutcomeSkipped
	}
	if pod == nil {
		return failOpen(resp, ns, req.Name, errors.New("the request carries no pod"))
	}
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(ns, podName(pod)), "uid", req.UID)

	in, warning, err := h.optedIn(ctx, ns, pod)
	if warning != "" {
		resp.Warnings = append(resp.Warnings, warning)
	}
	if err != nil {
		return failOpen(resp, ns, podName(pod), err)
	}
	if !in {
		return resp, OutcomeSkipped
	}

	demand, err := jetson.PodDemand(pod)
	if err != nil {
		// The author's mistake, shown where they can see it: admitting the pod with no GPU
		// memory would let the scheduler overcommit a Jetson's shared memory.
		logger.V(2).Info("Denying pod", "reason", err)
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest,
			Reason: metav1.StatusReasonBadRequest, Message: err.Error()}
		return resp, OutcomeDenied
	}

	b := patchBuilder{hasAnnotations: pod.Annotations != nil}
	if pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == corev1.DefaultSchedulerName {
		b.schedulerName = h.cfg.SchedulerName
	}
	if h.cfg.ClusterID != "" {
		b.annotate(pod.Annotations, api.AnnotationSourceCluster, h.cfg.ClusterID)
	}
	b.annotate(pod.Annotations, api.AnnotationDemand, demand.String())
	if _, done := pod.Annotations[api.AnnotationWorkload]; !done {
		w, err := h.workload(ctx, ns, pod)
		if err != nil {
			// The rest of the patch is still right; only the workload is unknown.
			logger.Error(err, "Resolving the pod's workload; admitting it without")
			resp.Warnings = append(resp.Warnings, "edgemigrate webhook: "+err.Error())
		} else if w.name != "" {
			b.annotate(pod.Annotations, api.AnnotationWorkload, w.name)
			if w.notMigratable != "" {
				b.annotate(pod.Annotations, api.AnnotationNotMigratable, w.notMigratable)
			}
		}
	}
	if size, ok := h.imageSize(pod); ok {
		b.annotate(pod.Annotations, api.AnnotationImageSize, strconv.FormatInt(size, 10))
	}
	if b.empty() {
		return resp, OutcomeUnchanged
	}
	patch, err := b.marshal()
	if err != nil {
		return failOpen(resp, ns, podName(pod), fmt.Errorf("encoding the patch: %w", err))
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	logger.V(4).Info("Patching pod", "patch", string(patch))
	return resp, OutcomePatched
}

// optedIn applies the opt-in rules: the pod's own migrate=true/false wins; otherwise the
// namespace's enabled=true label. A migrate value other than true or false is a warning
// the author sees, and the pod is treated as if it had none.
func (h *Handler) optedIn(ctx context.Context, ns string, pod *corev1.Pod) (bool, string, error) {
	if pod.Labels[api.LabelMigrate] == "false" {
		return false, "", nil
	}
	var warning string
	if v, ok := pod.Annotations[api.AnnotationMigrate]; ok {
		switch v {
		case "true":
			return true, "", nil
		case "false":
			return false, "", nil
		default:
			warning = fmt.Sprintf("annotation %s: %q is neither \"true\" nor \"false\"; ignored", api.AnnotationMigrate, v)
		}
	}
	labels, err := h.state.NamespaceLabels(ctx, ns)
	if err != nil {
		return false, warning, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	return labels[api.LabelNamespaceEnabled] == "true", warning, nil
}

// imageSize sums the sizes of the pod's distinct images, if every one is known.
func (h *Handler) imageSize(pod *corev1.Pod) (int64, bool) {
	var total int64
	seen := make(map[string]bool, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			// One image spelled two ways is pulled once.
			key := normalizeImage(list[i].Image)
			if seen[key] {
				continue
			}
			seen[key] = true
			size, ok := h.state.ImageSize(key)
			if !ok {
				return 0, false
			}
			total += size
		}
	}
	return total, total > 0
}

// failOpen lets the pod through unchanged and says why, to the log and to the author.
func failOpen(resp *admissionv1.AdmissionResponse, ns, name string, err error) (*admissionv1.AdmissionResponse, Outcome) {
	klog.ErrorS(err, "Admitting pod unchanged", "pod", klog.KRef(ns, name))
	resp.Warnings = append(resp.Warnings, "edgemigrate webhook did not tag this pod: "+err.Error())
	return resp, OutcomeFailedOpen
}

// podName is the pod's name, or its generateName prefix: names are generated after
// mutating admission.
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}
