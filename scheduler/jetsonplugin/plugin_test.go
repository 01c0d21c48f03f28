package jetsonplugin

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
	"github.com/edgemigrate/edgemigrate/manifests"
)

// cluster is what the plugin's cache has heard from the informers.
type cluster struct {
	nodes []*corev1.Node
	pods  []*corev1.Pod // bound ones claim their node's memory
}

func newTestPlugin(t *testing.T, c cluster) *Plugin {
	t.Helper()
	cfg, policy, err := Args{}.parse()
	if err != nil {
		t.Fatal(err)
	}
	p := newPlugin(cfg, policy)
	for _, n := range c.nodes {
		p.cache.SetNode(n)
	}
	for _, pod := range c.pods {
		p.cache.SetPod(pod)
	}
	p.haveSynced.Store(true)
	return p
}

// nodeInfo is the scheduler's snapshot of a node and the pods on it.
func nodeInfo(n *corev1.Node, pods ...*corev1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pods...)
	ni.SetNode(n)
	return ni
}

func preFilter(t *testing.T, p *Plugin, pod *corev1.Pod) fwk.CycleState {
	t.Helper()
	cs := framework.NewCycleState()
	if _, st := p.PreFilter(context.Background(), cs, pod, nil); !st.IsSuccess() {
		t.Fatalf("PreFilter: %v", st)
	}
	return cs
}

func TestFilter(t *testing.T) {
	xavier := jetsontest.JetsonNode("xavier", "32Gi")
	plain := jetsontest.PlainNode("plain")
	occupant := jetsontest.Pod("occupant", "xavier", "4Gi", "24Gi")
	malformed := jetsontest.Pod("bad", "", "1Gi", "lots")
	tests := []struct {
		name     string
		cluster  cluster
		pod      *corev1.Pod
		node     *framework.NodeInfo
		wantCode fwk.Code
		want     string
	}{
		{
			name:    "fits the free unified memory",
			cluster: cluster{nodes: []*corev1.Node{xavier}, pods: []*corev1.Pod{occupant}},
			pod:     jetsontest.Pod("p", "", "1Gi", "3Gi"),
			node:    nodeInfo(xavier, occupant),
		},
		{
			name:     "memory request plus GPU memory exceed what is free",
			cluster:  cluster{nodes: []*corev1.Node{xavier}, pods: []*corev1.Pod{occupant}},
			pod:      jetsontest.Pod("p", "", "1Gi", "5Gi"),
			node:     nodeInfo(xavier, occupant),
			wantCode: fwk.Unschedulable,
			want:     "unified memory: need 6.0Gi, free 4.0Gi of 32.0Gi on NVIDIA-Jetson-AGX-Xavier",
		},
		{
			name:    "node that is not a Jetson passes through",
			cluster: cluster{nodes: []*corev1.Node{plain}},
			pod:     jetsontest.Pod("p", "", "1Gi", "500Gi"),
			node:    nodeInfo(plain),
		},
		{
			name:     "malformed GPU memory fits no Jetson",
			cluster:  cluster{nodes: []*corev1.Node{xavier}},
			pod:      malformed,
			node:     nodeInfo(xavier),
			wantCode: fwk.UnschedulableAndUnresolvable,
			want:     `annotation edgemigrate.io/gpu-memory: "lots" is not a quantity (write it like 4Gi or 512Mi)`,
		},
		{
			name:    "malformed GPU memory still passes a node that is not a Jetson",
			cluster: cluster{nodes: []*corev1.Node{plain}},
			pod:     malformed,
			node:    nodeInfo(plain),
		},
		{
			name:     "node the cache has not heard of is counted from the snapshot",
			pod:      jetsontest.Pod("p", "", "1Gi", "5Gi"),
			node:     nodeInfo(xavier, occupant),
			wantCode: fwk.Unschedulable,
			want:     "unified memory: need 6.0Gi, free 4.0Gi of 32.0Gi on NVIDIA-Jetson-AGX-Xavier",
		},
		{
			name:     "several exhausted resources read as one sentence",
			cluster:  cluster{nodes: []*corev1.Node{xavier}, pods: []*corev1.Pod{occupant}},
			pod:      withGPUs(jetsontest.Pod("p", "", "1Gi", "5Gi"), "5"),
			node:     nodeInfo(xavier, occupant),
			wantCode: fwk.Unschedulable,
			want:     "unified memory: need 6.0Gi, free 4.0Gi of 32.0Gi on NVIDIA-Jetson-AGX-Xavier; GPU slots: need 5, free 4 of 4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPlugin(t, tt.cluster)
			cs := preFilter(t, p, tt.pod)
			st := p.Filter(context.Background(), cs, tt.pod, tt.node)
			if st.Code() != tt.wantCode || st.Message() != tt.want {
				t.Fatalf("Filter = %v %q, want %v %q", st.Code(), st.Message(), tt.wantCode, tt.want)
			}
		})
	}
}

