// Package usage keeps what each node offers and what the pods on it claim, as the Jetson
// model counts them, for every part that places pods: the scheduler extender, the
// descheduler's bids and an in-process scheduler plugin. Informer events keep it current
// (SetNode, SetPod, ...); a placement is Reserved before its Binding exists and counts as an
// assumption until the informer sees the pod bound, is Unreserved, or expires.
//
// It knows nothing of HTTP or of the scheduler framework: a kube-scheduler plugin maps its
// Reserve and Unreserve extension points onto Reserve and Unreserve one to one.
package usage

import (
	"context"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// nodeState is what placement reads for one node, kept current by the informers so that a
// decision does no more than a map lookup per node.
type nodeState struct {
	capacity jetson.Capacity
	// exists is false once the node is deleted while pods are still counted against it.
	exists bool
	// used sums the demands of the pods bound to the node and of those assumed onto it.
	used jetson.Demand
}

type podRecord struct {
	node   string
	demand jetson.Demand
}

type assumption struct {
	podRecord
	pod     types.NamespacedName
	expires time.Time
}

// Cache holds per-node capacity and use. Informer events and Reserve write to it; placement
// decisions only read. It is safe for concurrent use.
type Cache struct {
	cfg   jetson.Config
	ttl   time.Duration
	clock clock.PassiveClock
	// onAssumed reports the number of outstanding assumptions after each change.
	onAssumed func(int)

	mu      sync.RWMutex
	nodes   map[string]*nodeState
	bound   map[types.UID]podRecord
	assumed map[types.UID]assumption
}

// Option configures a Cache.
type Option func(*Cache)

// WithClock makes the cache read time from clk (assumptions expire by it); default the
// real clock.
func WithClock(clk clock.PassiveClock) Option { return func(c *Cache) { c.clock = clk } }

// OnAssumed calls f with the number of outstanding assumptions after each change, under the
// cache's lock: f must be quick and must not call the cache. Metrics gauges are what it is for.
func OnAssumed(f func(int)) Option { return func(c *Cache) { c.onAssumed = f } }

// New returns an empty cache reading nodes as cfg says; assumptions not confirmed by the
// informer within ttl are dropped by Expire.
func New(cfg jetson.Config, ttl time.Duration, opts ...Option) *Cache {
	c := &Cache{
		cfg:       cfg,
		ttl:       ttl,
		clock:     clock.RealClock{},
		onAssumed: func(int) {},
		nodes:     map[string]*nodeState{},
		bound:     map[types.UID]podRecord{},
		assumed:   map[types.UID]assumption{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// SetNode records a node's capacity, computed once here rather than on every decision.
func (c *Cache) SetNode(node *corev1.Node) {
	capacity := jetson.NodeCapacity(node, c.cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state(node.Name)
	s.capacity, s.exists = capacity, true
}

// DeleteNode forgets a node's capacity; its pods' use stays until they are deleted too.
func (c *Cache) DeleteNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.nodes[name]; ok {
		s.capacity, s.exists = jetson.Capacity{}, false
		c.dropIfUnused(name, s)
	}
}

// SetPod accounts for a pod as the informer sees it: a pod bound to a node and not finished
// claims its demand there, and confirms (ends) the pod's assumption.
func (c *Cache) SetPod(pod *corev1.Pod) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		c.DeletePod(pod.UID)
		return
	}
	if pod.Spec.NodeName == "" {
		// Still pending as far as the informer knows. Its assumption, if any, stays: the
		// scheduler updates pending pods' status while a Binding is in flight, and those
		// updates must not free the memory the binding is about to claim.
		return
	}
	rec := podRecord{node: pod.Spec.NodeName, demand: BoundDemand(pod)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unassume(pod.UID)
	if old, ok := c.bound[pod.UID]; ok {
		if old == rec {
			return
		}
		c.release(old)
	}
	c.bound[pod.UID] = rec
	c.state(rec.node).used = c.state(rec.node).used.Add(rec.demand)
}

// DeletePod stops counting a pod, bound or assumed.
func (c *Cache) DeletePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unassume(uid)
	if old, ok := c.bound[uid]; ok {
		delete(c.bound, uid)
		c.release(old)
	}
}

// Reserve checks that a pod still fits a node and, if it does, assumes it there in the same
// step. Call it before creating the Binding: the scheduler decides on fits that may predate
// the previous pod's binding, so this is where two pods racing for the same free memory are
// told apart. It returns jetson.Fit's reasons when the pod no longer fits. Reserving a pod
// again moves its assumption; a pod the informer already shows bound there is not counted twice.
func (c *Cache) Reserve(pod types.NamespacedName, uid types.UID, node string, demand jetson.Demand) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rec, ok := c.bound[uid]; ok && rec.node == node {
		return nil
	}
	c.unassume(uid)
	s := c.state(node)
	if !s.exists {
		c.dropIfUnused(node, s)
		return []string{"node " + node + " is unknown to edgemigrate"}
	}
	if reasons := jetson.Fit(s.capacity, s.used, demand); reasons != nil {
		return reasons
	}
	c.assumed[uid] = assumption{podRecord: podRecord{node: node, demand: demand}, pod: pod, expires: c.clock.Now().Add(c.ttl)}
	s.used = s.used.Add(demand)
	c.onAssumed(len(c.assumed))
	return nil
}

// Unreserve drops a pod's assumption, as when its Binding could not be created. A pod the
// informer shows bound stays counted.
func (c *Cache) Unreserve(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unassume(uid)
}

// Expire drops assumptions older than the ttl: their binding never showed up in the
// informer, so the pod is gone or was never bound.
func (c *Cache) Expire(ctx context.Context) {
	logger := klog.FromContext(ctx)
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for uid, a := range c.assumed {
		if now.After(a.expires) {
			logger.V(2).Info("Assumption expired", "pod", a.pod, "node", a.node)
			c.unassume(uid)
		}
	}
}

// Assumed returns the number of outstanding assumptions.
func (c *Cache) Assumed() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.assumed)
}

