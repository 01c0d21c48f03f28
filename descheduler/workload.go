package descheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/webhook"
)

// workloadManifest is the workload in a bundle, as the destination should create it. Only
// the fields a user wrote survive: no status, uid, node or owner.
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
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace}
	for k, v := range m.Labels {
		// The migration that created this copy is not the next one's.
		if k != api.LabelMigrationID {
			metav1.SetMetaDataLabel(&out, k, v)
		}
	}
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

// snapshot reads a workload and returns it as the destination should create it, with its
// origin (api.AnnotationOrigin) written on it.
func (c *Controller) snapshot(ref v1alpha1.WorkloadReference, namespace string) (*workloadManifest, error) {
	switch ref.Kind {
	case v1alpha1.KindDeployment:
		d, err := c.deployments.Deployments(namespace).Get(ref.Name)
		if err != nil {
			return nil, err
		}
		copyD := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: cleanMeta(d.ObjectMeta),
			Spec:       *d.Spec.DeepCopy(),
		}
		copyD.Spec.Replicas = ptr.To(ptr.Deref(d.Spec.Replicas, 1))
		copyD.Spec.Template.ObjectMeta = cleanMeta(copyD.Spec.Template.ObjectMeta)
		metav1.SetMetaDataAnnotation(&copyD.ObjectMeta, api.AnnotationOrigin, originOf(c.cfg.ClusterID, &d.ObjectMeta))
		return &workloadManifest{Kind: ref.Kind, Deployment: copyD}, nil
	case v1alpha1.KindPod:
		p, err := c.pods.Pods(namespace).Get(ref.Name)
		if err != nil {
			return nil, err
		}
		// Its controller would recreate it here: the service would run twice.
		if owner := metav1.GetControllerOf(p); owner != nil {
			return nil, errNotMigratable{ownedPodReason(owner)}
		}
		copyP := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: cleanMeta(p.ObjectMeta), Spec: *p.Spec.DeepCopy()}
		copyP.Spec.NodeName = ""
		// The Priority admission plugin computes it from priorityClassName and refuses a copy;
		// ephemeral containers cannot be set on create.
		copyP.Spec.Priority, copyP.Spec.EphemeralContainers = nil, nil
		metav1.SetMetaDataAnnotation(&copyP.ObjectMeta, api.AnnotationOrigin, originOf(c.cfg.ClusterID, &p.ObjectMeta))
		return &workloadManifest{Kind: ref.Kind, Pod: copyP}, nil
	}
	return nil, fmt.Errorf("workload kind %q: want Deployment or Pod", ref.Kind)
}

// ownedPodReason says why a pod its controller owns does not move as a Pod, and what does.
func ownedPodReason(owner *metav1.OwnerReference) string {
	what := "migrate its owner instead, if edgemigrate moves that kind (Deployments and bare Pods only)"
	if owner.Kind == "ReplicaSet" {
		what = "migrate its Deployment"
	}
	return fmt.Sprintf("pod is owned by %s %s; %s", owner.Kind, owner.Name, what)
}

func selectorOf(d *appsv1.Deployment) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

