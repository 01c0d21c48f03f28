package fleettest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/edgemigrate/edgemigrate/internal/localfleet"
)

// Interval is a span of the test's clock; To is zero while it lasts.
type Interval struct{ From, To time.Time }

// Readiness records, from a watch of one namespace's pods in every cluster of a fleet, when
// each pod was serving: Running, Ready and not being deleted. Times are the test's clock
// when the watch delivered the change, with milliseconds (the pods' own condition times
// are whole seconds).
type Readiness struct {
	mu sync.Mutex
	// serving is keyed by cluster id, then namespace/name.
	serving map[string]map[string][]Interval
}

// WatchReadiness starts recording the pods of namespace ns matching the label selector in
// every cluster of f, until ctx ends. It returns once every watch has listed what exists.
func WatchReadiness(ctx context.Context, f *localfleet.Fleet, ns, selector string) (*Readiness, error) {
	r := &Readiness{serving: map[string]map[string][]Interval{}}
	for _, e := range f.Edges {
		r.serving[e.ID] = map[string][]Interval{}
		factory := informers.NewSharedInformerFactoryWithOptions(e.Client, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
		inf := factory.Core().V1().Pods().Informer()
		cluster := e.ID
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { r.observe(cluster, obj, false) },
			UpdateFunc: func(_, obj any) { r.observe(cluster, obj, false) },
			// A deleted pod's last state may still say Ready.
			DeleteFunc: func(obj any) { r.observe(cluster, obj, true) },
		}); err != nil {
			return nil, fmt.Errorf("watching pods of %s in %s: %w", ns, e.ID, err)
		}
		factory.Start(ctx.Done())
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return nil, fmt.Errorf("watching pods of %s in %s: %w", ns, e.ID, context.Cause(ctx))
		}
	}
	return r, nil
}

// Serving is whether the pod can answer requests: what the gateway may send them to.
func Serving(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *Readiness) observe(cluster string, obj any, deleted bool) {
	now := time.Now()
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	up := !deleted && Serving(p)
	key := p.Namespace + "/" + p.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	spans := r.serving[cluster][key]
	open := len(spans) > 0 && spans[len(spans)-1].To.IsZero()
	switch {
	case up && !open:
		r.serving[cluster][key] = append(spans, Interval{From: now})
	case !up && open:
		spans[len(spans)-1].To = now
	}
}

// ServedBetween is whether pod (namespace/name) of cluster was serving at some moment
// between from and to.
func (r *Readiness) ServedBetween(cluster, pod string, from, to time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, iv := range r.serving[cluster][pod] {
		if !iv.From.After(to) && (iv.To.IsZero() || !iv.To.Before(from)) {
			return true
		}
	}
	return false
}

// Serving returns the intervals in which pod (namespace/name) of cluster was serving.
func (r *Readiness) Serving(cluster, pod string) []Interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.serving[cluster][pod])
}

// ServingNow returns the clusters where some pod is serving now.
func (r *Readiness) ServingNow() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for cluster, pods := range r.serving {
		for _, spans := range pods {
			if len(spans) > 0 && spans[len(spans)-1].To.IsZero() {
				out[cluster] = true
			}
		}
	}
	return out
}

// String lists every pod's serving intervals, for a failure's message.
func (r *Readiness) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, cluster := range slices.Sorted(maps.Keys(r.serving)) {
		for _, pod := range slices.Sorted(maps.Keys(r.serving[cluster])) {
			fmt.Fprintf(&b, "%s: pod %s serving", cluster, pod)
			for _, iv := range r.serving[cluster][pod] {
				to := "now"
				if !iv.To.IsZero() {
					to = iv.To.Format(TimeFormat)
				}
				fmt.Fprintf(&b, " [%s, %s]", iv.From.Format(TimeFormat), to)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TimeFormat prints the test's clock with milliseconds.
const TimeFormat = "15:04:05.000"
