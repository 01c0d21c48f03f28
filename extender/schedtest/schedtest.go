// Package schedtest holds the scenarios that test edgemigrate-scheduler on a real
// kube-scheduler, in either mode: extender (stock kube-scheduler calling the extender) and
// plugin (the edgemigrate-scheduler build). Each mode's e2e package starts its scheduler on
// a shared cluster and runs the same scenarios, so both are held to the same placements,
// reasons and guarantees.
package schedtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/manifests"
)

const (
	groupLabel = api.Group + "/test-group"
	pauseImage = "registry.k8s.io/pause:3.10"
)

// Env is a cluster whose edgemigrate-scheduler runs in one of the two modes.
type Env struct {
	Cluster *localcluster.Cluster
	// Counts reports whether the Jetson side of the scheduler counts occupied bytes on the
	// node; nil when it runs in another process and cannot be asked, in which case nodes
	// are ready once untainted with their occupants bound.
	Counts func(node string, occupied int64) bool
	// Asked reports whether the Jetson side was asked about the pod "namespace/name"; nil
	// when it cannot tell.
	Asked func(pod string) bool
}

// Node is a fake Jetson of a test's own group, already holding occupied bytes of
// unified memory through a pod placed on it directly (declared GPU memory, which the
// default scheduler does not see).
type Node struct {
	Name     string
	Model    localcluster.JetsonModel
	Occupied int64
}

// AddNodes creates the group's nodes and their occupants, and waits until the scheduler
// can use them and, where it can tell, counts the occupants.
func (e *Env) AddNodes(ctx context.Context, t *testing.T, ns, group string, nodes []Node) {
	t.Helper()
	var objs []*corev1.Node
	for _, n := range nodes {
		objs = append(objs, localcluster.JetsonNode(n.Name, n.Model, localcluster.NodeOptions{Labels: map[string]string{groupLabel: group}}))
	}
	if err := e.Cluster.AddNodes(ctx, objs...); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Occupied == 0 {
			continue
		}
		p := Pod(ns, "occupant-"+n.Name, group, n.Occupied)
		p.Spec.SchedulerName = corev1.DefaultSchedulerName
		p.Spec.NodeName = n.Name
		if _, err := e.Cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating occupant: %v", err)
		}
	}
	// Wait also for the controller-manager to lift the not-ready taint it puts on new nodes:
	// until then the scheduler finds them unschedulable for reasons of its own.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range nodes {
			if e.Counts != nil && !e.Counts(n.Name, n.Occupied) {
				return false, nil
			}
			node, err := e.Cluster.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || len(node.Spec.Taints) != 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("nodes never untainted and counted with their occupants: %v", err)
	}
}

// Pod is a pod of the edgemigrate scheduler for a node group, claiming unified bytes: a
// 256Mi memory request and the rest as declared GPU memory.
func Pod(ns, name, group string, unified int64) *corev1.Pod {
	const memory = 256 << 20
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels:      map[string]string{groupLabel: group},
			Annotations: map[string]string{api.AnnotationGPUMemory: resource.NewQuantity(unified-memory, resource.BinarySI).String()},
		},
		Spec: corev1.PodSpec{
			SchedulerName: api.SchedulerName,
			NodeSelector:  map[string]string{groupLabel: group},
			Containers: []corev1.Container{{
				Name: "model", Image: pauseImage,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceMemory: *resource.NewQuantity(memory, resource.BinarySI),
					corev1.ResourceCPU:    resource.MustParse("10m"),
				}},
			}},
		},
	}
}

// settled waits until the pod is bound or, when bound is false, the scheduler has found it
// unschedulable.
func settled(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, bound bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		if bound {
			return p.Spec.NodeName != "", nil
		}
		return isSettled(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not settled (want bound: %v): %v (last status %+v)", ns, name, bound, err, last.Status)
	}
	return last
}