func withGPUs(p *corev1.Pod, n string) *corev1.Pod {
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{api.ResourceGPU: mustQuantity(n)}
	return p
}

// TestFilterReasonIsTheModels: the sentence in the scheduler's event is jetson.Fit's.
func TestFilterReasonIsTheModels(t *testing.T) {
	orin := jetsontest.JetsonNode("orin", "16Gi")
	p := newTestPlugin(t, cluster{nodes: []*corev1.Node{orin}})
	pod := jetsontest.Pod("p", "", "2Gi", "15Gi")
	st := p.Filter(context.Background(), preFilter(t, p, pod), pod, nodeInfo(orin))
	d, _ := jetson.PodDemand(pod)
	if want := jetson.Reason(jetson.Fit(jetson.NodeCapacity(orin, jetson.Config{}), jetson.Demand{}, d)); st.Message() != want {
		t.Fatalf("Filter says %q, the model %q", st.Message(), want)
	}
}

// TestScore: binpack prefers the fullest node that fits, as jetson.Score on the 0–100 scale
// the framework takes; nodes that are not Jetson score 0.
func TestScore(t *testing.T) {
	a, b := jetsontest.JetsonNode("a", "32Gi"), jetsontest.JetsonNode("b", "32Gi")
	plain := jetsontest.PlainNode("plain")
	onA := jetsontest.Pod("on-a", "a", "8Gi", "8Gi")
	p := newTestPlugin(t, cluster{nodes: []*corev1.Node{a, b, plain}, pods: []*corev1.Pod{onA}})
	pod := jetsontest.Pod("p", "", "4Gi", "4Gi")
	cs := preFilter(t, p, pod)
	for _, tt := range []struct {
		node *framework.NodeInfo
		want int64
	}{
		{nodeInfo(a, onA), 75}, // (16+8)/32
		{nodeInfo(b), 25},      // 8/32
		{nodeInfo(plain), 0},
	} {
		got, st := p.Score(context.Background(), cs, pod, tt.node)
		if !st.IsSuccess() || got != tt.want {
			t.Errorf("Score on %s = %d %v, want %d", tt.node.Node().Name, got, st, tt.want)
		}
	}
	if p.ScoreExtensions() != nil {
		t.Error("scores are already 0-100: no NormalizeScore expected")
	}
}

// TestReserve: a reserved pod counts at once, so the next cycle's Filter sees it before
// any binding; a reservation that no longer fits is refused; Unreserve gives the room back.
func TestReserve(t *testing.T) {
	xavier := jetsontest.JetsonNode("xavier", "32Gi")
	p := newTestPlugin(t, cluster{nodes: []*corev1.Node{xavier}})
	ctx := context.Background()
	first, second := jetsontest.Pod("first", "", "4Gi", "16Gi"), jetsontest.Pod("second", "", "4Gi", "16Gi")

	cs1 := preFilter(t, p, first)
	if st := p.Filter(ctx, cs1, first, nodeInfo(xavier)); !st.IsSuccess() {
		t.Fatalf("first Filter: %v", st)
	}
	if st := p.Reserve(ctx, cs1, first, "xavier"); !st.IsSuccess() {
		t.Fatalf("first Reserve: %v", st)
	}
	// The scheduler's snapshot does not show the first pod yet: the cache does.
	cs2 := preFilter(t, p, second)
	want := "unified memory: need 20.0Gi, free 12.0Gi of 32.0Gi on NVIDIA-Jetson-AGX-Xavier"
	if st := p.Filter(ctx, cs2, second, nodeInfo(xavier)); st.Code() != fwk.Unschedulable || st.Message() != want {
		t.Fatalf("second Filter = %v, want Unschedulable %q", st, want)
	}
	if st := p.Reserve(ctx, cs2, second, "xavier"); st.Code() != fwk.Unschedulable || st.Message() != want {
		t.Fatalf("second Reserve = %v, want Unschedulable %q", st, want)
	}

	p.Unreserve(ctx, cs1, first, "xavier")
	p.Unreserve(ctx, cs1, first, "xavier") // idempotent, as the framework requires
	if st := p.Filter(ctx, cs2, second, nodeInfo(xavier)); !st.IsSuccess() {
		t.Fatalf("second Filter after Unreserve: %v", st)
	}
	if _, used, _ := p.cache.Node("xavier"); used != (jetson.Demand{}) {
		t.Fatalf("after Unreserve the node still counts %+v", used)
	}

	// Once bound, Unreserve does not free it: the informer's view wins.
	if st := p.Reserve(ctx, cs2, second, "xavier"); !st.IsSuccess() {
		t.Fatal(st)
	}
	bound := second.DeepCopy()
	bound.Spec.NodeName = "xavier"
	p.cache.SetPod(bound)
	p.Unreserve(ctx, cs2, second, "xavier")
	if _, used, _ := p.cache.Node("xavier"); used.Unified() != 20*jetsontest.Gi {
		t.Fatalf("bound pod no longer counted: %+v", used)
	}
}

