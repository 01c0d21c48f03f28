package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/distribution/reference"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

// restricted evaluates Pod Security's restricted level with the API server's own checks,
// so the policy and the namespace's Pod Security admission agree.
var restricted = func() psapolicy.Evaluator {
	e, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		panic(fmt.Sprintf("pod security checks: %v", err)) // the library's own check list
	}
	return e
}()

// CheckMetadata checks a proposal's metadata before bidding. hosted and hostedReplicas are
// what source already has hosted here, its other services together.
func (c *Config) CheckMetadata(source, namespace string, meta chaincode.WorkloadMetadata, hosted chaincode.Resources, hostedReplicas int32) error {
	var errs []error
	if _, err := c.HostNamespace(source, namespace); err != nil {
		errs = append(errs, err)
	}
	replicas := meta.Replicas
	if replicas == 0 {
		replicas = 1 // a Pod, or a proposal from before replicas were recorded
	}
	if replicas < 0 {
		errs = append(errs, fmt.Errorf("replicas %d is negative", replicas))
		replicas = 0
	}
	if err := c.checkReplicas(source, int64(hostedReplicas), int64(replicas)); err != nil {
		errs = append(errs, err)
	}
	d := c.Limits.MaxDemand
	for _, r := range []struct {
		what         string
		hosted, each int64
		limit        *int64
		format       func(int64) string
	}{
		{"CPU", hosted.CPUMilli, meta.CPUMilli, milli(d.CPU), func(v int64) string { return fmt.Sprintf("%dm", v) }},
		{"memory", hosted.MemoryBytes, meta.MemoryBytes, value(d.Memory), bytesString},
		{"GPU", hosted.GPUSlots, meta.GPUSlots, d.GPU, func(v int64) string { return fmt.Sprint(v) }},
		{"GPU memory", hosted.GPUMemoryBytes, meta.GPUMemoryBytes, value(d.GPUMemory), bytesString},
	} {
		if r.each < 0 {
			errs = append(errs, fmt.Errorf("%s demand %d is negative", r.what, r.each))
			continue
		}
		if r.limit == nil {
			continue
		}
		total, ok := mulAdd(int64(replicas), r.each, r.hosted)
		if !ok || total > *r.limit {
			errs = append(errs, fmt.Errorf("%d replicas of %s %s each would bring cluster %s's %s hosted here beyond this cluster's limit of %s (it has %s)",
				replicas, r.format(r.each), r.what, source, r.what, r.format(*r.limit), r.format(r.hosted)))
		}
	}
	images := meta.Images
	if len(images) == 0 && meta.Image != "" {
		images = []chaincode.Image{{Name: meta.Image}}
	}
	for _, im := range images {
		if err := c.checkImage(im.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.checkServiceAccount(meta.Requires.ServiceAccount); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) checkReplicas(source string, hosted, more int64) error {
	if max := int64(c.Limits.MaxReplicas); max > 0 && hosted+more > max {
		return fmt.Errorf("%d more replicas would bring cluster %s's replicas hosted here to %d, beyond this cluster's limit of %d", more, source, hosted+more, max)
	}
	return nil
}

// mulAdd is n*each+plus, false on overflow.
func mulAdd(n, each, plus int64) (int64, bool) {
	if n != 0 && each > (math.MaxInt64-plus)/n {
		return 0, false
	}
	return n*each + plus, true
}

func milli(q *resource.Quantity) *int64 {
	if q == nil {
		return nil
	}
	v := q.MilliValue()
	return &v
}

func value(q *resource.Quantity) *int64 {
	if q == nil {
		return nil
	}
	v := q.Value()
	return &v
}

func bytesString(v int64) string {
	return fmt.Sprintf("%d bytes", v)
}

// CheckPodSpec checks a pod spec a peer asks this cluster to run in namespace: Pod
// Security restricted level, no nodeName, no service account but "default" or one the
// policy lists, no service account token unless allowed, images from allowed registries.
// Each refusal is one sentence; all of them are reported.
func (c *Config) CheckPodSpec(spec *corev1.PodSpec, namespace string) error {
	return c.checkPod(&metav1.ObjectMeta{}, spec, namespace)
}

func (c *Config) checkPod(meta *metav1.ObjectMeta, spec *corev1.PodSpec, namespace string) error {
	if spec == nil {
		return errors.New("the workload has no pod spec")
	}
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Reserved(namespace) {
		add("namespace %s is a system namespace; this cluster never hosts peers' services there", namespace)
	}
	for _, r := range restricted.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, meta, spec) {
		if r.Allowed {
			continue
		}
		if r.ForbiddenDetail != "" {
			add("Pod Security restricted forbids %s (%s)", r.ForbiddenReason, r.ForbiddenDetail)
		} else {
			add("Pod Security restricted forbids %s", r.ForbiddenReason)
		}
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			add("volume %s uses PersistentVolumeClaim %s; its data does not travel", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
		if v.Projected != nil && !c.AllowServiceAccountToken {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					add("volume %s projects a service account token; this cluster does not give hosted services one", v.Name)
				}
			}
		}
	}
	if spec.NodeName != "" {
		add("the pod spec names node %s; this cluster's scheduler places hosted services", spec.NodeName)
	}
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = spec.DeprecatedServiceAccount
	}
	if err := c.checkServiceAccount(sa); err != nil {
		errs = append(errs, err)
	}
	if !c.AllowServiceAccountToken && (spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken) {
		add("the pod spec does not set automountServiceAccountToken: false; this cluster does not give hosted services a service account token")
	}
	for _, ct := range allContainers(spec) {
		if err := c.checkImage(ct.Image); err != nil {
			add("container %s: %v", ct.name, err)
		}
	}
	return errors.Join(errs...)
}

