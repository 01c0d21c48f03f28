package localcluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/api"
)

// JetsonModel describes a Jetson module as its node appears to Kubernetes.
type JetsonModel struct {
	// Product is GPU Feature Discovery's product label value.
	Product string
	// Family is the GPU architecture, lower case.
	Family                     string
	ComputeMajor, ComputeMinor int
	// CPU cores and Memory, the LPDDR shared by CPU and GPU.
	CPU, Memory resource.Quantity
}

// Jetson modules the tests and the demo use.
var (
	// AGXXavier is the board of the BloSM testbed: 8-core Carmel ARM, 512-core Volta, 32 GB.
	AGXXavier = JetsonModel{Product: "NVIDIA-Jetson-AGX-Xavier", Family: "volta", ComputeMajor: 7, ComputeMinor: 2,
		CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi")}
	// AGXOrin is the 64 GB AGX Orin: 12-core Cortex-A78AE, 2048-core Ampere.
	AGXOrin = JetsonModel{Product: "NVIDIA-Jetson-AGX-Orin", Family: "ampere", ComputeMajor: 8, ComputeMinor: 7,
		CPU: resource.MustParse("12"), Memory: resource.MustParse("64Gi")}
	// OrinNX is the 16 GB Orin NX: 8-core Cortex-A78AE, 1024-core Ampere.
	OrinNX = JetsonModel{Product: "NVIDIA-Jetson-Orin-NX", Family: "ampere", ComputeMajor: 8, ComputeMinor: 7,
		CPU: resource.MustParse("8"), Memory: resource.MustParse("16Gi")}
)

// DefaultImages are container images a Jetson inference node typically has pulled, with
// their sizes as the kubelet reports them in status.images.
var DefaultImages = []corev1.ContainerImage{
	{Names: []string{"nvcr.io/nvidia/l4t-ml:r35.2.1-py3"}, SizeBytes: 15_930_000_000},
	{Names: []string{"nvcr.io/nvidia/l4t-pytorch:r35.2.1-pth2.0-py3"}, SizeBytes: 11_270_000_000},
	{Names: []string{"nvcr.io/nvidia/deepstream-l4t:6.2-samples"}, SizeBytes: 8_580_000_000},
	{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 320_000},
}

// NodeOptions vary a fake Jetson node.
type NodeOptions struct {
	// GPUReplicas above one time-slices the GPU into that many nvidia.com/gpu slots, as the
	// device plugin's time-slicing configuration does. Zero means one unshared slot.
	GPUReplicas int
	// Images replaces DefaultImages in status.images when not nil.
	Images []corev1.ContainerImage
	// Labels are added to (or override) the node's labels.
	Labels map[string]string
	// Pods is the pod capacity; default 110, the kubelet's.
	Pods int
}

// JetsonNode returns a Node for a Jetson module, managed by this package's kwok: the labels
// GPU Feature Discovery puts on it, arm64, and its CPU, unified memory and GPU slots as both
// capacity and allocatable.
func JetsonNode(name string, model JetsonModel, opts NodeOptions) *corev1.Node {
	slots := max(opts.GPUReplicas, 1)
	pods := opts.Pods
	if pods == 0 {
		pods = 110
	}
	images := opts.Images
	if images == nil {
		images = DefaultImages
	}
	product := model.Product
	labels := map[string]string{
		corev1.LabelArchStable:      "arm64",
		corev1.LabelOSStable:        "linux",
		corev1.LabelHostname:        name,
		"type":                      "kwok",
		api.LabelGPUPresent:         "true",
		api.LabelGPUCount:           "1",
		api.LabelGPUFamily:          model.Family,
		api.LabelGPUMemory:          strconv.FormatInt(model.Memory.Value()>>20, 10),
		api.LabelGPUComputeMajor:    strconv.Itoa(model.ComputeMajor),
		api.LabelGPUComputeMinor:    strconv.Itoa(model.ComputeMinor),
		api.LabelGPUReplicas:        strconv.Itoa(slots),
		api.LabelGPUSharingStrategy: "none",
	}
	if slots > 1 {
		product += api.SharedProductSuffix
		labels[api.LabelGPUSharingStrategy] = "time-slicing"
	}
	labels[api.LabelGPUProduct] = product
	for k, v := range opts.Labels {
		labels[k] = v
	}
	resources := corev1.ResourceList{
		corev1.ResourceCPU:              model.CPU,
		corev1.ResourceMemory:           model.Memory,
		corev1.ResourcePods:             *resource.NewQuantity(int64(pods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: resource.MustParse("64Gi"),
		api.ResourceGPU:                 *resource.NewQuantity(int64(slots), resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      labels,
			Annotations: map[string]string{kwokNodeKey: kwokNodeValue},
		},
		Status: corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources.DeepCopy(),
			Images:      images,
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:    "arm64",
				OperatingSystem: "linux",
				OSImage:         "Ubuntu 20.04.6 LTS (L4T R35)",
			},
		},
	}
}

// AddNodes creates nodes, several at a time, and waits until kwok reports each Ready and
// the node lifecycle controller has lifted its not-ready taint: until then the scheduler
// would not place pods there. The wait grows with the number of nodes (a benchmark adds
// a thousand).
func (c *Cluster) AddNodes(ctx context.Context, nodes ...*corev1.Node) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, n := range nodes {
		g.Go(func() error {
			if _, err := c.Client.CoreV1().Nodes().Create(gctx, n, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating node %s in cluster %s: %w", n.Name, c.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	timeout := c.opts.ReadyTimeout + time.Duration(len(nodes))*200*time.Millisecond
	pending := map[string]string{} // node name -> why it is not usable yet
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, nil
		}
		byName := make(map[string]*corev1.Node, len(list.Items))
		for i := range list.Items {
			byName[list.Items[i].Name] = &list.Items[i]
		}
		clear(pending)
		for _, want := range nodes {
			if why := nodeUnusable(byName[want.Name]); why != "" {
				pending[want.Name] = why
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		tail := "(kwok not running)"
		if p := c.process("kwok"); p != nil {
			tail = p.tail(logTailLines)
		}
		return fmt.Errorf("%d of %d nodes in cluster %s not usable within %s (for example %s): %w; kwok's last log lines:\n%s",
			len(pending), len(nodes), c.Name, timeout, firstPending(pending), err, tail)
	}
	return nil
}

// nodeUnusable says why the scheduler could not place pods on n yet, or "" if it can.
func nodeUnusable(n *corev1.Node) string {
	if n == nil {
		return "not listed yet"
	}
	ready := false
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			ready = cond.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return fmt.Sprintf("not Ready (conditions: %v)", n.Status.Conditions)
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return "still tainted " + t.Key
		}
	}
	return ""
}

// firstPending names one pending node, the same one for the same set.
func firstPending(pending map[string]string) string {
	names := slices.Sorted(maps.Keys(pending))
	if len(names) == 0 {
		return "none"
	}
	return names[0] + ": " + pending[names[0]]
}
