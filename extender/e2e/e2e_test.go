// Package e2e tests the extender with a real kube-scheduler configured from
// manifests/scheduler-config.yaml, on one shared local cluster with fake Jetson nodes.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/extender"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/manifests"
)

var shared clustertest.Shared

func TestMain(m *testing.M) { clustertest.Main(m, 1, localcluster.Options{Name: "extender"}, &shared) }

const (
	groupLabel = api.Group + "/test-group"
	pauseImage = "registry.k8s.io/pause:3.10"
)

// env is the package's extender and scheduler, started once on the shared cluster.
type env struct {
	cluster *localcluster.Cluster
	ext     *extender.Extender
	// seen records the pods (namespace/name) the scheduler asked the extender about.
	seen sync.Map
}

var (
	envOnce sync.Once
	theEnv  *env
	envErr  error
)

// setup starts the extender on 127.0.0.1 and then kube-scheduler from the manifest, with
// the extender's URL rewritten to it. Both run until the package's cluster stops.
func setup(t *testing.T) *env {
	t.Helper()
	c := shared.Require(t)[0]
	envOnce.Do(func() { theEnv, envErr = start(c) })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return theEnv
}

func start(c *localcluster.Cluster) (*env, error) {
	ctx := context.Background() // lives as long as the test binary
	client, err := kubernetes.NewForConfig(extender.ClientConfig(c.Config))
	if err != nil {
		return nil, fmt.Errorf("creating client: %w", err)
	}
	reg := serve.NewRegistry()
	ext, err := extender.New(client, extender.Options{}, reg)
	if err != nil {
		return nil, err
	}
	if err := ext.Start(ctx); err != nil {
		return nil, err
	}
	e := &env{cluster: c, ext: ext}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	go func() { _ = serve.Serve(ctx, ln, e.recording(ext.Handler(reg)), nil) }()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return ext.Ready() == nil, nil
	}); err != nil {
		return nil, fmt.Errorf("extender caches never synced: %w", err)
	}

	sched, err := schedulerConfig("http://" + ln.Addr().String())
	if err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.StartScheduler(startCtx, sched); err != nil {
		return nil, err
	}
	return e, nil
}

// schedulerConfig is manifests/scheduler-config.yaml with its extender pointed at url.
func schedulerConfig(url string) (*schedconfig.KubeSchedulerConfiguration, error) {
	cfg, err := manifests.SchedulerConfig()
	if err != nil {
		return nil, err
	}
	cfg.Extenders[0].URLPrefix = url
	// One scheduler: no lease to wait for (the manifest's lives in the chart's release
	// namespace, which this cluster lacks).
	cfg.LeaderElection.LeaderElect = ptr.To(false)
	return cfg, nil
}

// recording notes which pod each extender call is about, then serves it.
func (e *env) recording(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			var req struct {
				Pod *struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				}
				PodName, PodNamespace string
			}
			if json.Unmarshal(body, &req) == nil {
				if req.Pod != nil {
					e.seen.Store(req.Pod.Metadata.Namespace+"/"+req.Pod.Metadata.Name, true)
				} else if req.PodName != "" {
					e.seen.Store(req.PodNamespace+"/"+req.PodName, true)
				}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// testNode is a fake Jetson of a test's own group, already holding occupied bytes of
// unified memory through a pod placed on it directly (declared GPU memory, which the
// default scheduler does not see).
type testNode struct {
	name     string
	model    localcluster.JetsonModel
	occupied int64
}

// addNodes creates the group's nodes and their occupants, and waits until the extender
// counts them.
func (e *env) addNodes(ctx context.Context, t *testing.T, ns, group string, nodes []testNode) {
	t.Helper()
	var objs []*corev1.Node
	for _, n := range nodes {
		objs = append(objs, localcluster.JetsonNode(n.name, n.model, localcluster.NodeOptions{Labels: map[string]string{groupLabel: group}}))
	}
	if err := e.cluster.AddNodes(ctx, objs...); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.occupied == 0 {
			continue
		}
		p := pod(ns, "occupant-"+n.name, group, n.occupied)
		p.Spec.SchedulerName = corev1.DefaultSchedulerName
		p.Spec.NodeName = n.name
		if _, err := e.cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating occupant: %v", err)
		}
	}
	// Wait also for the controller-manager to lift the not-ready taint it puts on new nodes:
	// until then the scheduler finds them unschedulable for reasons of its own.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range nodes {
			if c, used, ok := e.ext.Usage().Node(n.name); !ok || !c.Jetson || used.Unified() != n.occupied {
				return false, nil
			}
			node, err := e.cluster.Client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if err != nil || len(node.Spec.Taints) != 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("nodes never untainted and counted by the extender with their occupants: %v", err)
	}
}