// TestReserveNodeNewToTheCache: a node in the scheduler's snapshot but not yet in the cache
// is reserved on, not refused.
func TestReserveNodeNewToTheCache(t *testing.T) {
	xavier := jetsontest.JetsonNode("xavier", "32Gi")
	p := newTestPlugin(t, cluster{})
	p.snapshotNode = func(name string) *corev1.Node {
		if name == xavier.Name {
			return xavier
		}
		return nil
	}
	pod := jetsontest.Pod("p", "", "1Gi", "1Gi")
	if st := p.Reserve(context.Background(), preFilter(t, p, pod), pod, "xavier"); !st.IsSuccess() {
		t.Fatalf("Reserve: %v", st)
	}
	if st := p.Reserve(context.Background(), preFilter(t, p, pod), pod, "gone"); st.IsSuccess() {
		t.Fatal("Reserve on a node nobody knows succeeded")
	}
}

// TestPreemption: the framework asks whether removing a victim makes room (RemovePod on a
// cloned state); the original state is untouched.
func TestPreemption(t *testing.T) {
	xavier := jetsontest.JetsonNode("xavier", "32Gi")
	victim := jetsontest.Pod("victim", "xavier", "4Gi", "24Gi")
	p := newTestPlugin(t, cluster{nodes: []*corev1.Node{xavier}, pods: []*corev1.Pod{victim}})
	ctx := context.Background()
	pod := jetsontest.Pod("p", "", "4Gi", "8Gi")
	cs := preFilter(t, p, pod)
	ni := nodeInfo(xavier, victim)
	if st := p.Filter(ctx, cs, pod, ni); st.IsSuccess() {
		t.Fatal("fits before any preemption")
	}
	vi, err := framework.NewPodInfo(victim)
	if err != nil {
		t.Fatal(err)
	}
	trial := cs.Clone()
	if st := p.RemovePod(ctx, trial, pod, vi, ni); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := p.Filter(ctx, trial, pod, ni); !st.IsSuccess() {
		t.Fatalf("without the victim: %v", st)
	}
	if st := p.Filter(ctx, cs, pod, ni); st.IsSuccess() {
		t.Fatal("RemovePod on a clone changed the original state")
	}
	if st := p.AddPod(ctx, trial, pod, vi, ni); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := p.Filter(ctx, trial, pod, ni); st.IsSuccess() {
		t.Fatal("victim added back, yet the pod fits")
	}
}

