// Package jetsonplugin is the Jetson unified-memory model as a kube-scheduler framework
// plugin: the extender's filter, prioritize and bind-time re-check, in the scheduler's own
// cycle. It decides with the same jetson model and the same jetson/usage cache as the
// extender, so both modes place a pod alike and refuse it with the same sentences.
//
// Reserve replaces the extender's assume-on-bind: the scheduler runs one scheduling cycle
// at a time and reserves before the next begins, so back-to-back pods never claim the same
// free memory.
package jetsonplugin

import (
	"context"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/usage"
)

// Name is the plugin's name in KubeSchedulerConfiguration profiles.
const Name = api.SchedulerPluginName

// assumeTTL bounds how long a reservation counts without the informer showing the pod
// bound. The framework calls Unreserve whenever binding fails, so expiry only catches
// what it cannot: a scheduler that lost track of a pod.
const assumeTTL = 5 * time.Minute

const stateKey fwk.StateKey = Name

// Args are the plugin's arguments (pluginConfig[].args); empty fields take jetson's
// defaults, the same as the extender's flags.
type Args struct {
	// Policy ranks fitting Jetson nodes: binpack (default) or spread.
	Policy string `json:"policy,omitempty"`
	// MemoryReserve is unified memory kept free on every Jetson, a quantity such as 1Gi.
	MemoryReserve string `json:"memoryReserve,omitempty"`
	// NodeSelector selects the Jetson nodes (kubectl syntax); others pass through.
	NodeSelector string `json:"nodeSelector,omitempty"`
}

// parse checks the arguments as the extender checks its flags.
func (a Args) parse() (jetson.Config, jetson.Policy, error) {
	f := jetson.DefaultFlags()
	if a.Policy != "" {
		f.Policy = a.Policy
	}
	if a.MemoryReserve != "" {
		f.MemoryReserve = a.MemoryReserve
	}
	if a.NodeSelector != "" {
		f.NodeSelector = a.NodeSelector
	}
	return f.Parse()
}

// Plugin implements PreFilter, Filter, Score, Reserve and the queueing hints.
type Plugin struct {
	cfg    jetson.Config
	policy jetson.Policy
	cache  *usage.Cache
	// snapshotNode returns a node of the cycle's snapshot; nil in unit tests.
	snapshotNode func(name string) *corev1.Node
	// synced reports whether the cache has seen every object the informers had at start.
	synced     []toolscache.InformerSynced
	haveSynced atomic.Bool
}

var (
	_ fwk.PreFilterPlugin     = (*Plugin)(nil)
	_ fwk.PreFilterExtensions = (*Plugin)(nil)
	_ fwk.FilterPlugin        = (*Plugin)(nil)
	_ fwk.ScorePlugin         = (*Plugin)(nil)
	_ fwk.ReservePlugin       = (*Plugin)(nil)
	_ fwk.EnqueueExtensions   = (*Plugin)(nil)
	_ fwk.SignPlugin          = (*Plugin)(nil)
)

// New is the plugin's factory for app.WithPlugin: it decodes Args and feeds a usage cache
// from the scheduler's shared informers.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	var args Args
	if err := frameworkruntime.DecodeInto(obj, &args); err != nil {
		return nil, fmt.Errorf("decoding %s args: %w", Name, err)
	}
	cfg, policy, err := args.parse()
	if err != nil {
		return nil, fmt.Errorf("%s args: %w", Name, err)
	}
	p := newPlugin(cfg, policy)
	informers := h.SharedInformerFactory().Core().V1()
	nodes, err := informers.Nodes().Informer().AddEventHandler(p.cache.NodeHandler())
	if err != nil {
		return nil, fmt.Errorf("watching nodes: %w", err)
	}
	pods, err := informers.Pods().Informer().AddEventHandler(p.cache.PodHandler())
	if err != nil {
		return nil, fmt.Errorf("watching pods: %w", err)
	}
	p.synced = []toolscache.InformerSynced{nodes.HasSynced, pods.HasSynced}
	p.snapshotNode = func(name string) *corev1.Node {
		if ni, err := h.SnapshotSharedLister().NodeInfos().Get(name); err == nil {
			return ni.Node()
		}
		return nil
	}
	go wait.UntilWithContext(ctx, p.cache.Expire, assumeTTL/4)
	return p, nil
}

func newPlugin(cfg jetson.Config, policy jetson.Policy) *Plugin {
	return &Plugin{cfg: cfg, policy: policy, cache: usage.New(cfg, assumeTTL)}
}

// Name returns Name.
func (p *Plugin) Name() string { return Name }

