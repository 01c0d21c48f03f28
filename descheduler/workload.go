package descheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// workloadManifest is what travels on the ledger: the workload as the destination should
// create it. Only the fields a user wrote survive: no status, uid, node or owner.
type workloadManifest struct {
	Kind       string             `json:"kind"`
	Deployment *appsv1.Deployment `json:"deployment,omitempty"`
	Pod        *corev1.Pod        `json:"pod,omitempty"`
}

// Annotations that describe a copy in one cluster rather than the service: the destination's
// webhook and controllers write their own.
var localAnnotations = []string{
	api.AnnotationSourceCluster, api.AnnotationWorkload, api.AnnotationDemand, api.AnnotationImageSize,
	api.AnnotationNotMigratable, api.AnnotationMigratedTo, api.AnnotationMigrationID, api.AnnotationMigratedFrom,
	"deployment.kubernetes.io/revision", corev1.LastAppliedConfigAnnotation,
}

func cleanMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: m.Labels}
	for k, v := range m.Annotations {
		if !slices.Contains(localAnnotations, k) {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out
}

// snapshot reads a workload and returns its manifest, a representative pod (for its demand
// and metadata) and its replica count. A Deployment's representative is its template.
func (c *Controller) snapshot(ref v1alpha1.WorkloadReference, namespace string) (*workloadManifest, *corev1.Pod, int32, error) {
	switch ref.Kind {
	case v1alpha1.KindDeployment:
		d, err := c.deployments.Deployments(namespace).Get(ref.Name)
		if err != nil {
			return nil, nil, 0, err
		}
		replicas := ptr.Deref(d.Spec.Replicas, 1)
		copyD := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: cleanMeta(d.ObjectMeta),
			Spec:       *d.Spec.DeepCopy(),
		}
		copyD.Spec.Replicas = &replicas
		copyD.Spec.Template.ObjectMeta = cleanMeta(copyD.Spec.Template.ObjectMeta)
		rep := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
		rep.Namespace = namespace
		// A running pod knows its IP, container and image size.
		if pods, err := c.pods.Pods(namespace).List(selectorOf(d)); err == nil {
			for _, p := range pods {
				if p.Status.Phase == corev1.PodRunning {
					rep.Status, rep.Annotations = p.Status, p.Annotations
					break
				}
			}
		}
		return &workloadManifest{Kind: ref.Kind, Deployment: copyD}, rep, replicas, nil
	case v1alpha1.KindPod:
		p, err := c.pods.Pods(namespace).Get(ref.Name)
		if err != nil {
			return nil, nil, 0, err
		}
		copyP := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: cleanMeta(p.ObjectMeta), Spec: *p.Spec.DeepCopy()}
		copyP.Spec.NodeName = ""
		// The Priority admission plugin computes it from priorityClassName and refuses a copy.
		copyP.Spec.Priority = nil
		return &workloadManifest{Kind: ref.Kind, Pod: copyP}, p, 1, nil
	}
	return nil, nil, 0, fmt.Errorf("workload kind %q: want Deployment or Pod", ref.Kind)
}

func selectorOf(d *appsv1.Deployment) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

// proposal builds the ledger proposal of a source Migration.
func (c *Controller) proposal(m *v1alpha1.Migration, id string) (chaincode.Proposal, int32, error) {
	manifest, rep, replicas, err := c.snapshot(m.Spec.Workload, m.Namespace)
	if err != nil {
		return chaincode.Proposal{}, 0, err
	}
	spec, err := json.Marshal(manifest)
	if err != nil {
		return chaincode.Proposal{}, 0, fmt.Errorf("encoding the workload: %w", err)
	}
	if len(spec) > chaincode.MaxSpecBytes {
		return chaincode.Proposal{}, 0, fmt.Errorf("the workload's manifest is %d bytes, more than the ledger's %d", len(spec), chaincode.MaxSpecBytes)
	}
	d, err := jetson.PodDemand(rep)
	if err != nil {
		return chaincode.Proposal{}, 0, fmt.Errorf("reading the workload's demand: %w", err)
	}
	meta := chaincode.WorkloadMetadata{SourceIP: rep.Status.PodIP, CPUMilli: d.CPUMilli, MemoryBytes: d.Memory,
		GPUSlots: d.GPUSlots, GPUMemoryBytes: d.GPUMemory}
	if len(rep.Spec.Containers) > 0 {
		meta.Image = rep.Spec.Containers[0].Image
	}
	if len(rep.Status.ContainerStatuses) > 0 {
		meta.ContainerID = rep.Status.ContainerStatuses[0].ContainerID
	}
	if n, err := strconv.ParseInt(rep.Annotations[api.AnnotationImageSize], 10, 64); err == nil && n > 0 {
		meta.ImageSizeBytes = n
	}
	p := chaincode.Proposal{ID: id, Source: c.cfg.ClusterID, Workload: workloadKey(m.Namespace, m.Spec.Workload.Kind, m.Spec.Workload.Name),
		Spec: string(spec), Metadata: meta, Reason: string(m.Spec.Reason),
		Deadline: c.clock.Now().Add(c.cfg.BidTimeout).UTC().Format(time.RFC3339Nano)}
	if l := m.Spec.ClientLocation; l != nil {
		p.ClientLocation = &chaincode.Location{Lat: l.Lat, Lon: l.Lon}
	}
	return p, replicas, nil
}

func pointOf(l chaincode.Location) geo.Point { return geo.Point{Lat: l.Lat, Lon: l.Lon} }