// proposal builds the ledger proposal of a source Migration: the workload's metadata and
// the digest of its bundle, which is built and stored on the first call and reused after.
func (c *Controller) proposal(ctx context.Context, m *v1alpha1.Migration, id string) (chaincode.Proposal, int32, error) {
	data, err := c.storedBundle(ctx, id)
	if apierrors.IsNotFound(err) {
		b, err := c.buildBundle(m.Spec.Workload, m.Namespace)
		if err != nil {
			return chaincode.Proposal{}, 0, err
		}
		if data, err = encodeBundle(b); err != nil {
			return chaincode.Proposal{}, 0, err
		}
		if data, err = c.storeBundle(ctx, id, data); err != nil {
			return chaincode.Proposal{}, 0, err
		}
	} else if err != nil {
		return chaincode.Proposal{}, 0, err
	}
	b, err := decodeBundle(data)
	if err != nil {
		return chaincode.Proposal{}, 0, fmt.Errorf("the stored bundle of %s: %w", id, err)
	}
	d, replicas, err := demandOf(b)
	if err != nil {
		return chaincode.Proposal{}, 0, err
	}
	rep := b.Workload.template()
	meta := chaincode.WorkloadMetadata{CPUMilli: d.CPUMilli, MemoryBytes: d.Memory, GPUSlots: d.GPUSlots, GPUMemoryBytes: d.GPUMemory,
		Replicas: replicas, Requires: requirementsOf(&rep.Spec), Origin: b.Origin}
	sizes := c.imageSizes()
	for _, img := range imagesOf(&rep.Spec) {
		size, _ := sizes.Size(img)
		meta.Images = append(meta.Images, chaincode.Image{Name: img, SizeBytes: size})
	}
	if len(rep.Spec.Containers) > 0 {
		meta.Image = rep.Spec.Containers[0].Image
		meta.ImageSizeBytes, _ = sizes.Size(meta.Image)
	}
	// A running pod knows its IP and container.
	for _, p := range c.podsOf(m.Namespace, m.Spec.Workload) {
		if p.Status.Phase == corev1.PodRunning {
			meta.SourceIP = p.Status.PodIP
			if len(p.Status.ContainerStatuses) > 0 {
				meta.ContainerID = p.Status.ContainerStatuses[0].ContainerID
			}
			break
		}
	}
	p := chaincode.Proposal{ID: id, Source: c.cfg.ClusterID, Workload: workloadKey(m.Namespace, m.Spec.Workload.Kind, m.Spec.Workload.Name),
		Metadata: meta, BundleDigest: digestOf(data), Reason: string(m.Spec.Reason),
		BidTimeoutMillis: c.cfg.BidTimeout.Milliseconds()}
	if l := m.Spec.ClientLocation; l != nil {
		p.ClientLocation = &chaincode.Location{Lat: l.Lat, Lon: l.Lon}
	}
	return p, replicas, nil
}

// imageSizes indexes the sizes of the images this cluster's nodes hold.
func (c *Controller) imageSizes() *webhook.ImageIndex {
	nodes, _ := c.nodes.List(labels.Everything())
	var ix webhook.ImageIndex
	ix.Rebuild(nodes)
	return &ix
}

func pointOf(l chaincode.Location) geo.Point { return geo.Point{Lat: l.Lat, Lon: l.Lon} }

// hostedObject is one kind of object a bundle carries, as its typed client serves it.
type hostedObject interface {
	metav1.Object
	runtime.Object
}

type objectClient[T hostedObject] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// tagCopy marks an object this cluster creates for migration id of a service of origin.
func tagCopy(m *metav1.ObjectMeta, id, source, origin string) {
	metav1.SetMetaDataLabel(m, api.LabelMigrationID, id)
	metav1.SetMetaDataAnnotation(m, api.AnnotationMigrationID, id)
	metav1.SetMetaDataAnnotation(m, api.AnnotationMigratedFrom, source)
	metav1.SetMetaDataAnnotation(m, api.AnnotationOrigin, origin)
}

// ensureObject creates want, or takes over an object of the same name that an earlier
// migration of the same service left here (owned says so); any other is a conflict.
// keep copies into want what the cluster assigned to the existing object.
func ensureObject[T hostedObject](ctx context.Context, client objectClient[T], kind string, want T, id string, owned func(metav1.Object) bool, keep func(have, want T)) error {
	have, err := client.Get(ctx, want.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := client.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s/%s: %w", kind, want.GetNamespace(), want.GetName(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading %s %s/%s: %w", kind, want.GetNamespace(), want.GetName(), err)
	case have.GetLabels()[api.LabelMigrationID] == id:
		return nil
	case !owned(have):
		return errRefused{fmt.Sprintf("%s %s/%s already exists here and is not this service's", kind, want.GetNamespace(), want.GetName())}
	}
	// Updated in place: the same object, created when it was.
	want.SetResourceVersion(have.GetResourceVersion())
	want.SetUID(have.GetUID())
	want.SetCreationTimestamp(have.GetCreationTimestamp())
	if keep != nil {
		keep(have, want)
	}
	if _, err := client.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating %s %s/%s: %w", kind, want.GetNamespace(), want.GetName(), err)
	}
	return nil
}

