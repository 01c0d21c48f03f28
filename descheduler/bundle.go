package descheduler

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// bundleVersion is the version of the bundle's JSON; a destination refuses any other.
const bundleVersion = "v1"

// maxBundleBytes caps a bundle: it is stored in one ConfigMap at the source (at most 1 MiB)
// and read whole into the destination's memory.
const maxBundleBytes = 512 << 10

// bundleKey is the key of the stored bundle in its ConfigMap.
const bundleKey = "bundle.json"

// serviceBundle is what travels from the source to the chosen destination, off the ledger:
// the workload as the destination should create it and the objects it needs to serve.
// Secrets never travel: the proposal's metadata names them and the destination must have
// them already.
type serviceBundle struct {
	Version string `json:"version"`
	// Origin is api.AnnotationOrigin's value: the cluster, namespace and UID of the
	// service's first copy.
	Origin   string           `json:"origin"`
	Workload workloadManifest `json:"workload"`
	// Services select the workload's pods.
	Services []corev1.Service `json:"services,omitempty"`
	// ConfigMaps are referenced by its volumes (projected ones included), env or envFrom.
	ConfigMaps              []corev1.ConfigMap                     `json:"configMaps,omitempty"`
	PodDisruptionBudget     *policyv1.PodDisruptionBudget          `json:"podDisruptionBudget,omitempty"`
	HorizontalPodAutoscaler *autoscalingv2.HorizontalPodAutoscaler `json:"horizontalPodAutoscaler,omitempty"`
}

// digestOf is the ledger's BundleDigest of a bundle's bytes.
func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func bundleConfigMapName(id string) string { return "edgemigrate-bundle-" + id }

// originOf is the origin of a workload: the one it carries, or this cluster's copy when
// it was first created here.
func originOf(cluster string, m *metav1.ObjectMeta) string {
	if o := m.Annotations[api.AnnotationOrigin]; o != "" {
		return o
	}
	return cluster + "/" + m.Namespace + "/" + string(m.UID)
}

// template is the workload's pod: a Deployment's template, or the Pod, in its namespace.
func (w *workloadManifest) template() *corev1.Pod {
	if w.Deployment != nil {
		t := w.Deployment.Spec.Template
		return &corev1.Pod{ObjectMeta: *t.ObjectMeta.DeepCopy(), Spec: *t.Spec.DeepCopy()}
	}
	if w.Pod != nil {
		return w.Pod.DeepCopy()
	}
	return &corev1.Pod{}
}

func (w *workloadManifest) meta() *metav1.ObjectMeta {
	if w.Deployment != nil {
		return &w.Deployment.ObjectMeta
	}
	return &w.Pod.ObjectMeta
}

func (w *workloadManifest) replicas() int32 {
	if w.Deployment != nil {
		return ptr.Deref(w.Deployment.Spec.Replicas, 1)
	}
	return 1
}