func TestQueueingHints(t *testing.T) {
	logger := klog.Background()
	xavier := jetsontest.JetsonNode("xavier", "32Gi")
	bigger := xavier.DeepCopy()
	bigger.Status.Allocatable[corev1.ResourceMemory] = mustQuantity("64Gi")
	relabelled := xavier.DeepCopy()
	relabelled.Labels = map[string]string{corev1.LabelArchStable: "amd64"}
	heartbeat := xavier.DeepCopy()
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	occupant := jetsontest.Pod("occupant", "xavier", "4Gi", "24Gi")
	pending := jetsontest.Pod("pending", "", "1Gi", "1Gi")
	waiting := jetsontest.Pod("waiting", "", "1Gi", "8Gi")

	p := newTestPlugin(t, cluster{nodes: []*corev1.Node{xavier}, pods: []*corev1.Pod{occupant}})
	events, err := p.EventsToRegister(context.Background())
	if err != nil || len(events) != 2 {
		t.Fatalf("EventsToRegister = %v, %v", events, err)
	}
	podHint, nodeHint := events[0].QueueingHintFn, events[1].QueueingHintFn

	for _, tt := range []struct {
		name     string
		hint     fwk.QueueingHintFn
		old, new any
		want     fwk.QueueingHint
	}{
		{"pending pod deleted", podHint, pending, nil, fwk.QueueSkip},
		{"scheduled pod deleted", podHint, occupant, nil, fwk.Queue},
		{"deletion the informer missed", podHint, toolscache.DeletedFinalStateUnknown{Obj: occupant}, nil, fwk.Queue},
		{"node added", nodeHint, nil, xavier, fwk.Queue},
		{"Jetson grew", nodeHint, xavier, bigger, fwk.Queue},
		{"Jetson shrank", nodeHint, bigger, xavier, fwk.QueueSkip},
		{"no longer a Jetson", nodeHint, xavier, relabelled, fwk.Queue},
		{"became a Jetson", nodeHint, relabelled, xavier, fwk.Queue},
		{"plain node changed", nodeHint, relabelled, relabelled, fwk.QueueSkip},
		{"Jetson heartbeat", nodeHint, xavier, heartbeat, fwk.QueueSkip},
	} {
		got, err := tt.hint(logger, waiting, tt.old, tt.new)
		if err != nil || got != tt.want {
			t.Errorf("%s: hint %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	// The scheduled pod's deletion freed its memory before the requeued pod's next cycle.
	if st := p.Filter(context.Background(), preFilter(t, p, waiting), waiting, nodeInfo(xavier)); !st.IsSuccess() {
		t.Fatalf("after the hint, Filter: %v", st)
	}
	if _, err := podHint(logger, waiting, "not a pod", nil); err == nil {
		t.Error("a hint given no pod did not say so")
	}
}

func TestSignPod(t *testing.T) {
	p := newTestPlugin(t, cluster{})
	a, st := p.SignPod(context.Background(), jetsontest.Pod("a", "", "1Gi", "2Gi"))
	b, _ := p.SignPod(context.Background(), jetsontest.Pod("b", "", "2Gi", "1Gi"))
	if !st.IsSuccess() || len(a) != 1 || a[0].Value == b[0].Value {
		t.Fatalf("pods of different demands sign %v and %v (%v)", a, b, st)
	}
	if _, st := p.SignPod(context.Background(), jetsontest.Pod("bad", "", "1Gi", "lots")); st.IsSuccess() {
		t.Fatal("a malformed annotation signed")
	}
}

func TestArgs(t *testing.T) {
	cfg, policy, err := Args{Policy: "spread", MemoryReserve: "2Gi", NodeSelector: "edgemigrate.io/jetson=true"}.parse()
	if err != nil || policy != jetson.Spread || cfg.MemoryReserve != 2*jetsontest.Gi || cfg.Selector.String() != "edgemigrate.io/jetson=true" {
		t.Fatalf("parse = %+v %v %v", cfg, policy, err)
	}
	for _, bad := range []Args{{Policy: "random"}, {MemoryReserve: "-1Gi"}, {NodeSelector: "a in (b"}} {
		if _, _, err := bad.parse(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestShippedConfig: the chart's plugin-mode configuration enables this plugin by its name,
// with arguments it accepts: the chart's defaults for jetson.*.
func TestShippedConfig(t *testing.T) {
	cfg, err := manifests.SchedulerPluginConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Profiles) != 1 || *cfg.Profiles[0].SchedulerName != api.SchedulerName {
		t.Fatalf("want one profile %s: %+v", api.SchedulerName, cfg.Profiles)
	}
	prof := cfg.Profiles[0]
	if len(prof.Plugins.MultiPoint.Enabled) != 1 || prof.Plugins.MultiPoint.Enabled[0].Name != Name {
		t.Fatalf("multiPoint enables %+v, want %s", prof.Plugins.MultiPoint.Enabled, Name)
	}
	if len(prof.PluginConfig) != 1 || prof.PluginConfig[0].Name != Name {
		t.Fatalf("pluginConfig %+v", prof.PluginConfig)
	}
	// As the scheduler hands them to New.
	var args Args
	raw := &runtime.Unknown{Raw: prof.PluginConfig[0].Args.Raw, ContentType: runtime.ContentTypeJSON}
	if err := frameworkruntime.DecodeInto(raw, &args); err != nil {
		t.Fatal(err)
	}
	if cfg, policy, err := args.parse(); err != nil || policy != jetson.Binpack || cfg.Selector.String() != jetson.DefaultSelector().String() ||
		cfg.MemoryReserve != jetsontest.Gi {
		t.Fatalf("shipped args %+v parse to %+v %v %v", args, cfg, policy, err)
	}
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
