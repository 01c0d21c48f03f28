package webhook

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/edgemigrate/edgemigrate/api"
)

// workload is the owner that would be migrated, as edgemigrate.io/workload writes it
// (kind/namespace/name), and why it will not be, when it will not.
type workload struct {
	name          string
	notMigratable string
}

// Reasons written in edgemigrate.io/not-migratable, after "<Kind>: ".
const (
	reasonDaemonSet   = "one pod per node, placed by the DaemonSet: there is nothing to move"
	reasonJob         = "runs to completion: starting it again elsewhere would repeat its work"
	reasonStatefulSet = "stable identity and volumes are bound to this cluster"
	reasonUnknown     = "edgemigrate does not know how to move this owner"
)

const (
	appsGroup  = "apps"
	batchGroup = "batch"
)

// workload resolves the owner that would move: a bare pod is itself; a ReplicaSet's pod is
// its Deployment's (or the ReplicaSet's, when it has no Deployment). Pods of DaemonSets,
// Jobs, StatefulSets and unknown controllers are tagged not migratable, and so is a
// movable owner whose pods mount a PersistentVolumeClaim. A bare pod whose name is still
// to be generated has no workload yet: it is the pod itself.
func (h *Handler) workload(ctx context.Context, ns string, pod *corev1.Pod) (workload, error) {
	w, err := h.owner(ctx, ns, pod)
	if err != nil || w.name == "" || w.notMigratable != "" {
		return w, err
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			kind, _, _ := strings.Cut(w.name, "/")
			w.notMigratable = kind + ": " + api.NotMigratablePVC
			break
		}
	}
	return w, nil
}

// owner is workload without the volume check.
func (h *Handler) owner(ctx context.Context, ns string, pod *corev1.Pod) (workload, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		if pod.Name == "" {
			return workload{}, nil
		}
		return workload{name: "Pod/" + ns + "/" + pod.Name}, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return workload{}, fmt.Errorf("pod's controller %s %s: bad apiVersion: %w", ref.Kind, ref.Name, err)
	}
	name := ref.Kind + "/" + ns + "/" + ref.Name
	switch {
	case gv.Group == appsGroup && ref.Kind == "ReplicaSet":
		owner, err := h.state.ReplicaSetController(ctx, ns, ref.Name)
		if err != nil {
			return workload{}, fmt.Errorf("reading the pod's ReplicaSet %s/%s: %w", ns, ref.Name, err)
		}
		if owner == nil {
			return workload{name: name}, nil
		}
		// A malformed apiVersion leaves the group empty: an unknown owner, not migratable.
		ownerGV, _ := schema.ParseGroupVersion(owner.APIVersion)
		ownerName := owner.Kind + "/" + ns + "/" + owner.Name
		if ownerGV.Group == appsGroup && owner.Kind == "Deployment" {
			return workload{name: ownerName}, nil
		}
		return workload{name: ownerName, notMigratable: owner.Kind + ": " + reasonUnknown}, nil
	case gv.Group == appsGroup && ref.Kind == "DaemonSet":
		return workload{name: name, notMigratable: ref.Kind + ": " + reasonDaemonSet}, nil
	case gv.Group == appsGroup && ref.Kind == "StatefulSet":
		return workload{name: name, notMigratable: ref.Kind + ": " + reasonStatefulSet}, nil
	case gv.Group == batchGroup && ref.Kind == "Job":
		return workload{name: name, notMigratable: ref.Kind + ": " + reasonJob}, nil
	default:
		return workload{name: name, notMigratable: ref.Kind + ": " + reasonUnknown}, nil
	}
}