func isSettled(p *corev1.Pod) bool {
	if p.Spec.NodeName != "" {
		return true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

// PodsLandWhereTheFitModelSays: four Jetsons with different free unified memory; pods
// created one after another land on the node jetson.Fit and jetson.Score (binpack) pick, and
// a pod that fits nowhere stays Pending with the model's reason in its event.
func PodsLandWhereTheFitModelSays(t *testing.T, e *Env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := e.Cluster.Client
	ns := clustertest.Namespace(t, e.Cluster, nil)
	nodes := []Node{
		{"fit-a", localcluster.AGXXavier, 28 * jetsontest.Gi}, // 4Gi free
		{"fit-b", localcluster.AGXOrin, 40 * jetsontest.Gi},   // 24Gi free
		{"fit-c", localcluster.OrinNX, 6 * jetsontest.Gi},     // 10Gi free
		{"fit-d", localcluster.AGXXavier, 20 * jetsontest.Gi}, // 12Gi free
	}
	e.AddNodes(ctx, t, ns, "fit", nodes)

	// The test's own account of each node, kept with the jetson model.
	capacity := map[string]jetson.Capacity{}
	used := map[string]jetson.Demand{}
	for _, n := range nodes {
		capacity[n.Name] = jetson.NodeCapacity(localcluster.JetsonNode(n.Name, n.Model, localcluster.NodeOptions{}), jetson.Config{})
		used[n.Name] = jetson.Demand{GPUMemory: n.Occupied}
	}
	steps := []struct {
		need int64
		want string // "" means fits nowhere
	}{
		{2 * jetsontest.Gi, "fit-a"},  // fits all four: binpack prefers a, already the fullest
		{20 * jetsontest.Gi, "fit-b"}, // only b has 20Gi
		{11 * jetsontest.Gi, "fit-d"}, // only d
		{9 * jetsontest.Gi, "fit-c"},  // only c
		{4 * jetsontest.Gi, "fit-b"},  // exactly b's last 4Gi
		{2 * jetsontest.Gi, "fit-a"},  // exactly a's last 2Gi
		{2 * jetsontest.Gi, ""},       // 0, 0, 1Gi and 1Gi free
	}
	for i, step := range steps {
		p := Pod(ns, fmt.Sprintf("step-%d", i), "fit", step.need)
		demand, err := jetson.PodDemand(p)
		if err != nil {
			t.Fatal(err)
		}
		if model := modelChoice(capacity, used, demand); model != step.want {
			t.Fatalf("step %d: the fit model picks %q, the scenario says %q", i, model, step.want)
		}
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got := settled(ctx, t, client, ns, p.Name, step.want != "")
		if got.Spec.NodeName != step.want {
			t.Fatalf("step %d: pod needing %s landed on %q, want %q", i, jetson.FormatBytes(step.need), got.Spec.NodeName, step.want)
		}
		if step.want != "" {
			used[step.want] = used[step.want].Add(demand)
		}
	}

	// The last pod: Pending, and the model's sentence is in its FailedScheduling event.
	last := fmt.Sprintf("step-%d", len(steps)-1)
	waitEvent(ctx, t, client, ns, last, "unified memory: need 2.0Gi, free 1.0Gi of 16.0Gi on NVIDIA-Jetson-Orin-NX")
	if p, err := client.CoreV1().Pods(ns).Get(ctx, last, metav1.GetOptions{}); err != nil || p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
		t.Fatalf("pod that fits nowhere: %v, node %q, phase %s", err, p.Spec.NodeName, p.Status.Phase)
	}
}

// modelChoice is where the fit model puts a pod: the fitting node with the best binpack
// score as the scheduler receives it (0–10), or "" if none fits. A tie is a badly designed
// step, so it is reported as such.
func modelChoice(capacity map[string]jetson.Capacity, used map[string]jetson.Demand, d jetson.Demand) string {
	type scored struct {
		name  string
		score int64
	}
	var fits []scored
	for name, c := range capacity {
		if jetson.Fit(c, used[name], d) == nil {
			fits = append(fits, scored{name, (jetson.Score(jetson.Binpack, c, used[name], d)*10 + 50) / 100})
		}
	}
	if len(fits) == 0 {
		return ""
	}
	slices.SortFunc(fits, func(a, b scored) int { return int(b.score - a.score) })
	// Within one point the default plugins' scores could decide instead.
	if len(fits) > 1 && fits[0].score-fits[1].score < 2 {
		return "ambiguous"
	}
	return fits[0].name
}

// BurstNeverOvercommits: 200 pods declaring GPU memory, created at once against four
// Jetsons that can hold about half of them. Once every pod is bound or unschedulable, no
// node's unified memory is overcommitted, and the nodes are well used.
func BurstNeverOvercommits(t *testing.T, e *Env) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	client := e.Cluster.Client
	ns := clustertest.Namespace(t, e.Cluster, nil)
	nodes := []Node{
		{"burst-a", localcluster.AGXXavier, 0},
		{"burst-b", localcluster.AGXOrin, 8 * jetsontest.Gi},
		{"burst-c", localcluster.OrinNX, 0},
		{"burst-d", localcluster.AGXXavier, 12 * jetsontest.Gi},
	}
	e.AddNodes(ctx, t, ns, "burst", nodes)
	capacity := map[string]int64{}
	var total int64
	for _, n := range nodes {
		capacity[n.Name] = n.Model.Memory.Value()
		total += n.Model.Memory.Value() - n.Occupied
	}

	const pods = 200
	var demanded int64
	errs := make(chan error, pods)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := range pods {
		// 512Mi to 2.25Gi, in quarter-Gi steps: uneven sizes leave holes to fill.
		unified := (512 << 20) + int64(i%8)*(256<<20)
		demanded += unified
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := client.CoreV1().Pods(ns).Create(ctx, Pod(ns, fmt.Sprintf("burst-%03d", i), "burst", unified), metav1.CreateOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("creating pods: %v", err)
		}
	}
	if demanded <= total {
		t.Fatalf("scenario too small: %s demanded, %s free", jetson.FormatBytes(demanded), jetson.FormatBytes(total))
	}

	var list *corev1.PodList
	var unsettled int
	err := wait.PollUntilContextTimeout(ctx, time.Second, 8*time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		list, err = client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: groupLabel + "=burst"})
		if err != nil {
			return false, nil
		}
		unsettled = 0
		for i := range list.Items {
			if !isSettled(&list.Items[i]) {
				unsettled++
			}
		}
		return unsettled == 0, nil
	})
	if err != nil {
		t.Fatalf("%d pods neither bound nor unschedulable: %v", unsettled, err)
	}

	perNode := map[string]int64{}
	bound := 0
	for i := range list.Items {
		p := &list.Items[i]
		if p.Spec.NodeName == "" {
			continue
		}
		d, err := jetson.PodDemand(p)
		if err != nil {
			t.Fatal(err)
		}
		perNode[p.Spec.NodeName] += d.Unified()
		if !strings.HasPrefix(p.Name, "occupant-") {
			bound++
		}
	}
	for _, n := range nodes {
		t.Logf("%s: %s of %s unified memory claimed", n.Name, jetson.FormatBytes(perNode[n.Name]), jetson.FormatBytes(capacity[n.Name]))
		if perNode[n.Name] > capacity[n.Name] {
			t.Errorf("%s overcommitted: %s claimed of %s", n.Name, jetson.FormatBytes(perNode[n.Name]), jetson.FormatBytes(capacity[n.Name]))
		}
		// Pods are at most 2.25Gi: a node left with more free than that was not filled.
		if free := capacity[n.Name] - perNode[n.Name]; free > 2*jetsontest.Gi+jetsontest.Gi/4 {
			t.Errorf("%s left with %s free while pods wait", n.Name, jetson.FormatBytes(free))
		}
	}
	if bound == 0 || bound == pods {
		t.Errorf("%d of %d pods bound: the scenario should fill the nodes and leave pods Pending", bound, pods)
	}
	t.Logf("%d of %d pods bound, %d Pending", bound, pods, pods-bound)
}