// pod is a pod of the edgemigrate scheduler for a node group, claiming unified bytes: a
// 256Mi memory request and the rest as declared GPU memory.
func pod(ns, name, group string, unified int64) *corev1.Pod {
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

// TestE2EPodsLandWhereTheFitModelSays: four Jetsons with different free unified memory; pods
// created one after another land on the node jetson.Fit and jetson.Score (binpack) pick, and
// a pod that fits nowhere stays Pending with the extender's reason in its event.
func TestE2EPodsLandWhereTheFitModelSays(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := e.cluster.Client
	ns := clustertest.Namespace(t, e.cluster, nil)
	nodes := []testNode{
		{"fit-a", localcluster.AGXXavier, 28 * jetsontest.Gi}, // 4Gi free
		{"fit-b", localcluster.AGXOrin, 40 * jetsontest.Gi},   // 24Gi free
		{"fit-c", localcluster.OrinNX, 6 * jetsontest.Gi},     // 10Gi free
		{"fit-d", localcluster.AGXXavier, 20 * jetsontest.Gi}, // 12Gi free
	}
	e.addNodes(ctx, t, ns, "fit", nodes)

	// The test's own account of each node, kept with the jetson model.
	capacity := map[string]jetson.Capacity{}
	used := map[string]jetson.Demand{}
	for _, n := range nodes {
		capacity[n.name] = jetson.NodeCapacity(localcluster.JetsonNode(n.name, n.model, localcluster.NodeOptions{}), jetson.Config{})
		used[n.name] = jetson.Demand{GPUMemory: n.occupied}
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
		p := pod(ns, fmt.Sprintf("step-%d", i), "fit", step.need)
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

	// The last pod: Pending, and the extender's sentence is in its FailedScheduling event.
	last := fmt.Sprintf("step-%d", len(steps)-1)
	want := "unified memory: need 2.0Gi, free 1.0Gi of 16.0Gi on NVIDIA-Jetson-Orin-NX"
	var events []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": last, "reason": "FailedScheduling",
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
		t.Fatalf("no FailedScheduling event of %s says %q; events: %q", last, want, events)
	}
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

// TestE2EBurstNeverOvercommits: 200 pods declaring GPU memory, created at once against four
// Jetsons that can hold about half of them. Once every pod is bound or unschedulable, no
// node's unified memory is overcommitted, and the nodes are well used.
func TestE2EBurstNeverOvercommits(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	client := e.cluster.Client
	ns := clustertest.Namespace(t, e.cluster, nil)
	nodes := []testNode{
		{"burst-a", localcluster.AGXXavier, 0},
		{"burst-b", localcluster.AGXOrin, 8 * jetsontest.Gi},
		{"burst-c", localcluster.OrinNX, 0},
		{"burst-d", localcluster.AGXXavier, 12 * jetsontest.Gi},
	}
	e.addNodes(ctx, t, ns, "burst", nodes)
	capacity := map[string]int64{}
	var total int64
	for _, n := range nodes {
		capacity[n.name] = n.model.Memory.Value()
		total += n.model.Memory.Value() - n.occupied
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
			_, err := client.CoreV1().Pods(ns).Create(ctx, pod(ns, fmt.Sprintf("burst-%03d", i), "burst", unified), metav1.CreateOptions{})
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
		t.Logf("%s: %s of %s unified memory claimed", n.name, jetson.FormatBytes(perNode[n.name]), jetson.FormatBytes(capacity[n.name]))
		if perNode[n.name] > capacity[n.name] {
			t.Errorf("%s overcommitted: %s claimed of %s", n.name, jetson.FormatBytes(perNode[n.name]), jetson.FormatBytes(capacity[n.name]))
		}
		// Pods are at most 2.25Gi: a node left with more free than that was not filled.
		if free := capacity[n.name] - perNode[n.name]; free > 2*jetsontest.Gi+jetsontest.Gi/4 {
			t.Errorf("%s left with %s free while pods wait", n.name, jetson.FormatBytes(free))
		}
	}
	if bound == 0 || bound == pods {
		t.Errorf("%d of %d pods bound: the scenario should fill the nodes and leave pods Pending", bound, pods)
	}
	t.Logf("%d of %d pods bound, %d Pending", bound, pods, pods-bound)
}

// TestE2EOtherSchedulersPodsUntouched: pods for the default scheduler (not running in this
// cluster) or any other scheduler are never sent to the extender nor bound by
// edgemigrate-scheduler, even when they declare GPU memory.
func TestE2EOtherSchedulersPodsUntouched(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := e.cluster.Client
	ns := clustertest.Namespace(t, e.cluster, nil)
	e.addNodes(ctx, t, ns, "others", []testNode{{"others-a", localcluster.AGXXavier, 0}})

	var untouched []string
	for _, scheduler := range []string{corev1.DefaultSchedulerName, "someone-elses-scheduler"} {
		p := pod(ns, "for-"+scheduler, "others", jetsontest.Gi)
		p.Spec.SchedulerName = scheduler
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		untouched = append(untouched, p.Name)
	}
	// Created after them: once it is bound, the scheduler has been through its queue.
	ours := pod(ns, "ours", "others", jetsontest.Gi)
	if _, err := client.CoreV1().Pods(ns).Create(ctx, ours, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := settled(ctx, t, client, ns, ours.Name, true); got.Spec.NodeName != "others-a" {
		t.Fatalf("our pod landed on %q, want others-a", got.Spec.NodeName)
	}
	if _, ok := e.seen.Load(ns + "/" + ours.Name); !ok {
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
		if _, ok := e.seen.Load(ns + "/" + name); ok {
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
