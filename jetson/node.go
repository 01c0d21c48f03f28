package jetson

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/edgemigrate/edgemigrate/api"
)

// DefaultSelectorString is how nodes are recognised as Jetson unless configured otherwise:
// GPU Feature Discovery has labelled a GPU product and the node is arm64.
const DefaultSelectorString = api.LabelGPUProduct + "," + corev1.LabelArchStable + "=arm64"

// DefaultSelector returns the selector of DefaultSelectorString.
func DefaultSelector() labels.Selector {
	present, err := labels.NewRequirement(api.LabelGPUProduct, selection.Exists, nil)
	if err != nil {
		panic(err) // constant input: unreachable
	}
	arm, err := labels.NewRequirement(corev1.LabelArchStable, selection.Equals, []string{"arm64"})
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*present, *arm)
}

// ParseSelector parses a label selector in kubectl's syntax ("a,b=c,d notin (e)"). The empty
// string is refused: it would make every node, x86 ones included, a Jetson.
func ParseSelector(s string) (labels.Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("parsing Jetson node selector: empty selector would match every node")
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parsing Jetson node selector %q: %w", s, err)
	}
	return sel, nil
}

// Config is how nodes are read.
type Config struct {
	// Selector decides which nodes are Jetson; nil means DefaultSelector.
	Selector labels.Selector
	// MemoryReserve is kept free on every Jetson for the OS, the kubelet and CUDA's own
	// overhead: allocatable memory less this is what pods may share. In bytes.
	MemoryReserve int64
}

// Capacity is what a node offers pods.
type Capacity struct {
	// Jetson is false for nodes the selector does not match: they pass through untouched.
	Jetson bool
	// Model is the GPU product label, without the time-slicing suffix.
	Model string
	// CPUMilli is allocatable CPU in millicores.
	CPUMilli int64
	// Memory is unified memory for pods: allocatable memory less the reserve, never negative.
	Memory int64
	// GPUSlots is allocatable nvidia.com/gpu; time-sliced GPUs offer several.
	GPUSlots int64
}

// NodeCapacity reads a node's capacity. Nodes the selector does not match have Jetson false
// and nothing else.
func NodeCapacity(node *corev1.Node, cfg Config) Capacity {
	sel := cfg.Selector
	if sel == nil {
		sel = defaultSelector
	}
	if node == nil || !sel.Matches(labels.Set(node.Labels)) {
		return Capacity{}
	}
	alloc := node.Status.Allocatable
	memory := alloc.Memory().Value() - max(cfg.MemoryReserve, 0)
	slots := alloc[api.ResourceGPU]
	return Capacity{
		Jetson:   true,
		Model:    strings.TrimSuffix(node.Labels[api.LabelGPUProduct], api.SharedProductSuffix),
		CPUMilli: alloc.Cpu().MilliValue(),
		Memory:   max(memory, 0),
		GPUSlots: slots.Value(),
	}
}

var defaultSelector = DefaultSelector()
