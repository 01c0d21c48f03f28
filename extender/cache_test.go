package extender

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
)

const gi = int64(1) << 30

func jetsonNode(name, mem string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			api.LabelGPUProduct: "NVIDIA-Jetson-AGX-Xavier", corev1.LabelArchStable: "arm64",
		}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("8"),
			corev1.ResourceMemory: resource.MustParse(mem),
			api.ResourceGPU:       resource.MustParse("4"),
		}},
	}
}

func plainNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelArchStable: "amd64"}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
		}},
	}
}

// gpuPod is a pod requesting mem and declaring gpuMem (either may be empty), bound to
// node when node is not empty.
func gpuPod(name, node, mem, gpuMem string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Annotations: map[string]string{}},
		Spec: corev1.PodSpec{
			NodeName:      node,
			SchedulerName: api.SchedulerName,
			Containers:    []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if mem != "" {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	if gpuMem != "" {
		p.Annotations[api.AnnotationGPUMemory] = gpuMem
	}
	return p
}

func key(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

func usedMemory(t *testing.T, c *Cache, node string) int64 {
	t.Helper()
	_, used, _ := c.Node(node)
	return used.Unified()
}

func TestCacheCountsBoundPods(t *testing.T) {
	c := NewCache(jetson.Config{}, time.Minute)
	c.SetNode(jetsonNode("a", "32Gi"))
	c.SetPod(gpuPod("pending", "", "8Gi", "8Gi"))
	if got := usedMemory(t, c, "a"); got != 0 {
		t.Fatalf("pending pod counted: used %d", got)
	}
	p := gpuPod("p", "a", "2Gi", "6Gi")
	c.SetPod(p)
	if got := usedMemory(t, c, "a"); got != 8*gi {
		t.Fatalf("used = %s, want 8Gi", jetson.FormatBytes(got))
	}
	c.SetPod(p) // a resync changes nothing
	if got := usedMemory(t, c, "a"); got != 8*gi {
		t.Fatalf("after resync used = %s, want 8Gi", jetson.FormatBytes(got))
	}
	resized := p.DeepCopy()
	resized.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("4Gi")
	c.SetPod(resized)
	if got := usedMemory(t, c, "a"); got != 10*gi {
		t.Fatalf("after resize used = %s, want 10Gi", jetson.FormatBytes(got))
	}
	done := resized.DeepCopy()
	done.Status.Phase = corev1.PodSucceeded
	c.SetPod(done)
	if got := usedMemory(t, c, "a"); got != 0 {
		t.Fatalf("finished pod still counted: %s", jetson.FormatBytes(got))
	}
	c.SetPod(p)
	c.DeletePod(p.UID)
	if got := usedMemory(t, c, "a"); got != 0 {
		t.Fatalf("deleted pod still counted: %s", jetson.FormatBytes(got))
	}
}

func TestCacheBoundPodWithMalformedAnnotationCountsItsMemory(t *testing.T) {
	c := NewCache(jetson.Config{}, time.Minute)
	c.SetNode(jetsonNode("a", "32Gi"))
	c.SetPod(gpuPod("p", "a", "3Gi", "lots"))
	if got := usedMemory(t, c, "a"); got != 3*gi {
		t.Fatalf("used = %s, want the memory request 3Gi", jetson.FormatBytes(got))
	}
}

func TestCacheReserve(t *testing.T) {
	c := NewCache(jetson.Config{}, time.Minute)
	c.SetNode(jetsonNode("a", "16Gi"))
	first := jetson.Demand{GPUMemory: 10 * gi}
	if r := c.Reserve(key("first"), "uid-first", "a", first); r != nil {
		t.Fatalf("first reserve refused: %v", r)
	}
	// The second pod was filtered against the same free memory; bind must refuse it.
	r := c.Reserve(key("second"), "uid-second", "a", first)
	if want := "unified memory: need 10.0Gi, free 6.0Gi of 16.0Gi on NVIDIA-Jetson-AGX-Xavier"; jetson.Reason(r) != want {
		t.Fatalf("second reserve = %q, want %q", jetson.Reason(r), want)
	}
	if c.Assumed() != 1 {
		t.Fatalf("assumed = %d, want 1", c.Assumed())
	}
	// The informer confirms the first: counted once, assumption gone.
	c.SetPod(gpuPod("first", "a", "", "10Gi"))
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 10*gi {
		t.Fatalf("after confirmation assumed %d used %s, want 0 and 10Gi", c.Assumed(), jetson.FormatBytes(usedMemory(t, c, "a")))
	}
	// Bind retried after the informer saw it: nothing counted twice.
	if r := c.Reserve(key("first"), "uid-first", "a", first); r != nil || usedMemory(t, c, "a") != 10*gi {
		t.Fatalf("re-reserve of a bound pod: %v, used %s", r, jetson.FormatBytes(usedMemory(t, c, "a")))
	}
	if r := c.Reserve(key("x"), "uid-x", "nowhere", jetson.Demand{}); jetson.Reason(r) != "node nowhere is unknown to the edgemigrate extender" {
		t.Fatalf("reserve on unknown node = %q", jetson.Reason(r))
	}
	if len(c.Used()) != 1 {
		t.Fatalf("unknown node left behind in the cache: %v", c.Used())
	}
}

// TestCacheAssumptionSurvivesPendingUpdates: the scheduler writes a pending pod's status
// (conditions, nominated node) while the extender's Binding is in flight; the informer's copy
// without a node must not end the assumption, or a second pod could claim the same memory.
func TestCacheAssumptionSurvivesPendingUpdates(t *testing.T) {
	c := NewCache(jetson.Config{}, time.Minute)
	c.SetNode(jetsonNode("a", "16Gi"))
	if r := c.Reserve(key("p"), "uid-p", "a", jetson.Demand{GPUMemory: 10 * gi}); r != nil {
		t.Fatal(r)
	}
	pending := gpuPod("p", "", "", "10Gi")
	pending.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	c.SetPod(pending)
	if c.Assumed() != 1 || usedMemory(t, c, "a") != 10*gi {
		t.Fatalf("after a pending update: assumed %d, used %s; want 1 and 10Gi", c.Assumed(), jetson.FormatBytes(usedMemory(t, c, "a")))
	}
	if r := c.Reserve(key("q"), "uid-q", "a", jetson.Demand{GPUMemory: 10 * gi}); r == nil {
		t.Fatal("a second pod claimed the memory of an assumed one")
	}
	failed := gpuPod("p", "", "", "10Gi")
	failed.Status.Phase = corev1.PodFailed
	c.SetPod(failed)
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 0 {
		t.Fatal("a failed pod still counted")
	}
}

func TestCacheForgetAndExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewCache(jetson.Config{}, 30*time.Second)
	c.now = func() time.Time { return now }
	var reported []int
	c.onAssumed = func(n int) { reported = append(reported, n) }
	c.SetNode(jetsonNode("a", "32Gi"))
	d := jetson.Demand{Memory: 4 * gi}
	c.Reserve(key("p1"), "uid-p1", "a", d)
	c.Reserve(key("p2"), "uid-p2", "a", d)
	c.Forget("uid-p1")
	if got := usedMemory(t, c, "a"); got != 4*gi {
		t.Fatalf("after forget used = %s, want 4Gi", jetson.FormatBytes(got))
	}
	now = now.Add(29 * time.Second)
	c.Expire()
	if c.Assumed() != 1 {
		t.Fatal("assumption expired before its ttl")
	}
	now = now.Add(2 * time.Second)
	c.Expire()
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 0 {
		t.Fatalf("after ttl: assumed %d used %d", c.Assumed(), usedMemory(t, c, "a"))
	}
	if want := []int{1, 2, 1, 0}; !slices.Equal(reported, want) {
		t.Fatalf("assumption counts reported %v, want %v", reported, want)
	}
	c.Reserve(key("p3"), "uid-p3", "a", d)
	c.DeletePod("uid-p3")
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 0 {
		t.Fatal("deleting an assumed pod kept its assumption")
	}
}

func TestCacheDeletedNode(t *testing.T) {
	c := NewCache(jetson.Config{}, time.Minute)
	c.SetNode(jetsonNode("a", "32Gi"))
	c.SetPod(gpuPod("p", "a", "1Gi", ""))
	c.DeleteNode("a")
	if _, _, ok := c.Node("a"); ok {
		t.Fatal("deleted node still known")
	}
	// The node comes back before its pod is gone: the pod still counts.
	c.SetNode(jetsonNode("a", "32Gi"))
	if got := usedMemory(t, c, "a"); got != gi {
		t.Fatalf("used = %s, want 1Gi", jetson.FormatBytes(got))
	}
	c.DeleteNode("a")
	c.DeletePod("uid-p")
	if len(c.Used()) != 0 {
		t.Fatalf("deleted node with no pods left in the cache: %v", c.Used())
	}
}