func decodeManifest(spec string) (*workloadManifest, error) {
	var w workloadManifest
	if err := json.Unmarshal([]byte(spec), &w); err != nil {
		return nil, fmt.Errorf("decoding the workload manifest: %w", err)
	}
	switch {
	case w.Kind == v1alpha1.KindDeployment && w.Deployment != nil:
	case w.Kind == v1alpha1.KindPod && w.Pod != nil:
	default:
		return nil, fmt.Errorf("the workload manifest holds no %q", w.Kind)
	}
	return &w, nil
}

// specReplicas is how many replicas a manifest asks for; 1 when it cannot tell.
func specReplicas(spec string) int32 {
	w, err := decodeManifest(spec)
	if err != nil || w.Deployment == nil {
		return 1
	}
	return ptr.Deref(w.Deployment.Spec.Replicas, 1)
}

// ensureCreated creates the migrated workload in this cluster, or takes over a copy that an
// earlier migration left scaled to zero here (the service coming back). It reports whether
// the workload is Ready.
func (c *Controller) ensureCreated(ctx context.Context, w *workloadManifest, id, source string) (bool, error) {
	tag := func(meta *metav1.ObjectMeta) {
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		meta.Annotations[api.AnnotationMigrationID] = id
		meta.Annotations[api.AnnotationMigratedFrom] = source
	}
	switch w.Kind {
	case v1alpha1.KindDeployment:
		want := w.Deployment.DeepCopy()
		if err := c.ensureNamespace(ctx, want.Namespace); err != nil {
			return false, err
		}
		tag(&want.ObjectMeta)
		deployments := c.kube.AppsV1().Deployments(want.Namespace)
		have, err := deployments.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			have, err = deployments.Create(ctx, want, metav1.CreateOptions{})
			if err != nil {
				return false, fmt.Errorf("creating Deployment %s/%s: %w", want.Namespace, want.Name, err)
			}
		case err != nil:
			return false, err
		case have.Annotations[api.AnnotationMigrationID] == id:
		case have.Annotations[api.AnnotationMigratedTo] != "" && ptr.Deref(have.Spec.Replicas, 1) == 0:
			// The service left this cluster earlier and comes back: scale its old copy up.
			have.Spec = want.Spec
			delete(have.Annotations, api.AnnotationMigratedTo)
			tag(&have.ObjectMeta)
			if have, err = deployments.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
				return false, fmt.Errorf("scaling up Deployment %s/%s: %w", want.Namespace, want.Name, err)
			}
		default:
			return false, errConflict{fmt.Sprintf("a different Deployment %s/%s already runs here", want.Namespace, want.Name)}
		}
		return have.Status.ObservedGeneration >= have.Generation && have.Status.ReadyReplicas >= ptr.Deref(have.Spec.Replicas, 1) &&
			have.Status.UpdatedReplicas >= ptr.Deref(have.Spec.Replicas, 1), nil
	case v1alpha1.KindPod:
		want := w.Pod.DeepCopy()
		if err := c.ensureNamespace(ctx, want.Namespace); err != nil {
			return false, err
		}
		tag(&want.ObjectMeta)
		pods := c.kube.CoreV1().Pods(want.Namespace)
		have, err := pods.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if have, err = pods.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return false, fmt.Errorf("creating Pod %s/%s: %w", want.Namespace, want.Name, err)
			}
		case err != nil:
			return false, err
		case have.Annotations[api.AnnotationMigrationID] != id:
			return false, errConflict{fmt.Sprintf("a different Pod %s/%s already runs here", want.Namespace, want.Name)}
		}
		return podReady(have), nil
	}
	return false, fmt.Errorf("workload kind %q", w.Kind)
}

// errConflict: the destination cannot create the workload; it reports failure at once.
type errConflict struct{ msg string }

func (e errConflict) Error() string { return e.msg }

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Controller) ensureNamespace(ctx context.Context, name string) error {
	_, err := c.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("ensuring namespace %s: %w", name, err)
	}
	return nil
}

// removeCreated undoes ensureCreated for migration id: a Deployment it created is deleted,
// an old copy it scaled up (created before since) goes back to zero replicas, pointing at
// the source that still runs the service; a Pod it created is deleted.
func (c *Controller) removeCreated(ctx context.Context, w *workloadManifest, id, source string, since time.Time) error {
	switch w.Kind {
	case v1alpha1.KindDeployment:
		deployments := c.kube.AppsV1().Deployments(w.Deployment.Namespace)
		have, err := deployments.Get(ctx, w.Deployment.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && have.Annotations[api.AnnotationMigrationID] != id) {
			return nil
		}
		if err != nil {
			return err
		}
		if have.CreationTimestamp.Time.Before(since) {
			zero := int32(0)
			have.Spec.Replicas = &zero
			have.Annotations[api.AnnotationMigratedTo] = source
			delete(have.Annotations, api.AnnotationMigrationID)
			_, err := deployments.Update(ctx, have, metav1.UpdateOptions{})
			return err
		}
		err = deployments.Delete(ctx, have.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &have.UID}})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	case v1alpha1.KindPod:
		pods := c.kube.CoreV1().Pods(w.Pod.Namespace)
		have, err := pods.Get(ctx, w.Pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && have.Annotations[api.AnnotationMigrationID] != id) {
			return nil
		}
		if err != nil {
			return err
		}
		err = pods.Delete(ctx, have.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &have.UID}})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	return nil
}