// ensureCreated creates a bundle's objects in namespace ns of this cluster, the workload
// last, or takes over a copy that an earlier migration of the same service left scaled to
// zero here (the service coming back). It reports whether the workload is Ready.
func (c *Controller) ensureCreated(ctx context.Context, kube kubernetes.Interface, b *serviceBundle, ns, id, source string) (bool, error) {
	if err := c.joinsForeignService(b, ns); err != nil {
		return false, err
	}
	owned := func(m metav1.Object) bool { return c.isService(m, b.Origin) }
	tag := func(m *metav1.ObjectMeta) {
		m.Namespace = ns
		tagCopy(m, id, source, b.Origin)
	}
	for i := range b.Services {
		s := b.Services[i].DeepCopy()
		tag(&s.ObjectMeta)
		err := ensureObject(ctx, kube.CoreV1().Services(ns), "Service", s, id, owned, func(have, want *corev1.Service) {
			want.Spec.ClusterIP, want.Spec.ClusterIPs = have.Spec.ClusterIP, have.Spec.ClusterIPs
			want.Spec.IPFamilies, want.Spec.IPFamilyPolicy = have.Spec.IPFamilies, have.Spec.IPFamilyPolicy
		})
		if err != nil {
			return false, err
		}
	}
	for i := range b.ConfigMaps {
		cm := b.ConfigMaps[i].DeepCopy()
		tag(&cm.ObjectMeta)
		if err := ensureObject(ctx, kube.CoreV1().ConfigMaps(ns), "ConfigMap", cm, id, owned, nil); err != nil {
			return false, err
		}
	}
	if b.PodDisruptionBudget != nil {
		pdb := b.PodDisruptionBudget.DeepCopy()
		tag(&pdb.ObjectMeta)
		if err := ensureObject(ctx, kube.PolicyV1().PodDisruptionBudgets(ns), "PodDisruptionBudget", pdb, id, owned, nil); err != nil {
			return false, err
		}
	}
	if b.HorizontalPodAutoscaler != nil {
		hpa := b.HorizontalPodAutoscaler.DeepCopy()
		tag(&hpa.ObjectMeta)
		if err := ensureObject(ctx, kube.AutoscalingV2().HorizontalPodAutoscalers(ns), "HorizontalPodAutoscaler", hpa, id, owned, nil); err != nil {
			return false, err
		}
	}
	w := b.Workload
	switch w.Kind {
	case v1alpha1.KindDeployment:
		want := w.Deployment.DeepCopy()
		tag(&want.ObjectMeta)
		deployments := kube.AppsV1().Deployments(ns)
		have, err := deployments.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			have, err = deployments.Create(ctx, want, metav1.CreateOptions{})
			if err != nil {
				return false, fmt.Errorf("creating Deployment %s/%s: %w", ns, want.Name, err)
			}
		case err != nil:
			return false, err
		case have.Labels[api.LabelMigrationID] == id:
		case have.Annotations[api.AnnotationOrigin] == b.Origin && have.Annotations[api.AnnotationMigratedTo] != "" && ptr.Deref(have.Spec.Replicas, 1) == 0:
			// The same service left this cluster earlier and comes back: scale its old copy up.
			have.Spec = want.Spec
			delete(have.Annotations, api.AnnotationMigratedTo)
			tagCopy(&have.ObjectMeta, id, source, b.Origin)
			if have, err = deployments.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
				return false, fmt.Errorf("scaling up Deployment %s/%s: %w", ns, want.Name, err)
			}
		default:
			return false, errRefused{fmt.Sprintf("a different Deployment %s/%s already runs here", ns, want.Name)}
		}
		n := ptr.Deref(have.Spec.Replicas, 1)
		// The pods themselves too: a copy scaled back up may carry a status from before.
		return have.Status.ObservedGeneration >= have.Generation && have.Status.ReadyReplicas >= n &&
			have.Status.UpdatedReplicas >= n && c.readyPods(have) >= n, nil
	case v1alpha1.KindPod:
		want := w.Pod.DeepCopy()
		tag(&want.ObjectMeta)
		pods := kube.CoreV1().Pods(ns)
		have, err := pods.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if have, err = pods.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return false, fmt.Errorf("creating Pod %s/%s: %w", ns, want.Name, err)
			}
		case err != nil:
			return false, err
		case have.Labels[api.LabelMigrationID] != id:
			return false, errRefused{fmt.Sprintf("a different Pod %s/%s already runs here", ns, want.Name)}
		}
		return podReady(have), nil
	}
	return false, fmt.Errorf("workload kind %q", w.Kind)
}

