// Package jetson models Jetson nodes and what pods demand of them. Jetson's GPU has no
// memory of its own: CUDA allocations come out of the same RAM as the CPU's, so a pod's
// unified demand is its memory request plus its declared GPU memory. Pure functions, no I/O:
// the extender, the webhook and bidding all use them.
package jetson

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/edgemigrate/edgemigrate/api"
)

// Demand is what a pod asks of a node.
type Demand struct {
	// CPUMilli is the CPU request in millicores.
	CPUMilli int64
	// Memory is the memory request in bytes.
	Memory int64
	// GPUMemory is the declared GPU working set in bytes (edgemigrate.io/gpu-memory).
	GPUMemory int64
	// GPUSlots is the number of nvidia.com/gpu slots (time-sliced or not).
	GPUSlots int64
}

// Unified is the pod's claim on a Jetson's shared memory: memory request plus GPU memory.
func (d Demand) Unified() int64 { return d.Memory + d.GPUMemory }

// PodDemand returns a pod's demand: its effective requests as the scheduler computes them
// (init containers, sidecars, overhead and pod-level resources included) and its declared
// GPU memory. A malformed gpu-memory annotation is an error naming the annotation and the
// value: scheduling it as if it were zero would overcommit the node.
func PodDemand(pod *corev1.Pod) (Demand, error) {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	d := Demand{
		CPUMilli: reqs.Cpu().MilliValue(),
		Memory:   reqs.Memory().Value(),
	}
	// Extended resources are requested through limits; the API server copies them into
	// requests, but a pod read before admission may carry only the limit.
	slots := reqs[api.ResourceGPU]
	if slots.IsZero() {
		slots = resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})[api.ResourceGPU]
	}
	d.GPUSlots = slots.Value()
	gpuMemory, err := GPUMemory(pod.Annotations)
	if err != nil {
		return Demand{}, err
	}
	d.GPUMemory = gpuMemory
	return d, nil
}

// GPUMemory parses the edgemigrate.io/gpu-memory annotation: zero when absent, an error
// naming the annotation and the value when it is not a non-negative quantity.
func GPUMemory(annotations map[string]string) (int64, error) {
	raw, ok := annotations[api.AnnotationGPUMemory]
	if !ok {
		return 0, nil
	}
	q, err := ParseQuantity(strings.TrimSpace(raw))
	if err != nil {
		return 0, fmt.Errorf("annotation %s: %q %w (write it like 4Gi or 512Mi)", api.AnnotationGPUMemory, raw, err)
	}
	return q.Value(), nil
}

// quantityPattern is the quantity grammar with a bounded length and a two-digit exponent.
// resource.ParseQuantity alone takes minutes on input such as "1e-99999999", and anyone
// who may edit a pod writes these annotations.
var quantityPattern = regexp.MustCompile(`^\+?([0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][+-]?[0-9]{1,2}|[KMGTPE]i|[mkMGTPE])?$`)

// maxQuantity bounds every demand: far above any Jetson, far below int64 overflow, which
// would otherwise turn a huge value into a small or negative one.
var maxQuantity = resource.MustParse("1Pi")

// ParseQuantity parses a non-negative quantity of at most 1Pi, refusing in microseconds the
// inputs (such as "1e-99999999") on which resource.ParseQuantity spends minutes. Use it for
// any quantity read from a request rather than from the API server.
func ParseQuantity(s string) (resource.Quantity, error) {
	if strings.HasPrefix(s, "-") {
		return resource.Quantity{}, errors.New("is negative")
	}
	if !quantityPattern.MatchString(s) {
		return resource.Quantity{}, errors.New("is not a quantity")
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}, errors.New("is not a quantity")
	}
	if q.Cmp(maxQuantity) > 0 {
		return resource.Quantity{}, fmt.Errorf("is larger than %s", maxQuantity.String())
	}
	return q, nil
}

// String encodes d as the edgemigrate.io/demand annotation value:
// "cpu=2,memory=4Gi,gpu=1,gpu-memory=6Gi". Quantities are in Kubernetes' canonical form.
func (d Demand) String() string {
	return "cpu=" + resource.NewMilliQuantity(d.CPUMilli, resource.DecimalSI).String() +
		",memory=" + resource.NewQuantity(d.Memory, resource.BinarySI).String() +
		",gpu=" + strconv.FormatInt(d.GPUSlots, 10) +
		",gpu-memory=" + resource.NewQuantity(d.GPUMemory, resource.BinarySI).String()
}

// ParseDemand decodes an edgemigrate.io/demand annotation value written by String. Every
// key must appear once; unknown keys are errors, so a typo is not read as zero.
func ParseDemand(s string) (Demand, error) {
	var d Demand
	seen := map[string]bool{}
	for field := range strings.SplitSeq(s, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			return Demand{}, fmt.Errorf("demand %q: field %q is not key=value", s, field)
		}
		if seen[key] {
			return Demand{}, fmt.Errorf("demand %q: %s given twice", s, key)
		}
		seen[key] = true
		q, err := ParseQuantity(value)
		if err != nil {
			return Demand{}, fmt.Errorf("demand %q: %s=%q %w", s, key, value, err)
		}
		switch key {
		case "cpu":
			d.CPUMilli = q.MilliValue()
		case "memory":
			d.Memory = q.Value()
		case "gpu":
			d.GPUSlots = q.Value()
		case "gpu-memory":
			d.GPUMemory = q.Value()
		default:
			return Demand{}, fmt.Errorf("demand %q: unknown key %q (want cpu, memory, gpu, gpu-memory)", s, key)
		}
	}
	for _, key := range []string{"cpu", "memory", "gpu", "gpu-memory"} {
		if !seen[key] {
			return Demand{}, fmt.Errorf("demand %q: %s missing", s, key)
		}
	}
	return d, nil
}
