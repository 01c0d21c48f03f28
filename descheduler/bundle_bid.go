package descheduler

import (
	"context"
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/webhook"
)

// maxBidReplicas bounds the replicas a bid places one at a time; more is refused outright,
// so a proposal of 2³¹ tiny replicas costs nothing.
const maxBidReplicas = 1024

// localityPoints is what a node holding every image of the service adds to the score: an
// image pull dominates a migration's time (BloSM's 70–75 s were mostly pulls).
const localityPoints = 20

// evaluateProposal is this cluster's answer to a proposal: the hosting terms first (its
// policy, the objects the workload needs and no clash with what runs here), then the fit,
// then the images its nodes already hold.
func (c *Controller) evaluateProposal(ctx context.Context, lm *chaincode.Migration, d jetson.Demand, replicas int32) evaluation {
	if why := c.hostingRefusal(ctx, lm); why != "" {
		return evaluation{reason: why}
	}
	if replicas > maxBidReplicas {
		return evaluation{reason: fmt.Sprintf("%d replicas, more than the %d this cluster bids for", replicas, maxBidReplicas)}
	}
	ev := c.evaluate(d, replicas)
	if ev.canHost {
		ev.score = min(100, ev.score+int64(math.Round(localityPoints*imageLocality(c.jetsonNodes(), lm.Metadata))))
	}
	return ev
}

// hostingRefusal says why this cluster will not host the proposed service, "" if it may.
func (c *Controller) hostingRefusal(ctx context.Context, lm *chaincode.Migration) string {
	kind, srcNS, name, ok := splitWorkload(lm.Workload)
	if !ok {
		return fmt.Sprintf("workload %q is not Kind/namespace/name", lm.Workload)
	}
	ns, err := c.policy.HostNamespace(lm.Source, srcNS)
	if err != nil {
		return "this cluster's policy: " + err.Error()
	}
	hosted, hostedReplicas := c.hostedFor(lm.Source)
	if err := c.policy.CheckMetadata(lm.Source, srcNS, lm.Metadata, hosted, hostedReplicas); err != nil {
		return "this cluster's policy: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	var why []string
	why = append(why, c.missingRequirements(ctx, lm.Source, ns, lm.Metadata.Requires)...)
	if clash := c.nameClash(ns, kind, name, lm.Metadata.Origin); clash != "" {
		why = append(why, clash)
	}
	return strings.Join(why, "; ")
}

// missingRequirements lists what the workload needs that does not exist here: they never
// travel (Secrets) or are this cluster's to define.
func (c *Controller) missingRequirements(ctx context.Context, source, ns string, req chaincode.Requirements) []string {
	var why []string
	check := func(what string, err error) {
		switch {
		case apierrors.IsNotFound(err):
			why = append(why, what+" does not exist here")
		case err != nil:
			why = append(why, fmt.Sprintf("cannot tell whether %s exists here: %v", what, err))
		}
	}
	if len(req.Secrets) > 0 {
		// Read as the hosted namespace's identity: the descheduler reads no Secrets itself.
		secrets, nsErr := c.hostSecrets(ctx, source, ns)
		for _, s := range req.Secrets {
			err := nsErr
			if err == nil {
				_, err = secrets.Get(ctx, s, metav1.GetOptions{})
			}
			check("Secret "+ns+"/"+s, err)
		}
	}
	if sa := req.ServiceAccount; sa != "" {
		_, err := c.kube.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{})
		check("ServiceAccount "+ns+"/"+sa, err)
	}
	if pc := req.PriorityClass; pc != "" {
		_, err := c.kube.SchedulingV1().PriorityClasses().Get(ctx, pc, metav1.GetOptions{})
		check("PriorityClass "+pc, err)
	}
	if rc := req.RuntimeClass; rc != "" {
		_, err := c.kube.NodeV1().RuntimeClasses().Get(ctx, rc, metav1.GetOptions{})
		check("RuntimeClass "+rc, err)
	}
	return why
}