// readyPods counts the Ready pods of a Deployment that are not going away.
func (c *Controller) readyPods(d *appsv1.Deployment) int32 {
	pods, _ := c.pods.Pods(d.Namespace).List(selectorOf(d))
	var n int32
	for _, p := range pods {
		if podReady(p) {
			n++
		}
	}
	return n
}

// joinsForeignService refuses a workload whose pods would be selected by a Service of
// namespace ns that is not the service's own: they would take another workload's traffic.
func (c *Controller) joinsForeignService(b *serviceBundle, ns string) error {
	services, err := c.services.Services(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing Services of %s: %w", ns, err)
	}
	podLabels := labels.Set(b.Workload.template().Labels)
	ours := map[string]bool{}
	for _, s := range b.Services {
		ours[s.Name] = true
	}
	for _, s := range services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || s.Annotations[api.AnnotationOrigin] == b.Origin ||
			(ours[s.Name] && c.isService(s, b.Origin)) {
			continue
		}
		return errRefused{fmt.Sprintf("the workload's pods would join Service %s/%s of another workload", ns, s.Name)}
	}
	return nil
}

// errRefused: the destination will not create the bundle; it gives the migration back at once.
type errRefused struct{ msg string }

func (e errRefused) Error() string { return e.msg }

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

// removeCreated undoes ensureCreated for migration id in namespace ns: what it created is
// deleted; what it took over from an earlier migration of the same service (created before
// since) is left, a Deployment scaled back to zero, pointing at the source that still runs
// the service.
func (c *Controller) removeCreated(ctx context.Context, kube kubernetes.Interface, ns, id, source string, since time.Time) error {
	opts := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{api.LabelMigrationID: id}).String()}
	deployments := kube.AppsV1().Deployments(ns)
	deps, err := deployments.List(ctx, opts)
	if err != nil {
		return fmt.Errorf("listing the Deployments of %s: %w", id, err)
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		if !d.CreationTimestamp.Time.Before(since) {
			continue // deleted below
		}
		d.Spec.Replicas = ptr.To[int32](0)
		metav1.SetMetaDataAnnotation(&d.ObjectMeta, api.AnnotationMigratedTo, source)
		delete(d.Annotations, api.AnnotationMigrationID)
		delete(d.Labels, api.LabelMigrationID)
		if _, err := deployments.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("scaling Deployment %s/%s back to zero: %w", ns, d.Name, err)
		}
	}
	// The workload first, so its pods do not restart for want of a ConfigMap.
	for _, err := range []error{
		deleteCreated(ctx, deployments, "Deployments", opts, since),
		deleteCreated(ctx, kube.CoreV1().Pods(ns), "Pods", opts, since),
		deleteCreated(ctx, kube.AutoscalingV2().HorizontalPodAutoscalers(ns), "HorizontalPodAutoscalers", opts, since),
		deleteCreated(ctx, kube.PolicyV1().PodDisruptionBudgets(ns), "PodDisruptionBudgets", opts, since),
		deleteCreated(ctx, kube.CoreV1().Services(ns), "Services", opts, since),
		deleteCreated(ctx, kube.CoreV1().ConfigMaps(ns), "ConfigMaps", opts, since),
	} {
		if err != nil {
			return fmt.Errorf("removing the copy of %s from %s: %w", id, ns, err)
		}
	}
	return nil
}

type listDeleter[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// deleteCreated deletes the listed objects created at or after since.
func deleteCreated[L runtime.Object](ctx context.Context, client listDeleter[L], kind string, opts metav1.ListOptions, since time.Time) error {
	list, err := client.List(ctx, opts)
	if err != nil {
		return fmt.Errorf("listing %s: %w", kind, err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	for _, obj := range items {
		m, err := meta.Accessor(obj)
		if err != nil || m.GetCreationTimestamp().Time.Before(since) {
			continue
		}
		err = client.Delete(ctx, m.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(m.GetUID())}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting %s %s: %w", kind, m.GetName(), err)
		}
	}
	return nil
}