type namedImage struct{ name, Image string }

func allContainers(spec *corev1.PodSpec) []namedImage {
	var out []namedImage
	for _, ct := range spec.InitContainers {
		out = append(out, namedImage{ct.Name, ct.Image})
	}
	for _, ct := range spec.Containers {
		out = append(out, namedImage{ct.Name, ct.Image})
	}
	for _, ct := range spec.EphemeralContainers {
		out = append(out, namedImage{ct.Name, ct.Image})
	}
	return out
}

func (c *Config) checkServiceAccount(name string) error {
	if name == "" || name == "default" || slices.Contains(c.ServiceAccounts, name) {
		return nil
	}
	return fmt.Errorf("service account %s is not one hosted services may run as here (default%s)", name, prefixed(", ", c.ServiceAccounts))
}

func prefixed(sep string, s []string) string {
	if len(s) == 0 {
		return ""
	}
	return sep + strings.Join(s, sep)
}

// checkImage: an allowed registry prefix of the normalized reference (docker.io/library/nginx
// for nginx), matched at a path boundary, and a digest when required.
func (c *Config) checkImage(image string) error {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Errorf("image %q is not a valid image reference: %v", image, err)
	}
	if len(c.Images.Registries) > 0 {
		name := named.Name()
		ok := false
		for _, p := range c.Images.Registries {
			p = strings.TrimSuffix(p, "/")
			if name == p || strings.HasPrefix(name, p+"/") {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("image %s is not from a registry this cluster allows (%s)", image, strings.Join(c.Images.Registries, ", "))
		}
	}
	if _, pinned := named.(reference.Canonical); c.Images.RequireDigest && !pinned {
		return fmt.Errorf("image %s is not pinned by digest (name@sha256:…), which this cluster requires", image)
	}
	return nil
}

// Objects are what a destination would create from a migration's bundle: one workload
// (a Deployment or a Pod) and what it needs.
type Objects struct {
	Deployment              *appsv1.Deployment
	Pod                     *corev1.Pod
	Services                []corev1.Service
	ConfigMaps              []corev1.ConfigMap
	PodDisruptionBudget     *policyv1.PodDisruptionBudget
	HorizontalPodAutoscaler *autoscalingv2.HorizontalPodAutoscaler
}

