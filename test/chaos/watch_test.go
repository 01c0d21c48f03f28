package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned"
	emginformers "github.com/edgemigrate/edgemigrate/api/generated/informers/externalversions"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/internal/chaos"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

// watch records, from informers of the run's namespace in every cluster, each Migration's
// last state (the descheduler prunes finished ones: a deleted Migration keeps its last
// state here) and the pods. Informers relist after an API server comes back.
type watch struct {
	mu sync.Mutex
	// migrations are keyed by cluster and UID.
	migrations map[string]*seen
	// pods are each cluster's pod store.
	pods map[string]cache.Store
}

type seen struct {
	chaos.Migration
	// first is when the watch first saw it, on the test's clock.
	first time.Time
}

func startWatch(ctx context.Context, f *localfleet.Fleet, ns string) (*watch, error) {
	w := &watch{migrations: map[string]*seen{}, pods: map[string]cache.Store{}}
	var synced []cache.InformerSynced
	for _, e := range f.Edges {
		client, err := versioned.NewForConfig(e.Config)
		if err != nil {
			return nil, err
		}
		mf := emginformers.NewSharedInformerFactoryWithOptions(client, 0, emginformers.WithNamespace(ns))
		mi := mf.Edgemigrate().V1alpha1().Migrations().Informer()
		cluster := e.ID
		record := func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if m, ok := obj.(*v1alpha1.Migration); ok {
				w.record(cluster, m)
			}
		}
		if _, err := mi.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record,
			UpdateFunc: func(_, obj any) { record(obj) }, DeleteFunc: record}); err != nil {
			return nil, err
		}
		pf := informers.NewSharedInformerFactoryWithOptions(e.Client, 0, informers.WithNamespace(ns))
		pi := pf.Core().V1().Pods().Informer()
		w.pods[cluster] = pi.GetStore()
		mf.Start(ctx.Done())
		pf.Start(ctx.Done())
		synced = append(synced, mi.HasSynced, pi.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil, fmt.Errorf("watching namespace %s: %w", ns, context.Cause(ctx))
	}
	return w, nil
}

func (w *watch) record(cluster string, m *v1alpha1.Migration) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	key := cluster + "/" + string(m.UID)
	s := w.migrations[key]
	if s == nil {
		s = &seen{first: now}
		w.migrations[key] = s
	}
	why := m.Status.Reason
	if m.Status.Message != "" {
		why += ": " + m.Status.Message
	}
	s.Migration = chaos.Migration{Cluster: cluster, Name: m.Name, Workload: m.Spec.Workload.Name, Role: m.Status.Role,
		Reason: m.Spec.Reason, Phase: m.Status.Phase, Why: why}
}

// all returns every Migration's last state, sorted by when it was first seen.
func (w *watch) all() []chaos.Migration {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := slices.Collect(maps.Values(w.migrations))
	slices.SortFunc(list, func(a, b *seen) int { return a.first.Compare(b.first) })
	out := make([]chaos.Migration, len(list))
	for i, s := range list {
		out[i] = s.Migration
	}
	return out
}

// since returns the source Migrations of workload first seen at or after t, in the order
// first seen.
func (w *watch) since(workload string, t time.Time) []chaos.Migration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var found []*seen
	for _, s := range w.migrations {
		if s.Workload == workload && s.Role == v1alpha1.RoleSource && !s.first.Before(t) {
			found = append(found, s)
		}
	}
	slices.SortFunc(found, func(a, b *seen) int { return a.first.Compare(b.first) })
	out := make([]chaos.Migration, len(found))
	for i, s := range found {
		out[i] = s.Migration
	}
	return out
}

// open counts the Migrations not final yet.
func (w *watch) open() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.migrations {
		if !final(s.Phase) {
			n++
		}
	}
	return n
}

// serving counts, by cluster, the pods of app that are serving in the watch's view.
func (w *watch) serving(app string) map[string]int {
	out := map[string]int{}
	for cluster, store := range w.pods {
		for _, obj := range store.List() {
			if p, ok := obj.(*corev1.Pod); ok && p.Labels["app"] == app && fleettest.Serving(p) {
				out[cluster]++
			}
		}
	}
	return out
}
