package demo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned"
	migrationinformers "github.com/edgemigrate/edgemigrate/api/generated/informers/externalversions/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/dashboard"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/locator"
)

const (
	// maxTrack caps the car's drawn track.
	maxTrack = 400
	// maxLedger caps the ledger events kept for the dashboard (it caps what it sends too).
	maxLedger = 500
	// ledgerRetry is the pause before re-subscribing to the ledger's events.
	ledgerRetry = time.Second
)

// edgeWatch holds one cluster's caches.
type edgeWatch struct {
	edge                    *localfleet.Edge
	nodes, pods, migrations cache.SharedIndexInformer
}

// collector watches the fleet (nodes, pods and Migrations of every cluster, the ledger's
// events) and the car, keeps each migration's record and builds the dashboard's State.
type collector struct {
	edges  []*edgeWatch
	narr   *narrator
	ledger ledger.Ledger

	mu        sync.Mutex
	records   map[string]*record
	order     []string             // ledger ids, oldest first
	triggered map[string]time.Time // edge/namespace/name of a source Migration → first seen
	events    []dashboard.LedgerEvent
	car       dashboard.Car
	// Locator answers to the car's queries, for the summary.
	answers, answersUnknown, answerErrors int
	answerLatency                         time.Duration
	// sender is the car sending requests, on real containers; nil on kwok.
	sender *car.Car
}

func newCollector(f *localfleet.Fleet, l ledger.Ledger, narr *narrator) (*collector, error) {
	c := &collector{narr: narr, ledger: l, records: map[string]*record{}, triggered: map[string]time.Time{}}
	for _, e := range f.Edges {
		factory := informers.NewSharedInformerFactory(e.Client, 0)
		mc, err := versioned.NewForConfig(e.Config)
		if err != nil {
			return nil, fmt.Errorf("creating the Migration client of %s: %w", e.ID, err)
		}
		w := &edgeWatch{
			edge:       e,
			nodes:      factory.Core().V1().Nodes().Informer(),
			pods:       factory.Core().V1().Pods().Informer(),
			migrations: migrationinformers.NewMigrationInformer(mc, metav1.NamespaceAll, 0, cache.Indexers{}),
		}
		id := e.ID
		observe := func(obj any) {
			if m, ok := obj.(*v1alpha1.Migration); ok {
				c.observeMigration(id, m, time.Now())
			}
		}
		if _, err := w.migrations.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    observe,
			UpdateFunc: func(_, obj any) { observe(obj) },
		}); err != nil {
			return nil, fmt.Errorf("watching Migrations of %s: %w", e.ID, err)
		}
		c.edges = append(c.edges, w)
	}
	return c, nil
}

// start runs the informers and the ledger subscription until ctx ends, and returns once
// the caches have synced.
func (c *collector) start(ctx context.Context) error {
	var synced []cache.InformerSynced
	for _, w := range c.edges {
		for _, inf := range []cache.SharedIndexInformer{w.nodes, w.pods, w.migrations} {
			go inf.Run(ctx.Done())
			synced = append(synced, inf.HasSynced)
		}
	}
	go c.followLedger(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("syncing the demo's caches of the clusters: %w", context.Cause(ctx))
	}
	return nil
}