// OtherSchedulersPodsUntouched: pods for the default scheduler (not running in this
// cluster) or any other scheduler are never sent to the extender nor bound by
// edgemigrate-scheduler, even when they declare GPU memory.
func OtherSchedulersPodsUntouched(t *testing.T, e *Env) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := e.Cluster.Client
	ns := clustertest.Namespace(t, e.Cluster, nil)
	e.AddNodes(ctx, t, ns, "others", []Node{{"others-a", localcluster.AGXXavier, 0}})

	var untouched []string
	for _, scheduler := range []string{corev1.DefaultSchedulerName, "someone-elses-scheduler"} {
		p := Pod(ns, "for-"+scheduler, "others", jetsontest.Gi)
		p.Spec.SchedulerName = scheduler
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		untouched = append(untouched, p.Name)
	}
	// Created after them: once it is bound, the scheduler has been through its queue.
	ours := Pod(ns, "ours", "others", jetsontest.Gi)
	if _, err := client.CoreV1().Pods(ns).Create(ctx, ours, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := settled(ctx, t, client, ns, ours.Name, true); got.Spec.NodeName != "others-a" {
		t.Fatalf("our pod landed on %q, want others-a", got.Spec.NodeName)
	}
	if e.Asked != nil && !e.Asked(ns+"/"+ours.Name) {
		t.Fatal("the extender was not asked about our own pod: the recording does not work")
	}
	for _, name := range untouched {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
			t.Errorf("pod %s touched: node %q, conditions %v", name, p.Spec.NodeName, p.Status.Conditions)
		}
		if e.Asked != nil && e.Asked(ns+"/"+name) {
			t.Errorf("the extender was asked about pod %s", name)
		}
		events, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			t.Fatal(err)
		}
		if len(events.Items) != 0 {
			t.Errorf("pod %s has events: %v", name, events.Items)
		}
	}
}