// nameClash says why a workload of that kind and name in ns would take over something here:
// only a copy edgemigrate parked for the same service (origin) may be scaled back up.
func (c *Controller) nameClash(ns, kind, name, origin string) string {
	switch kind {
	case v1alpha1.KindDeployment:
		d, err := c.deployments.Deployments(ns).Get(name)
		if err != nil {
			return ""
		}
		switch have := d.Annotations[api.AnnotationOrigin]; {
		case have == "":
			return fmt.Sprintf("a Deployment %s/%s that edgemigrate did not create exists here", ns, name)
		case have != origin:
			return fmt.Sprintf("Deployment %s/%s here belongs to another service (origin %s)", ns, name, have)
		case ptr.Deref(d.Spec.Replicas, 1) != 0 || d.Annotations[api.AnnotationMigratedTo] == "":
			return fmt.Sprintf("a copy of Deployment %s/%s already runs here", ns, name)
		}
	case v1alpha1.KindPod:
		if _, err := c.pods.Pods(ns).Get(name); err == nil {
			return fmt.Sprintf("a Pod %s/%s already exists here", ns, name)
		}
	}
	return ""
}

// hostedFor sums what this cluster runs for source cluster's services: the copies it
// created from their bundles that still run here.
func (c *Controller) hostedFor(source string) (chaincode.Resources, int32) {
	var total jetson.Demand
	var replicas int32
	add := func(p *corev1.Pod, n int32) {
		d, err := jetson.PodDemand(p)
		if err != nil {
			return
		}
		for range n {
			total = total.Add(d)
		}
		replicas += n
	}
	hostedBy, err := labels.Parse(api.LabelMigrationID) // has the label
	if err != nil {
		return chaincode.Resources{}, 0
	}
	deps, _ := c.deployments.List(hostedBy)
	for _, d := range deps {
		if d.Annotations[api.AnnotationMigratedFrom] == source {
			add(&corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}, ptr.Deref(d.Spec.Replicas, 1))
		}
	}
	pods, _ := c.pods.List(hostedBy)
	for _, p := range pods {
		if p.Annotations[api.AnnotationMigratedFrom] == source && p.DeletionTimestamp == nil {
			add(p, 1)
		}
	}
	return chaincode.Resources{CPUMilli: total.CPUMilli, MemoryBytes: total.Memory, GPUSlots: total.GPUSlots, GPUMemoryBytes: total.GPUMemory}, replicas
}

// jetsonNodes are the nodes a bid places replicas on.
func (c *Controller) jetsonNodes() []*corev1.Node {
	all, _ := c.nodes.List(labels.Everything())
	var out []*corev1.Node
	for _, n := range all {
		if capa, _, ok := c.usage.Node(n.Name); ok && capa.Jetson {
			out = append(out, n)
		}
	}
	return out
}

// imageLocality is the share of a service's images that the best-stocked node holds
// already (status.images), weighted by size when every size is known: 0 to 1.
func imageLocality(nodes []*corev1.Node, meta chaincode.WorkloadMetadata) float64 {
	images := meta.Images
	if len(images) == 0 && meta.Image != "" {
		images = []chaincode.Image{{Name: meta.Image, SizeBytes: meta.ImageSizeBytes}}
	}
	bySize := len(images) > 0
	var total float64
	for _, im := range images {
		bySize = bySize && im.SizeBytes > 0
	}
	weight := func(im chaincode.Image) float64 {
		if bySize {
			return float64(im.SizeBytes)
		}
		return 1
	}
	for _, im := range images {
		total += weight(im)
	}
	if total == 0 {
		return 0
	}
	best := 0.0
	for _, n := range nodes {
		var ix webhook.ImageIndex
		ix.Rebuild([]*corev1.Node{n})
		held := 0.0
		for _, im := range images {
			if _, ok := ix.Size(im.Name); ok {
				held += weight(im)
			}
		}
		best = max(best, held/total)
	}
	return best
}

// hostSecrets reads Secrets of hosted namespace ns as its host identity; a NotFound error
// when the namespace does not exist (then neither do its Secrets).
func (c *Controller) hostSecrets(ctx context.Context, source, ns string) (typedcorev1.SecretInterface, error) {
	if _, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		return nil, err
	}
	kube, err := c.hostClient(ctx, source, ns)
	if err != nil {
		return nil, err
	}
	return kube.CoreV1().Secrets(ns), nil
}