// state is what PreFilter computes once per cycle.
type state struct {
	demand jetson.Demand
	// err is a malformed gpu-memory annotation: the pod fits no Jetson.
	err error
	// delta is what preemption and nominated pods add to or remove from a node's use in
	// this cycle (AddPod, RemovePod), beside what the cache counts.
	delta map[string]jetson.Demand
}

func (s *state) Clone() fwk.StateData {
	c := *s
	c.delta = maps.Clone(s.delta)
	return &c
}

func readState(cs fwk.CycleState) (*state, error) {
	data, err := cs.Read(stateKey)
	if err != nil {
		return nil, fmt.Errorf("reading %s state: %w", Name, err)
	}
	s, ok := data.(*state)
	if !ok {
		return nil, fmt.Errorf("%s state has type %T", Name, data)
	}
	return s, nil
}

// PreFilter reads the pod's demand once for the cycle. A malformed gpu-memory annotation is
// not a PreFilter failure: nodes that are not Jetson still take the pod.
func (p *Plugin) PreFilter(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	if !p.haveSynced.Load() {
		// Until the cache has seen the informers' initial lists it would undercount nodes.
		if !toolscache.WaitForCacheSync(ctx.Done(), p.synced...) {
			return nil, fwk.NewStatus(fwk.Error, "node usage cache not synced")
		}
		p.haveSynced.Store(true)
	}
	demand, err := jetson.PodDemand(pod)
	cs.Write(stateKey, &state{demand: demand, err: err})
	return nil, nil
}

// PreFilterExtensions returns the plugin: preemption and nominated pods change use.
func (p *Plugin) PreFilterExtensions() fwk.PreFilterExtensions { return p }

// AddPod counts a pod the framework places on a node for this cycle's evaluation.
func (p *Plugin) AddPod(_ context.Context, cs fwk.CycleState, _ *corev1.Pod, add fwk.PodInfo, ni fwk.NodeInfo) *fwk.Status {
	return p.adjust(cs, ni.Node().Name, usage.BoundDemand(add.GetPod()))
}

// RemovePod uncounts a pod the framework takes off a node for this cycle's evaluation.
func (p *Plugin) RemovePod(_ context.Context, cs fwk.CycleState, _ *corev1.Pod, remove fwk.PodInfo, ni fwk.NodeInfo) *fwk.Status {
	return p.adjust(cs, ni.Node().Name, jetson.Demand{}.Sub(usage.BoundDemand(remove.GetPod())))
}

func (p *Plugin) adjust(cs fwk.CycleState, node string, d jetson.Demand) *fwk.Status {
	s, err := readState(cs)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if s.delta == nil {
		s.delta = map[string]jetson.Demand{}
	}
	s.delta[node] = s.delta[node].Add(d)
	return nil
}

// Filter rejects a Jetson the pod does not fit, with jetson.Fit's sentence; other nodes pass.
func (p *Plugin) Filter(_ context.Context, cs fwk.CycleState, _ *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s, err := readState(cs)
	if err != nil {
		return fwk.AsStatus(err)
	}
	capacity, used := p.nodeState(ni)
	if !capacity.Jetson {
		return nil
	}
	if s.err != nil {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, s.err.Error())
	}
	used = used.Add(s.delta[ni.Node().Name])
	// One reason, joined as the extender joins its failed nodes' reasons: the event reads alike.
	if reasons, fits := jetson.AppendFit(nil, capacity, used, s.demand); !fits {
		return fwk.NewStatus(fwk.Unschedulable, string(reasons))
	}
	return nil
}

// nodeState is a node's capacity, from the cycle's node object so that it agrees with the
// event that requeued the pod, and its use as the cache counts it (reservations included).
// A node the cache has not heard of yet is counted from the snapshot's pods.
func (p *Plugin) nodeState(ni fwk.NodeInfo) (jetson.Capacity, jetson.Demand) {
	node := ni.Node()
	capacity := jetson.NodeCapacity(node, p.cfg)
	if !capacity.Jetson {
		return capacity, jetson.Demand{}
	}
	if _, used, ok := p.cache.Node(node.Name); ok {
		return capacity, used
	}
	var used jetson.Demand
	for _, pi := range ni.GetPods() {
		used = used.Add(usage.BoundDemand(pi.GetPod()))
	}
	return capacity, used
}

// Score is jetson.Score (0–100, as the framework's MaxNodeScore) of the pod on the node;
// nodes that are not Jetson score 0, as the extender scores them.
func (p *Plugin) Score(_ context.Context, cs fwk.CycleState, _ *corev1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	s, err := readState(cs)
	if err != nil {
		return 0, fwk.AsStatus(err)
	}
	if s.err != nil {
		return 0, nil
	}
	capacity, used := p.nodeState(ni)
	return jetson.Score(p.policy, capacity, used, s.demand), nil
}