// buildBundle collects a workload and what it needs from the informers' caches.
func (c *Controller) buildBundle(ref v1alpha1.WorkloadReference, namespace string) (*serviceBundle, error) {
	manifest, err := c.snapshot(ref, namespace)
	if err != nil {
		return nil, err
	}
	// snapshot wrote the origin on the copy.
	b := &serviceBundle{Version: bundleVersion, Origin: manifest.meta().Annotations[api.AnnotationOrigin], Workload: *manifest}
	pod := manifest.template()
	// Its data would stay behind. The webhook marks such a workload not-migratable, so no
	// trigger moves it; a Manual migration (or one of pods the webhook never saw) stops here.
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return nil, errNotMigratable{fmt.Sprintf("%s: %s (volume %s): its data does not travel", ref.Kind, api.NotMigratablePVC, v.Name)}
		}
	}
	podLabels := labels.Set(pod.Labels)

	services, err := c.services.Services(namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing Services: %w", err)
	}
	for _, s := range services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		b.Services = append(b.Services, cleanService(s))
	}
	slices.SortFunc(b.Services, func(x, y corev1.Service) int { return cmp.Compare(x.Name, y.Name) })

	refs := podReferences(&pod.Spec)
	for _, name := range sortedKeys(refs.configMaps) {
		cm, err := c.configMaps.ConfigMaps(namespace).Get(name)
		if apierrors.IsNotFound(err) && refs.configMaps[name] {
			continue // optional, and absent here as well
		}
		if err != nil {
			return nil, fmt.Errorf("reading ConfigMap %s/%s the workload references: %w", namespace, name, err)
		}
		b.ConfigMaps = append(b.ConfigMaps, corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: cleanMeta(cm.ObjectMeta), Data: cm.Data, BinaryData: cm.BinaryData, Immutable: cm.Immutable})
	}

	pdbs, err := c.pdbs.PodDisruptionBudgets(namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing PodDisruptionBudgets: %w", err)
	}
	slices.SortFunc(pdbs, func(x, y *policyv1.PodDisruptionBudget) int { return cmp.Compare(x.Name, y.Name) })
	for _, p := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(podLabels) {
			continue
		}
		b.PodDisruptionBudget = &policyv1.PodDisruptionBudget{TypeMeta: metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
			ObjectMeta: cleanMeta(p.ObjectMeta), Spec: *p.Spec.DeepCopy()}
		break
	}

	if manifest.Deployment != nil {
		hpas, err := c.hpas.HorizontalPodAutoscalers(namespace).List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing HorizontalPodAutoscalers: %w", err)
		}
		slices.SortFunc(hpas, func(x, y *autoscalingv2.HorizontalPodAutoscaler) int { return cmp.Compare(x.Name, y.Name) })
		for _, h := range hpas {
			t := h.Spec.ScaleTargetRef
			if t.Kind == "Deployment" && t.Name == manifest.Deployment.Name && strings.HasPrefix(t.APIVersion, appsv1.GroupName+"/") {
				b.HorizontalPodAutoscaler = &autoscalingv2.HorizontalPodAutoscaler{
					TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
					ObjectMeta: cleanMeta(h.ObjectMeta), Spec: *h.Spec.DeepCopy()}
				break
			}
		}
	}
	return b, nil
}

// cleanService keeps what a user wrote of a Service: addresses are the cluster's own, and
// external IPs would claim addresses in the destination's network.
func cleanService(s *corev1.Service) corev1.Service {
	spec := *s.Spec.DeepCopy()
	spec.ClusterIP, spec.ClusterIPs, spec.IPFamilies, spec.ExternalIPs = "", nil, nil, nil
	spec.LoadBalancerIP, spec.HealthCheckNodePort = "", 0
	for i := range spec.Ports {
		spec.Ports[i].NodePort = 0
	}
	return corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: cleanMeta(s.ObjectMeta), Spec: spec}
}

// encodeBundle is the bundle's bytes, refused beyond maxBundleBytes with what is large.
func encodeBundle(b *serviceBundle) ([]byte, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding the service bundle: %w", err)
	}
	if len(data) > maxBundleBytes {
		var sizes []string
		for _, cm := range b.ConfigMaps {
			n := 0
			for _, v := range cm.Data {
				n += len(v)
			}
			for _, v := range cm.BinaryData {
				n += len(v)
			}
			sizes = append(sizes, fmt.Sprintf("ConfigMap %s: %s", cm.Name, resource.NewQuantity(int64(n), resource.BinarySI)))
		}
		return nil, fmt.Errorf("the service bundle is %d bytes, more than the %d a migration carries (%s)", len(data), maxBundleBytes, strings.Join(sizes, ", "))
	}
	return data, nil
}

// decodeBundle reads a bundle strictly: an unknown field or a value out of range (2³¹
// replicas in an int32) is an error, not a zero.
func decodeBundle(data []byte) (*serviceBundle, error) {
	var b serviceBundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("decoding the service bundle: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decoding the service bundle: data after the bundle")
	}
	if b.Version != bundleVersion {
		return nil, fmt.Errorf("the service bundle's version is %q, want %q", b.Version, bundleVersion)
	}
	w := &b.Workload
	switch {
	case w.Kind == v1alpha1.KindDeployment && w.Deployment != nil && w.Pod == nil:
	case w.Kind == v1alpha1.KindPod && w.Pod != nil && w.Deployment == nil:
	default:
		return nil, fmt.Errorf("the service bundle holds no single %q workload", w.Kind)
	}
	if b.Origin == "" {
		return nil, fmt.Errorf("the service bundle has no origin")
	}
	return &b, nil
}