// CheckBundle checks the fetched bundle before anything is created: one workload whose pod
// spec passes CheckPodSpec, every object in namespace (HostNamespace's answer; an object
// with no namespace will be created there), bounded replicas, only ClusterIP Services
// unless the policy allows more, and an autoscaler that scales the workload only.
func (c *Config) CheckBundle(namespace string, o Objects) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	inNamespace := func(kind string, m metav1.ObjectMeta) {
		if m.Namespace != "" && m.Namespace != namespace {
			add("%s %s is in namespace %s, not %s where this cluster hosts the service", kind, m.Name, m.Namespace, namespace)
		}
	}
	var kind, name string
	switch {
	case o.Deployment != nil && o.Pod != nil:
		add("the bundle holds both a Deployment and a Pod; a bundle is one workload")
	case o.Deployment != nil:
		d := o.Deployment
		kind, name = "Deployment", d.Name
		inNamespace(kind, d.ObjectMeta)
		if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
			add("Deployment %s asks for %d replicas", d.Name, *d.Spec.Replicas)
		} else if d.Spec.Replicas != nil {
			if max := c.Limits.MaxReplicas; max > 0 && *d.Spec.Replicas > max {
				add("Deployment %s asks for %d replicas, beyond this cluster's limit of %d per source cluster", d.Name, *d.Spec.Replicas, max)
			}
		}
		if err := c.checkPod(&d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec, namespace); err != nil {
			add("Deployment %s: %w", d.Name, err)
		}
	case o.Pod != nil:
		kind, name = "Pod", o.Pod.Name
		inNamespace(kind, o.Pod.ObjectMeta)
		if err := c.checkPod(&o.Pod.ObjectMeta, &o.Pod.Spec, namespace); err != nil {
			add("Pod %s: %w", o.Pod.Name, err)
		}
	default:
		add("the bundle holds no workload (a Deployment or a Pod)")
	}
	for _, s := range o.Services {
		inNamespace("Service", s.ObjectMeta)
		switch s.Spec.Type {
		case "", corev1.ServiceTypeClusterIP:
		case corev1.ServiceTypeNodePort:
			if !c.Services.AllowNodePort {
				add("Service %s is of type NodePort; this cluster opens no node ports for peers", s.Name)
			}
		case corev1.ServiceTypeLoadBalancer:
			if !c.Services.AllowLoadBalancer {
				add("Service %s is of type LoadBalancer; this cluster gives peers no load balancer", s.Name)
			}
		default:
			add("Service %s is of type %s; only ClusterIP Services travel", s.Name, s.Spec.Type)
		}
		if len(s.Spec.ExternalIPs) > 0 && !c.Services.AllowExternalIPs {
			add("Service %s claims external IPs %s; this cluster gives peers none", s.Name, strings.Join(s.Spec.ExternalIPs, ", "))
		}
	}
	for _, cm := range o.ConfigMaps {
		inNamespace("ConfigMap", cm.ObjectMeta)
	}
	if p := o.PodDisruptionBudget; p != nil {
		inNamespace("PodDisruptionBudget", p.ObjectMeta)
	}
	if h := o.HorizontalPodAutoscaler; h != nil {
		inNamespace("HorizontalPodAutoscaler", h.ObjectMeta)
		if ref := h.Spec.ScaleTargetRef; kind != "Deployment" || ref.Kind != kind || ref.Name != name {
			add("HorizontalPodAutoscaler %s scales %s %s, not the bundle's Deployment", h.Name, ref.Kind, ref.Name)
		}
		if max := c.Limits.MaxReplicas; max > 0 && h.Spec.MaxReplicas > max {
			add("HorizontalPodAutoscaler %s may scale to %d replicas, beyond this cluster's limit of %d per source cluster", h.Name, h.Spec.MaxReplicas, max)
		}
	}
	return errors.Join(errs...)
}