// Node returns a node's capacity and use, and whether the node is known.
func (c *Cache) Node(name string) (jetson.Capacity, jetson.Demand, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lookup(name)
}

// Used returns the use of every node, for listing nodes, tests and debugging.
func (c *Cache) Used() map[string]jetson.Demand {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]jetson.Demand, len(c.nodes))
	for name, s := range c.nodes {
		out[name] = s.used
	}
	return out
}

// Lookup returns a known node's capacity and use, as Node does.
type Lookup func(name string) (jetson.Capacity, jetson.Demand, bool)

// View runs f under the read lock with a Lookup, so a decision over thousands of nodes takes
// the lock once. f must not call the cache's other methods.
func (c *Cache) View(f func(Lookup)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	f(c.lookup)
}

func (c *Cache) lookup(name string) (jetson.Capacity, jetson.Demand, bool) {
	s, ok := c.nodes[name]
	if !ok || !s.exists {
		return jetson.Capacity{}, jetson.Demand{}, false
	}
	return s.capacity, s.used, true
}

func (c *Cache) state(name string) *nodeState {
	s, ok := c.nodes[name]
	if !ok {
		s = &nodeState{}
		c.nodes[name] = s
	}
	return s
}

func (c *Cache) release(rec podRecord) {
	s := c.state(rec.node)
	s.used = s.used.Sub(rec.demand)
	c.dropIfUnused(rec.node, s)
}

func (c *Cache) unassume(uid types.UID) {
	a, ok := c.assumed[uid]
	if !ok {
		return
	}
	delete(c.assumed, uid)
	c.release(a.podRecord)
	c.onAssumed(len(c.assumed))
}

// dropIfUnused forgets deleted nodes once nothing is counted against them.
func (c *Cache) dropIfUnused(name string, s *nodeState) {
	if !s.exists && s.used == (jetson.Demand{}) {
		delete(c.nodes, name)
	}
}

// BoundDemand is the demand a pod already on a node claims. A malformed gpu-memory
// annotation keeps a pending pod off Jetson nodes, but a pod bound by another scheduler is
// there regardless: its memory request is counted and the bad annotation logged.
func BoundDemand(pod *corev1.Pod) jetson.Demand {
	d, err := jetson.PodDemand(pod)
	if err == nil {
		return d
	}
	klog.V(2).InfoS("Counting bound pod without its GPU memory", "pod", klog.KObj(pod), "node", pod.Spec.NodeName, "err", err)
	stripped := *pod
	stripped.Annotations = maps.Clone(pod.Annotations)
	delete(stripped.Annotations, api.AnnotationGPUMemory)
	d, _ = jetson.PodDemand(&stripped)
	return d
}
