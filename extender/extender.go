// Package extender is a kube-scheduler extender (v1: filter, prioritize, bind) that knows a
// Jetson's GPU memory comes out of the node's RAM. Node and pod state comes from shared
// informers and is kept per node, so a call costs a map lookup per candidate; bind re-checks
// the fit and assumes the pod in one step before creating the Binding, so pods decided on at
// once cannot overcommit a node.
package extender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/usage"
)

// Defaults of Options.
const (
	DefaultAssumeTTL    = 30 * time.Second
	DefaultMaxBodyBytes = 32 << 20 // a full NodeList of 5,000 nodes is about 9 MB
	bindTimeout         = 10 * time.Second
)

// ClientConfig returns a copy of cfg fit for the extender's client: protobuf, which costs
// the informers a fraction of JSON's CPU on every pod event, and a rate limit that a burst of
// bindings does not hit.
func ClientConfig(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.QPS, cfg.Burst = 200, 400
	return cfg
}

// Options configure an Extender.
type Options struct {
	// Jetson says which nodes are Jetson and what memory to keep free on them.
	Jetson jetson.Config
	// Policy ranks fitting nodes; empty means binpack.
	Policy jetson.Policy
	// AssumeTTL is how long a pod bound by the extender counts against its node before the
	// informer confirms the binding; default DefaultAssumeTTL.
	AssumeTTL time.Duration
	// MaxBodyBytes limits request bodies; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Extender answers kube-scheduler's extender calls.
type Extender struct {
	client  kubernetes.Interface
	opts    Options
	cache   *usage.Cache
	metrics *metrics
	pods    listersv1.PodLister
	synced  atomic.Bool
	scratch sync.Pool
}

// New returns an Extender reading the cluster through client, registering its metrics in
// reg. Call Start before serving.
func New(client kubernetes.Interface, opts Options, reg prometheus.Registerer) (*Extender, error) {
	policy, err := jetson.ParsePolicy(string(opts.Policy))
	if err != nil {
		return nil, fmt.Errorf("configuring extender: %w", err)
	}
	opts.Policy = policy
	if opts.AssumeTTL <= 0 {
		opts.AssumeTTL = DefaultAssumeTTL
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	m := newMetrics(reg)
	return &Extender{
		client:  client,
		opts:    opts,
		cache:   usage.New(opts.Jetson, opts.AssumeTTL, usage.OnAssumed(func(n int) { m.assumed.Set(float64(n)) })),
		metrics: m,
		scratch: sync.Pool{New: func() any { return new(scratch) }},
	}, nil
}

// Usage returns the extender's view of node use.
func (e *Extender) Usage() *usage.Cache { return e.cache }

// Start starts the informers and the expiry of assumptions; they stop with ctx. Ready
// reports nil once the informers have synced.
func (e *Extender) Start(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(e.client, 0)
	nodes := factory.Core().V1().Nodes().Informer()
	podInformer := factory.Core().V1().Pods()
	pods := podInformer.Informer()
	// Managed fields are most of a stored object and the extender never reads them.
	for _, inf := range []toolscache.SharedIndexInformer{nodes, pods} {
		if err := inf.SetTransform(func(obj any) (any, error) {
			if m, ok := obj.(metav1.Object); ok {
				m.SetManagedFields(nil)
			}
			return obj, nil
		}); err != nil {
			return fmt.Errorf("setting informer transform: %w", err)
		}
	}
	if _, err := nodes.AddEventHandler(e.cache.NodeHandler()); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	if _, err := pods.AddEventHandler(e.cache.PodHandler()); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	e.pods = podInformer.Lister()
	factory.Start(ctx.Done())
	go func() {
		if !toolscache.WaitForCacheSync(ctx.Done(), nodes.HasSynced, pods.HasSynced) {
			return
		}
		e.synced.Store(true)
		klog.InfoS("Extender caches synced", "nodes", len(nodes.GetStore().ListKeys()), "pods", len(pods.GetStore().ListKeys()))
	}()
	go wait.UntilWithContext(ctx, func(ctx context.Context) { e.cache.Expire(ctx) }, max(e.opts.AssumeTTL/4, time.Second))
	return nil
}

// Ready is nil once the informers have synced: before that, filter would reject nodes it
// has not heard of yet.
func (e *Extender) Ready() error {
	if !e.synced.Load() {
		return errors.New("informer caches not synced")
	}
	return nil
}

// Handler returns the HTTP handler: POST /filter, /prioritize and /bind, and the shared
// /healthz, /readyz and /metrics (from reg).
func (e *Extender) Handler(reg *prometheus.Registry) http.Handler {
	engine := serve.NewEngine(reg, e.Ready)
	verbs := engine.Group("/", serve.LimitBody(e.opts.MaxBodyBytes))
	verbs.POST("/filter", e.timed("filter", e.filter))
	verbs.POST("/prioritize", e.timed("prioritize", e.prioritize))
	verbs.POST("/bind", e.timed("bind", e.bind))
	return engine
}

// scratch is the per-call memory, pooled so that a call allocates little beyond decoding.
type scratch struct {
	body         bytes.Buffer
	out          []byte
	args         args
	candidates   []candidate
	accepted     []candidate
	failed       []rejection
	unresolvable []rejection
	reasons      []byte
	scores       []int64
}

func (e *Extender) timed(verb string, h func(*gin.Context, *scratch) (int, []byte)) gin.HandlerFunc {
	latency := e.metrics.latency.WithLabelValues(verb)
	return func(c *gin.Context) {
		start := time.Now()
		s := e.scratch.Get().(*scratch)
		s.body.Reset()
		if n := c.Request.ContentLength; n > 0 && n <= e.opts.MaxBodyBytes {
			s.body.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead spare to detect EOF
		}
		status, out := http.StatusOK, []byte(nil)
		if _, err := s.body.ReadFrom(c.Request.Body); err != nil {
			status, out = readError(err)
		} else {
			status, out = h(c, s)
		}
		c.Data(status, "application/json", out)
		// Buffers sized for a full NodeList stay pooled too: the pool drops what goes unused
		// across two garbage collections.
		s.args = args{}
		clear(s.candidates[:cap(s.candidates)]) // let raw nodes of the body be collected with it
		e.scratch.Put(s)
		latency.Observe(time.Since(start).Seconds())
	}
}

func readError(err error) (int, []byte) {
	if serve.IsTooLarge(err) {
		return http.StatusRequestEntityTooLarge, errorBody(err)
	}
	return http.StatusBadRequest, errorBody(fmt.Errorf("reading request: %w", err))
}

// errorBody is {"Error": message}: the Error field of the filter and bind results.
func errorBody(err error) []byte {
	return append(appendString([]byte(`{"Error":`), err.Error()), '}')
}

func (e *Extender) filter(_ *gin.Context, s *scratch) (int, []byte) {
	var err error
	s.candidates, err = decodeArgs(s.body.Bytes(), &s.args, s.candidates[:0])
	if err != nil {
		return http.StatusBadRequest, errorBody(err)
	}
	pod := s.args.Pod.pod()
	demand, demandErr := jetson.PodDemand(pod)
	s.accepted, s.failed, s.unresolvable, s.reasons = s.accepted[:0], s.failed[:0], s.unresolvable[:0], s.reasons[:0]
	e.cache.View(func(lookup usage.Lookup) {
		for _, c := range s.candidates {
			capacity, used, unknown := e.candidateState(lookup, c)
			start := len(s.reasons)
			switch {
			case unknown != "":
				s.reasons = append(s.reasons, unknown...)
				s.unresolvable = append(s.unresolvable, rejection{c.name, start, len(s.reasons)})
			case capacity.Jetson && demandErr != nil:
				s.reasons = append(s.reasons, demandErr.Error()...)
				s.unresolvable = append(s.unresolvable, rejection{c.name, start, len(s.reasons)})
			default:
				var fits bool
				if s.reasons, fits = jetson.AppendFit(s.reasons, capacity, used, demand); fits {
					s.accepted = append(s.accepted, c)
				} else {
					s.failed = append(s.failed, rejection{c.name, start, len(s.reasons)})
				}
			}
		}
	})
	e.metrics.considered.WithLabelValues("filter").Add(float64(len(s.candidates)))
	e.metrics.rejected.Add(float64(len(s.failed) + len(s.unresolvable)))
	if n := len(s.failed) + len(s.unresolvable); n > 0 {
		klog.V(4).InfoS("Filtered", "pod", klog.KObj(pod), "nodes", len(s.candidates), "rejected", n)
	}
	s.out = appendFilterResult(s.out[:0], s.args.byName, s.accepted, s.failed, s.unresolvable, s.reasons)
	return http.StatusOK, s.out
}

// candidateState returns a candidate's capacity and use, or why it cannot judge the node.
// A node the informer has not seen yet is judged from the request's copy when the scheduler
// sent whole nodes; with names only it is unknown.
func (e *Extender) candidateState(lookup usage.Lookup, c candidate) (jetson.Capacity, jetson.Demand, string) {
	if capacity, used, ok := lookup(c.name); ok {
		return capacity, used, ""
	}
	if c.raw == nil {
		return jetson.Capacity{}, jetson.Demand{}, "node " + c.name + " is unknown to the edgemigrate extender"
	}
	n, err := decodeNode(c.raw)
	if err != nil {
		return jetson.Capacity{}, jetson.Demand{}, "node " + c.name + ": " + err.Error()
	}
	return jetson.NodeCapacity(n, e.opts.Jetson), jetson.Demand{}, ""
}

func (e *Extender) prioritize(_ *gin.Context, s *scratch) (int, []byte) {
	var err error
	s.candidates, err = decodeArgs(s.body.Bytes(), &s.args, s.candidates[:0])
	if err != nil {
		return http.StatusBadRequest, errorBody(err)
	}
	// A pod with a malformed annotation never passes filter on a Jetson; score it 0 anywhere.
	demand, demandErr := jetson.PodDemand(s.args.Pod.pod())
	s.scores = s.scores[:0]
	e.cache.View(func(lookup usage.Lookup) {
		for _, c := range s.candidates {
			var score int64
			if capacity, used, unknown := e.candidateState(lookup, c); unknown == "" && demandErr == nil {
				score = jetson.Score(e.opts.Policy, capacity, used, demand)
			}
			// The scheduler takes 0–10 from extenders and multiplies by the weight.
			s.scores = append(s.scores, (score*extenderv1.MaxExtenderPriority+jetson.MaxScore/2)/jetson.MaxScore)
		}
	})
	e.metrics.considered.WithLabelValues("prioritize").Add(float64(len(s.candidates)))
	s.out = appendPriorities(s.out[:0], s.candidates, s.scores)
	return http.StatusOK, s.out
}

func (e *Extender) bind(c *gin.Context, s *scratch) (int, []byte) {
	b, err := decodeBinding(s.body.Bytes())
	if err != nil {
		return http.StatusBadRequest, errorBody(err)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), bindTimeout)
	defer cancel()
	if err := e.Bind(ctx, b); err != nil {
		return http.StatusOK, errorBody(err)
	}
	return http.StatusOK, []byte(`{"Error":""}`)
}

// errNoFit marks a bind refused because the node filled up since filter.
var errNoFit = errors.New("no longer fits")

// Bind reserves the pod's demand on the node, failing if it no longer fits, then creates
// the Binding; the reservation is an assumption until the informer sees the pod bound.
func (e *Extender) Bind(ctx context.Context, b extenderv1.ExtenderBindingArgs) error {
	key := types.NamespacedName{Namespace: b.PodNamespace, Name: b.PodName}
	pod, err := e.pod(ctx, key)
	if err != nil {
		e.metrics.binds.WithLabelValues("error").Inc()
		return err
	}
	if b.PodUID != "" && pod.UID != b.PodUID {
		e.metrics.binds.WithLabelValues("error").Inc()
		return fmt.Errorf("binding pod %s: UID %s, but the pod now has UID %s", key, b.PodUID, pod.UID)
	}
	demand := usage.BoundDemand(pod)
	if reasons := e.cache.Reserve(key, pod.UID, b.Node, demand); reasons != nil {
		e.metrics.binds.WithLabelValues("no_fit").Inc()
		klog.V(2).InfoS("Refused binding: node filled up since filter", "pod", key, "node", b.Node, "reason", jetson.Reason(reasons))
		return fmt.Errorf("binding pod %s to node %s: %w: %s", key, b.Node, errNoFit, jetson.Reason(reasons))
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: b.Node},
	}
	if err := e.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		// Only a refusal means the pod was not bound. After a timeout the binding may well
		// have happened: the assumption stays until the informer shows it or it expires.
		if refused(err) {
			e.cache.Unreserve(pod.UID)
		}
		e.metrics.binds.WithLabelValues("error").Inc()
		return fmt.Errorf("binding pod %s to node %s: %w", key, b.Node, err)
	}
	e.metrics.binds.WithLabelValues("bound").Inc()
	klog.V(3).InfoS("Bound pod", "pod", key, "node", b.Node, "unifiedMemory", jetson.FormatBytes(demand.Unified()))
	return nil
}

// refused reports whether the API server answered a request with a definite no.
func refused(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// pod reads a pod from the informer, or from the API server when the informer lags.
func (e *Extender) pod(ctx context.Context, key types.NamespacedName) (*corev1.Pod, error) {
	if e.pods != nil {
		if p, err := e.pods.Pods(key.Namespace).Get(key.Name); err == nil {
			return p, nil
		}
	}
	p, err := e.client.CoreV1().Pods(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("binding pod %s: pod not found", key)
	}
	if err != nil {
		return nil, fmt.Errorf("binding pod %s: reading the pod: %w", key, err)
	}
	return p, nil
}
