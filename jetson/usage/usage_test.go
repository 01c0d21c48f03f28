package usage

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
)

func usedMemory(t *testing.T, c *Cache, node string) int64 {
	t.Helper()
	_, used, _ := c.Node(node)
	return used.Unified()
}

func TestCacheCountsBoundPods(t *testing.T) {
	c := New(jetson.Config{}, time.Minute)
	c.SetNode(jetsontest.JetsonNode("a", "32Gi"))
	c.SetPod(jetsontest.Pod("pending", "", "8Gi", "8Gi"))
	if got := usedMemory(t, c, "a"); got != 0 {
		t.Fatalf("pending pod counted: used %d", got)
	}
	p := jetsontest.Pod("p", "a", "2Gi", "6Gi")
	c.SetPod(p)
	if got := usedMemory(t, c, "a"); got != 8*jetsontest.Gi {
		t.Fatalf("used = %s, want 8Gi", jetson.FormatBytes(got))
	}
	c.SetPod(p) // a resync changes nothing
	if got := usedMemory(t, c, "a"); got != 8*jetsontest.Gi {
		t.Fatalf("after resync used = %s, want 8Gi", jetson.FormatBytes(got))
	}
	resized := p.DeepCopy()
	resized.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("4Gi")
	c.SetPod(resized)
	if got := usedMemory(t, c, "a"); got != 10*jetsontest.Gi {
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
	c := New(jetson.Config{}, time.Minute)
	c.SetNode(jetsontest.JetsonNode("a", "32Gi"))
	c.SetPod(jetsontest.Pod("p", "a", "3Gi", "lots"))
	if got := usedMemory(t, c, "a"); got != 3*jetsontest.Gi {
		t.Fatalf("used = %s, want the memory request 3Gi", jetson.FormatBytes(got))
	}
}

func TestCacheReserve(t *testing.T) {
	c := New(jetson.Config{}, time.Minute)
	c.SetNode(jetsontest.JetsonNode("a", "16Gi"))
	first := jetson.Demand{GPUMemory: 10 * jetsontest.Gi}
	if r := c.Reserve(jetsontest.Key("first"), "uid-first", "a", first); r != nil {
		t.Fatalf("first reserve refused: %v", r)
	}
	// The second pod was filtered against the same free memory; bind must refuse it.
	r := c.Reserve(jetsontest.Key("second"), "uid-second", "a", first)
	if want := "unified memory: need 10.0Gi, free 6.0Gi of 16.0Gi on NVIDIA-Jetson-AGX-Xavier"; jetson.Reason(r) != want {
		t.Fatalf("second reserve = %q, want %q", jetson.Reason(r), want)
	}
	if c.Assumed() != 1 {
		t.Fatalf("assumed = %d, want 1", c.Assumed())
	}
	// The informer confirms the first: counted once, assumption gone.
	c.SetPod(jetsontest.Pod("first", "a", "", "10Gi"))
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 10*jetsontest.Gi {
		t.Fatalf("after confirmation assumed %d used %s, want 0 and 10Gi", c.Assumed(), jetson.FormatBytes(usedMemory(t, c, "a")))
	}
	// Bind retried after the informer saw it: nothing counted twice.
	if r := c.Reserve(jetsontest.Key("first"), "uid-first", "a", first); r != nil || usedMemory(t, c, "a") != 10*jetsontest.Gi {
		t.Fatalf("re-reserve of a bound pod: %v, used %s", r, jetson.FormatBytes(usedMemory(t, c, "a")))
	}
	if r := c.Reserve(jetsontest.Key("x"), "uid-x", "nowhere", jetson.Demand{}); jetson.Reason(r) != "node nowhere is unknown to edgemigrate" {
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
	c := New(jetson.Config{}, time.Minute)
	c.SetNode(jetsontest.JetsonNode("a", "16Gi"))
	if r := c.Reserve(jetsontest.Key("p"), "uid-p", "a", jetson.Demand{GPUMemory: 10 * jetsontest.Gi}); r != nil {
		t.Fatal(r)
	}
	pending := jetsontest.Pod("p", "", "", "10Gi")
	pending.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	c.SetPod(pending)
	if c.Assumed() != 1 || usedMemory(t, c, "a") != 10*jetsontest.Gi {
		t.Fatalf("after a pending update: assumed %d, used %s; want 1 and 10Gi", c.Assumed(), jetson.FormatBytes(usedMemory(t, c, "a")))
	}
	if r := c.Reserve(jetsontest.Key("q"), "uid-q", "a", jetson.Demand{GPUMemory: 10 * jetsontest.Gi}); r == nil {
		t.Fatal("a second pod claimed the memory of an assumed one")
	}
	failed := jetsontest.Pod("p", "", "", "10Gi")
	failed.Status.Phase = corev1.PodFailed
	c.SetPod(failed)
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 0 {
		t.Fatal("a failed pod still counted")
	}
}

func TestCacheUnreserveAndExpire(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var reported []int
	c := New(jetson.Config{}, 30*time.Second, WithClock(clk), OnAssumed(func(n int) { reported = append(reported, n) }))
	c.SetNode(jetsontest.JetsonNode("a", "32Gi"))
	d := jetson.Demand{Memory: 4 * jetsontest.Gi}
	c.Reserve(jetsontest.Key("p1"), "uid-p1", "a", d)
	c.Reserve(jetsontest.Key("p2"), "uid-p2", "a", d)
	c.Unreserve("uid-p1")
	if got := usedMemory(t, c, "a"); got != 4*jetsontest.Gi {
		t.Fatalf("after forget used = %s, want 4Gi", jetson.FormatBytes(got))
	}
	clk.Step(29 * time.Second)
	c.Expire(ctx)
	if c.Assumed() != 1 {
		t.Fatal("assumption expired before its ttl")
	}
	clk.Step(2 * time.Second)
	c.Expire(ctx)
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 0 {
		t.Fatalf("after ttl: assumed %d used %d", c.Assumed(), usedMemory(t, c, "a"))
	}
	if want := []int{1, 2, 1, 0}; !slices.Equal(reported, want) {
		t.Fatalf("assumption counts reported %v, want %v", reported, want)
	}
	c.Reserve(jetsontest.Key("p3"), "uid-p3", "a", d)
	c.DeletePod("uid-p3")
	if c.Assumed() != 0 || usedMemory(t, c, "a") != 0 {
		t.Fatal("deleting an assumed pod kept its assumption")
	}
}

func TestCacheDeletedNode(t *testing.T) {
	c := New(jetson.Config{}, time.Minute)
	c.SetNode(jetsontest.JetsonNode("a", "32Gi"))
	c.SetPod(jetsontest.Pod("p", "a", "1Gi", ""))
	c.DeleteNode("a")
	if _, _, ok := c.Node("a"); ok {
		t.Fatal("deleted node still known")
	}
	// The node comes back before its pod is gone: the pod still counts.
	c.SetNode(jetsontest.JetsonNode("a", "32Gi"))
	if got := usedMemory(t, c, "a"); got != jetsontest.Gi {
		t.Fatalf("used = %s, want 1Gi", jetson.FormatBytes(got))
	}
	c.DeleteNode("a")
	c.DeletePod("uid-p")
	if len(c.Used()) != 0 {
		t.Fatalf("deleted node with no pods left in the cache: %v", c.Used())
	}
}