// storeBundle keeps the bytes proposed for migration id until it is final, so a crash or a
// changed ConfigMap cannot change what the ledger's digest covers. When bytes are stored
// already (a crash after storing), those are returned and data is dropped.
func (c *Controller) storeBundle(ctx context.Context, id string, data []byte) ([]byte, error) {
	cms := c.kube.CoreV1().ConfigMaps(c.cfg.Namespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: bundleConfigMapName(id), Namespace: c.cfg.Namespace,
		Annotations: map[string]string{api.AnnotationMigrationID: id}},
		BinaryData: map[string][]byte{bundleKey: data}, Immutable: ptr.To(true)}
	_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return c.storedBundle(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("storing the bundle of %s: %w", id, err)
	}
	return data, nil
}

// storedBundle reads the bytes stored for migration id; a NotFound error when none are.
func (c *Controller) storedBundle(ctx context.Context, id string) ([]byte, error) {
	cm, err := c.kube.CoreV1().ConfigMaps(c.cfg.Namespace).Get(ctx, bundleConfigMapName(id), metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the stored bundle of %s: %w", id, err)
	}
	data, ok := cm.BinaryData[bundleKey]
	if !ok {
		return nil, fmt.Errorf("the stored bundle of %s has no %s", id, bundleKey)
	}
	return data, nil
}

// forgetBundle deletes the stored bundle of a final migration.
func (c *Controller) forgetBundle(ctx context.Context, id string) error {
	err := c.kube.CoreV1().ConfigMaps(c.cfg.Namespace).Delete(ctx, bundleConfigMapName(id), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the stored bundle of %s: %w", id, err)
	}
	return nil
}

// references are the names a pod spec refers to; true when every reference is optional.
type references struct {
	secrets, configMaps map[string]bool
}

func (r references) add(m map[string]bool, name string, optional *bool) {
	if name == "" {
		return
	}
	opt := ptr.Deref(optional, false)
	if prev, ok := m[name]; ok {
		opt = opt && prev
	}
	m[name] = opt
}

// podReferences lists the Secrets and ConfigMaps a pod spec refers to: image pull
// secrets, volumes (projected and CSI ones included), env and envFrom of every container.
func podReferences(spec *corev1.PodSpec) references {
	r := references{secrets: map[string]bool{}, configMaps: map[string]bool{}}
	for _, s := range spec.ImagePullSecrets {
		r.add(r.secrets, s.Name, nil)
	}
	for _, v := range spec.Volumes {
		if s := v.Secret; s != nil {
			r.add(r.secrets, s.SecretName, s.Optional)
		}
		if cm := v.ConfigMap; cm != nil {
			r.add(r.configMaps, cm.Name, cm.Optional)
		}
		if csi := v.CSI; csi != nil && csi.NodePublishSecretRef != nil {
			r.add(r.secrets, csi.NodePublishSecretRef.Name, nil)
		}
		if p := v.Projected; p != nil {
			for _, src := range p.Sources {
				if s := src.Secret; s != nil {
					r.add(r.secrets, s.Name, s.Optional)
				}
				if cm := src.ConfigMap; cm != nil {
					r.add(r.configMaps, cm.Name, cm.Optional)
				}
			}
		}
	}
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, ctr := range list {
			for _, e := range ctr.EnvFrom {
				if s := e.SecretRef; s != nil {
					r.add(r.secrets, s.Name, s.Optional)
				}
				if cm := e.ConfigMapRef; cm != nil {
					r.add(r.configMaps, cm.Name, cm.Optional)
				}
			}
			for _, e := range ctr.Env {
				if e.ValueFrom == nil {
					continue
				}
				if s := e.ValueFrom.SecretKeyRef; s != nil {
					r.add(r.secrets, s.Name, s.Optional)
				}
				if cm := e.ValueFrom.ConfigMapKeyRef; cm != nil {
					r.add(r.configMaps, cm.Name, cm.Optional)
				}
			}
		}
	}
	return r
}