// ScoreExtensions is nil: jetson.MaxScore is already fwk.MaxNodeScore.
func (p *Plugin) ScoreExtensions() fwk.ScoreExtensions { return nil }

// Reserve claims the pod's demand on the chosen node in the cache, re-checking the fit in
// the same step; the claim is an assumption until the informer sees the pod bound.
func (p *Plugin) Reserve(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	s, err := readState(cs)
	if err != nil {
		return fwk.AsStatus(err)
	}
	demand := s.demand
	if s.err != nil {
		// Only a node that is not Jetson took it: count its memory there, as once bound.
		demand = usage.BoundDemand(pod)
	}
	if _, _, known := p.cache.Node(nodeName); !known && p.snapshotNode != nil {
		// The scheduler saw the node before the cache did; the informer's next event for it
		// is newer and overwrites this.
		if n := p.snapshotNode(nodeName); n != nil {
			p.cache.SetNode(n)
		}
	}
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	if reasons := p.cache.Reserve(key, pod.UID, nodeName, demand); reasons != nil {
		return fwk.NewStatus(fwk.Unschedulable, jetson.Reason(reasons))
	}
	klog.FromContext(ctx).V(3).Info("Reserved unified memory", "pod", klog.KObj(pod), "node", nodeName, "unifiedMemory", jetson.FormatBytes(demand.Unified()))
	return nil
}

// Unreserve drops the pod's reservation; a pod the informer shows bound stays counted.
func (p *Plugin) Unreserve(_ context.Context, _ fwk.CycleState, pod *corev1.Pod, _ string) {
	p.cache.Unreserve(pod.UID)
}

// SignPod lets the scheduler reuse a previous cycle's ranking for a pod of the same demand;
// a pod with a malformed annotation is not batched.
func (p *Plugin) SignPod(_ context.Context, pod *corev1.Pod) ([]fwk.SignFragment, *fwk.Status) {
	demand, err := jetson.PodDemand(pod)
	if err != nil {
		return nil, fwk.NewStatus(fwk.Unschedulable, err.Error())
	}
	return []fwk.SignFragment{{Key: api.Group + "/jetson-demand", Value: demand}}, nil
}

// EventsToRegister requeues a pod this plugin rejected when room may have appeared: a
// scheduled pod deleted, a node added, or a node's allocatable or labels changed.
func (p *Plugin) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Delete}, QueueingHintFn: p.afterPodDeleted},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeAllocatable | fwk.UpdateNodeLabel}, QueueingHintFn: p.afterNodeChanged},
	}, nil
}

// afterPodDeleted queues the pod when a pod that held room on a node is gone. It applies
// the deletion to the cache itself: the scheduler retries the pod on this very event,
// possibly before the cache's own informer handler has run, and a retry that still saw the
// deleted pod's memory would put the pod back to wait. DeletePod is idempotent.
func (p *Plugin) afterPodDeleted(logger klog.Logger, pod *corev1.Pod, oldObj, _ any) (fwk.QueueingHint, error) {
	deleted, ok := asObject[*corev1.Pod](oldObj)
	if !ok {
		return fwk.Queue, fmt.Errorf("pod deletion event carries %T", oldObj)
	}
	if deleted.Spec.NodeName == "" {
		return fwk.QueueSkip, nil
	}
	p.cache.DeletePod(deleted.UID)
	logger.V(5).Info("Scheduled pod deleted, unified memory may be free", "pod", klog.KObj(pod), "deletedPod", klog.KObj(deleted), "node", deleted.Spec.NodeName)
	return fwk.Queue, nil
}

// afterNodeChanged queues the pod for a new node, a node that stopped being a Jetson, and a
// Jetson that offers more than before.
func (p *Plugin) afterNodeChanged(logger klog.Logger, pod *corev1.Pod, oldObj, newObj any) (fwk.QueueingHint, error) {
	node, ok := asObject[*corev1.Node](newObj)
	if !ok {
		return fwk.Queue, fmt.Errorf("node event carries %T", newObj)
	}
	old, ok := asObject[*corev1.Node](oldObj)
	if !ok {
		return fwk.Queue, nil // added
	}
	was, now := jetson.NodeCapacity(old, p.cfg), jetson.NodeCapacity(node, p.cfg)
	stopped := was.Jetson && !now.Jetson // passes through now
	grew := now.Jetson && (!was.Jetson || now.Memory > was.Memory || now.GPUSlots > was.GPUSlots || now.CPUMilli > was.CPUMilli)
	if stopped || grew {
		logger.V(5).Info("Node offers more, the pod may fit", "pod", klog.KObj(pod), "node", klog.KObj(node))
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// asObject is obj as a T, looking through a deletion the informer missed.
func asObject[T any](obj any) (T, bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	t, ok := obj.(T)
	return t, ok
}