// followLedger reads the ledger's event stream from the beginning, resuming from the last
// checkpoint when the stream breaks.
func (c *collector) followLedger(ctx context.Context) {
	var from ledger.Checkpoint
	for ctx.Err() == nil {
		events, err := c.ledger.Events(ctx, from)
		if err != nil {
			klog.ErrorS(err, "Subscribing to the ledger's events")
		} else {
			for ev := range events {
				c.observeLedger(ev.Event, time.Now())
				from = ev.Checkpoint
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(ledgerRetry):
		}
	}
}

// observeMigration takes in a cluster's Migration object seen at now.
func (c *collector) observeMigration(edgeID string, m *v1alpha1.Migration, now time.Time) {
	// A destination's object (its spec carries the ledger id from its creation) tells
	// nothing the source's does not.
	if m.Status.Role == v1alpha1.RoleDestination || (m.Status.Role == "" && m.Spec.LedgerID != "") {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := edgeID + "/" + m.Namespace + "/" + m.Name
	if _, ok := c.triggered[key]; !ok {
		c.triggered[key] = now
	}
	id := m.Status.LedgerID
	if m.Status.Role != v1alpha1.RoleSource || id == "" {
		return // not started yet: its record starts when it is
	}
	r := c.recordLocked(id)
	r.triggered = c.triggered[key]
	r.reason, r.namespace = m.Spec.Reason, m.Namespace
	r.kind, r.name = m.Spec.Workload.Kind, m.Spec.Workload.Name
	r.clientID = m.Spec.ClientID
	r.source = edgeID
	if m.Status.Destination != "" {
		r.destination = m.Status.Destination
	}
	r.phase, r.statusWhy, r.message = m.Status.Phase, m.Status.Reason, m.Status.Message
	c.finishLocked(r)
}

// observeLedger takes in a ledger event received at now.
func (c *collector) observeLedger(ev chaincode.Event, now time.Time) {
	at, err := time.Parse(time.RFC3339Nano, ev.Time)
	if err != nil {
		at = now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Type != chaincode.EventCapacityReported { // every few seconds per cluster: noise on the page
		c.events = append(c.events, dashboard.LedgerEvent{Time: at, Type: ev.Type, MigrationID: ev.MigrationID,
			ClusterID: ev.ClusterID, State: ev.State, Destination: ev.Destination})
		if len(c.events) > maxLedger {
			c.events = slices.Delete(c.events, 0, len(c.events)-maxLedger)
		}
	}
	step := stepOfEvent[ev.Type]
	if step == "" || ev.MigrationID == "" {
		return
	}
	r := c.recordLocked(ev.MigrationID)
	if _, seen := r.steps[step]; !seen {
		r.steps[step] = at
	}
	switch ev.Type {
	case chaincode.EventMigrationProposed:
		if r.source == "" {
			r.source = ev.ClusterID
		}
	case chaincode.EventMigrationDecided:
		if ev.Destination != "" {
			r.destination = ev.Destination
		}
	}
	c.finishLocked(r)
}

func (c *collector) recordLocked(id string) *record {
	r, ok := c.records[id]
	if !ok {
		r = newRecord(id)
		c.records[id] = r
		c.order = append(c.order, id)
	}
	return r
}

// finishLocked prints the timeline of a migration once, when it is over.
func (c *collector) finishLocked(r *record) {
	if r.done || !r.final() {
		return
	}
	r.done = true
	line := r.timelineLine()
	if c.sender != nil && r.clientID == CarID {
		end := r.steps[stepCompleted]
		if end.IsZero() {
			end = time.Now()
		}
		line += "  " + requestFigures(c.sender.Between(r.started(), end))
	}
	c.narr.timeline(line)
}

// finished returns a copy of the first finished migration, triggered at or after since,
// that matches; ok is false when there is none yet.
func (c *collector) finished(since time.Time, match func(*record) bool) (record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range c.order {
		r := c.records[id]
		if r.done && !r.started().Before(since) && match(r) {
			cp := *r
			cp.steps = maps.Clone(r.steps)
			return cp, true
		}
	}
	return record{}, false
}

// moveCar records the car's new position.
func (c *collector) moveCar(id string, p geo.Point) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.car.ID = id
	c.car.Position = dashboard.Point{Lat: p.Lat, Lon: p.Lon}
	c.car.Track = append(c.car.Track, c.car.Position)
	if len(c.car.Track) > maxTrack {
		c.car.Track = slices.Delete(c.car.Track, 0, len(c.car.Track)-maxTrack)
	}
}

// locatorAnswer records one answer of a locator to the car: the cluster serving it, or err.
func (c *collector) locatorAnswer(cluster string, took time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var status *locator.StatusError
	switch {
	case errors.As(err, &status) && status.StatusCode == http.StatusNotFound:
		c.answersUnknown++ // the service does not run anywhere yet
		return
	case err != nil:
		c.answerErrors++
		return
	}
	c.answers++
	c.answerLatency += took
	c.car.ServingCluster = cluster
}

func (c *collector) summary() summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	var records []*record
	for _, id := range c.order {
		records = append(records, c.records[id])
	}
	return summarize(records, c.answers, c.answersUnknown, c.answerErrors, c.answerLatency)
}

// state is the dashboard's State now.
func (c *collector) state(now time.Time) dashboard.State {
	st := dashboard.State{Time: now, Log: c.narr.lines()}
	for _, w := range c.edges {
		st.Clusters = append(st.Clusters, clusterState(w))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.car.ID != "" {
		car := c.car
		car.Track = slices.Clone(c.car.Track)
		st.Cars = []dashboard.Car{car}
	}
	st.Ledger = slices.Clone(c.events)
	if c.sender != nil {
		st.Requests = []dashboard.Requests{dashboardRequests(CarID, c.sender.Stats(), c.sender.Recent(stripRequests))}
	}
	for _, id := range c.order {
		if r := c.records[id]; r.kind != "" || r.source != "" {
			st.Migrations = append(st.Migrations, r.dashboardMigration())
		}
	}
	return st
}

// clusterState reads one cluster's nodes and inference services from the caches.
func clusterState(w *edgeWatch) dashboard.Cluster {
	e := w.edge
	cl := dashboard.Cluster{ID: e.ID, Center: dashboard.Point{Lat: e.Lat, Lon: e.Lon}, RadiusM: e.RadiusM, Endpoint: e.LocatorURL}
	used := map[string]jetson.Demand{}
	for _, obj := range w.pods.GetStore().List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if pod.Spec.NodeName != "" {
			if d, err := jetson.PodDemand(pod); err == nil {
				used[pod.Spec.NodeName] = used[pod.Spec.NodeName].Add(d)
			}
		}
		if svc, ok := service(pod); ok {
			cl.Services = append(cl.Services, svc)
		}
	}
	for _, obj := range w.nodes.GetStore().List() {
		node, ok := obj.(*corev1.Node)
		if !ok {
			continue
		}
		capacity := jetson.NodeCapacity(node, jetson.Config{})
		if !capacity.Jetson {
			// A real node runs on the host (amd64): no Jetson to the extender, its own
			// allocatable memory and GPU slots on the page.
			alloc := node.Status.Allocatable
			gpus := alloc[api.ResourceGPU]
			capacity = jetson.Capacity{Model: "not a Jetson (the host)", Memory: alloc.Memory().Value(), GPUSlots: gpus.Value()}
			if node.Labels[localcluster.RealNodeLabel] == "true" {
				capacity.Model = "real node (kubelet, containerd) on the host"
			}
		}
		u := used[node.Name]
		cl.Nodes = append(cl.Nodes, dashboard.Node{Name: node.Name, Model: capacity.Model,
			MemoryUsedBytes: u.Unified(), MemoryTotalBytes: capacity.Memory, GPUSlotsUsed: u.GPUSlots, GPUSlots: capacity.GPUSlots})
	}
	slices.SortFunc(cl.Nodes, func(a, b dashboard.Node) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(cl.Services, func(a, b dashboard.Service) int {
		return strings.Compare(a.Namespace+"/"+a.Name+"/"+a.Node, b.Namespace+"/"+b.Name+"/"+b.Node)
	})
	return cl
}

// service describes an opted-in pod as the inference service it belongs to; ok is false
// for pods edgemigrate does not manage and for pods on their way out.
func service(pod *corev1.Pod) (dashboard.Service, bool) {
	workload, tagged := pod.Annotations[api.AnnotationWorkload]
	if (!tagged && pod.Annotations[api.AnnotationMigrate] != "true") || pod.DeletionTimestamp != nil {
		return dashboard.Service{}, false
	}
	svc := dashboard.Service{Namespace: pod.Namespace, Name: pod.Name, Kind: v1alpha1.KindPod,
		ClientID: pod.Annotations[api.AnnotationClientID], Node: pod.Spec.NodeName,
		MigratedFrom: pod.Annotations[api.AnnotationMigratedFrom]}
	// edgemigrate.io/workload is Kind/namespace/name: the service is the owner.
	if parts := strings.SplitN(workload, "/", 3); len(parts) == 3 {
		svc.Kind, svc.Name = parts[0], parts[2]
	}
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			svc.Ready = cond.Status == corev1.ConditionTrue
		}
	}
	return svc, true
}