// requirementsOf names what a pod spec needs at the destination that does not travel:
// Secrets it does not mark optional everywhere it refers to them, its ServiceAccount (the
// "default" one exists in every namespace), PriorityClass and RuntimeClass.
func requirementsOf(spec *corev1.PodSpec) chaincode.Requirements {
	var secrets []string
	refs := podReferences(spec).secrets
	for _, name := range sortedKeys(refs) {
		if optional := refs[name]; !optional {
			secrets = append(secrets, name)
		}
	}
	req := chaincode.Requirements{Secrets: secrets, PriorityClass: spec.PriorityClassName,
		RuntimeClass: ptr.Deref(spec.RuntimeClassName, "")}
	if sa := spec.ServiceAccountName; sa != "default" {
		req.ServiceAccount = sa
	}
	return req
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// imagesOf lists a pod's distinct images, init containers first, in spec order.
func imagesOf(spec *corev1.PodSpec) []string {
	var out []string
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, ctr := range list {
			if !slices.Contains(out, ctr.Image) {
				out = append(out, ctr.Image)
			}
		}
	}
	return out
}

// demandOf is what a bundle asks of the destination: its replicas and one replica's demand.
func demandOf(b *serviceBundle) (jetson.Demand, int32, error) {
	d, err := jetson.PodDemand(b.Workload.template())
	if err != nil {
		return jetson.Demand{}, 0, fmt.Errorf("reading the workload's demand: %w", err)
	}
	return d, b.Workload.replicas(), nil
}

// forgetFinal drops what a final Migration kept of its bundle: the source's stored bytes,
// the destination's fetched copy. A completed bare Pod's bytes stay: nothing else here can
// recreate it if its destination dies (restoreHomed); pruneHistory and the re-home delete
// them.
func (c *Controller) forgetFinal(ctx context.Context, m *v1alpha1.Migration) error {
	id := ledgerIDOf(m)
	if id == "" {
		return nil
	}
	if m.Status.Role == v1alpha1.RoleDestination {
		c.bundles.Delete(id)
		return nil
	}
	if m.Status.Phase == v1alpha1.PhaseCompleted && m.Spec.Workload.Kind == v1alpha1.KindPod {
		return nil
	}
	return c.forgetBundle(ctx, id)
}

// objectMetas are the metadata of the bundle's objects other than the workload.
func (b *serviceBundle) objectMetas() []*metav1.ObjectMeta {
	var out []*metav1.ObjectMeta
	for i := range b.Services {
		out = append(out, &b.Services[i].ObjectMeta)
	}
	for i := range b.ConfigMaps {
		out = append(out, &b.ConfigMaps[i].ObjectMeta)
	}
	if b.PodDisruptionBudget != nil {
		out = append(out, &b.PodDisruptionBudget.ObjectMeta)
	}
	if b.HorizontalPodAutoscaler != nil {
		out = append(out, &b.HorizontalPodAutoscaler.ObjectMeta)
	}
	return out
}

// isService says whether an object here belongs to the service of origin: it carries that
// origin, or it is unmarked in the namespace where the service was first created, in this
// cluster (the objects its bundle was built from, which the service left behind).
func (c *Controller) isService(m metav1.Object, origin string) bool {
	switch have := m.GetAnnotations()[api.AnnotationOrigin]; have {
	case origin:
		return true
	case "":
		return strings.HasPrefix(origin, c.cfg.ClusterID+"/"+m.GetNamespace()+"/")
	}
	return false
}

// errNotMigratable: the workload cannot move at all; the source's Migration fails with the
// reason and nothing reaches the ledger.
type errNotMigratable struct{ msg string }

func (e errNotMigratable) Error() string { return e.msg }