// waitEvent waits for a FailedScheduling event of the pod whose message holds want.
func waitEvent(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, want string) {
	t.Helper()
	var events []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": name, "reason": "FailedScheduling",
		}.String()})
		if err != nil {
			return false, nil
		}
		events = events[:0]
		for _, ev := range list.Items {
			events = append(events, ev.Message)
			if strings.Contains(ev.Message, want) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no FailedScheduling event of %s says %q; events: %q", name, want, events)
	}
}

// WaitingPodScheduledWhenRoomFrees: a pod that fits no Jetson waits; deleting the pod that
// holds the room gets it scheduled. Run it on a scheduler whose periodic flush of waiting
// pods is far off (kube-scheduler's --pod-max-in-unschedulable-pods-duration): then only the
// plugin's queueing hint can bring the pod back before the test's deadline.
func WaitingPodScheduledWhenRoomFrees(t *testing.T, e *Env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := e.Cluster.Client
	ns := clustertest.Namespace(t, e.Cluster, nil)
	e.AddNodes(ctx, t, ns, "wait", []Node{{"wait-a", localcluster.AGXXavier, 28 * jetsontest.Gi}})

	waiting := Pod(ns, "waiting", "wait", 6*jetsontest.Gi)
	if _, err := client.CoreV1().Pods(ns).Create(ctx, waiting, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	settled(ctx, t, client, ns, waiting.Name, false)
	waitEvent(ctx, t, client, ns, waiting.Name, "unified memory: need 6.0Gi, free 4.0Gi of 32.0Gi on NVIDIA-Jetson-AGX-Xavier")

	if err := client.CoreV1().Pods(ns).Delete(ctx, "occupant-wait-a", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatalf("deleting the occupant: %v", err)
	}
	if got := settled(ctx, t, client, ns, waiting.Name, true); got.Spec.NodeName != "wait-a" {
		t.Fatalf("waiting pod landed on %q, want wait-a", got.Spec.NodeName)
	}
}

// PluginConfig is edgemigrate-scheduler's plugin-mode configuration as the chart ships it
// (manifests.SchedulerPluginConfig), with the plugin's arguments set to the extender's
// defaults (jetson.DefaultFlags), which its tests run with: both modes see the same model.
// It is a test cluster's only scheduler, so it does not elect a leader (the chart's lease
// namespace does not exist there).
func PluginConfig() (*schedconfig.KubeSchedulerConfiguration, error) {
	cfg, err := manifests.SchedulerPluginConfig()
	if err != nil {
		return nil, err
	}
	cfg.LeaderElection.LeaderElect = ptr.To(false)
	f := jetson.DefaultFlags()
	args, err := json.Marshal(map[string]string{"policy": f.Policy, "memoryReserve": f.MemoryReserve, "nodeSelector": f.NodeSelector})
	if err != nil {
		return nil, fmt.Errorf("encoding %s's arguments: %w", api.SchedulerPluginName, err)
	}
	cfg.Profiles[0].PluginConfig[0].Args = runtime.RawExtension{Raw: args}
	return cfg, nil
}
