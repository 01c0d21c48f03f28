package descheduler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/extender"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// Indexes of the Migration informer.
const (
	indexLedgerID = "ledgerID"
	indexWorkload = "workload"
	indexClient   = "client"
	// indexPodClient indexes pods by their client id.
	indexPodClient = "client"
)

// Controller is one cluster's descheduler.
type Controller struct {
	o        *Options
	id       string
	site     geo.Point
	coverage geo.Coverage
	jetson   jetson.Config
	policy   jetson.Policy

	kube    kubernetes.Interface
	migs    *v1alpha1.Client
	ledger  ledger.Ledger
	metrics *metrics

	factory     informers.SharedInformerFactory
	pods        corelisters.PodLister
	podIndex    cache.Indexer
	deployments appslisters.DeploymentLister
	migInformer cache.SharedIndexInformer
	usage       *extender.Cache
	synced      []cache.InformerSynced

	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder

	// Locations are the clients' last reported positions.
	locations locationSource

	// registered is set once the cluster is on the ledger: before that, other clusters'
	// decisions do not wait for its bid, so it must not take clients (readiness).
	registered atomic.Bool
	// written holds the Migrations this process last wrote, which the informer may not
	// have seen yet, so the next reconcile does not start from a stale copy.
	written sync.Map

	mu sync.Mutex
	// creating guards against starting a second migration for a workload before the
	// informer shows the first.
	creating map[string]time.Time
	now      func() time.Time
}

// locationSource is the client locator's memory of where each client is.
type locationSource interface {
	Location(clientID string) (geo.Point, bool)
}

// Queue keys: a Migration object, or a migration on the ledger.
const (
	keyObject = "obj:"
	keyLedger = "ledger:"
)

func objectKey(namespace, name string) string { return keyObject + namespace + "/" + name }

// Ready reports whether the controller runs and is registered on the ledger.
func (c *Controller) Ready() bool { return c.registered.Load() }

// New builds a controller; Run starts it.
func New(o *Options, cfg *rest.Config, l ledger.Ledger, locations locationSource, m *metrics) (*Controller, error) {
	site, err := geo.ParsePoint(o.Location)
	if err != nil {
		return nil, fmt.Errorf("--location: %w", err)
	}
	jc, policy, err := o.Jetson.Parse()
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	migs, err := v1alpha1.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		o: o, id: o.ClusterID, site: site, jetson: jc, policy: policy,
		coverage: geo.Coverage{Center: site, RadiusM: o.CoverageRadius, HysteresisM: o.CoverageHysteresis},
		kube:     kube, migs: migs, ledger: l, metrics: m, locations: locations,
		usage: extender.NewCache(jc, 30*time.Second),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "migrations"}),
		creating: map[string]time.Time{},
		now:      time.Now,
	}

	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	c.recorder = broadcaster.NewRecorder(s, corev1.EventSource{Component: "edgemigrate-descheduler", Host: o.ClusterID})

	c.factory = informers.NewSharedInformerFactory(kube, 0)
	podInformer := c.factory.Core().V1().Pods()
	if err := podInformer.Informer().AddIndexers(cache.Indexers{indexPodClient: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Annotations[api.AnnotationClientID] != "" {
			return []string{p.Annotations[api.AnnotationClientID]}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	c.pods, c.podIndex = podInformer.Lister(), podInformer.Informer().GetIndexer()
	c.deployments = c.factory.Apps().V1().Deployments().Lister()
	nodeInformer := c.factory.Core().V1().Nodes().Informer()
	if _, err := nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.usage.SetNode(obj.(*corev1.Node)) },
		UpdateFunc: func(_, obj any) { c.usage.SetNode(obj.(*corev1.Node)) },
		DeleteFunc: func(obj any) {
			if n, ok := unwrap(obj).(*corev1.Node); ok {
				c.usage.DeleteNode(n.Name)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.onPod(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { c.onPod(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if p, ok := unwrap(obj).(*corev1.Pod); ok {
				c.usage.DeletePod(p.UID)
				c.enqueueMigrationsOfPod(p)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := c.factory.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			c.enqueueMigrationsOfWorkload(obj.(*appsv1.Deployment).Namespace, v1alpha1.KindDeployment, obj.(*appsv1.Deployment).Name)
		},
	}); err != nil {
		return nil, err
	}

	c.migInformer = cache.NewSharedIndexInformer(
		&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return migs.List(ctx, metav1.NamespaceAll, opts)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				return migs.Watch(ctx, metav1.NamespaceAll, opts)
			},
		},
		&v1alpha1.Migration{}, 0, cache.Indexers{
			indexLedgerID: func(obj any) ([]string, error) {
				if id := ledgerIDOf(obj.(*v1alpha1.Migration)); id != "" {
					return []string{id}, nil
				}
				return nil, nil
			},
			indexWorkload: func(obj any) ([]string, error) {
				m := obj.(*v1alpha1.Migration)
				return []string{workloadKey(m.Namespace, m.Spec.Workload.Kind, m.Spec.Workload.Name)}, nil
			},
			indexClient: func(obj any) ([]string, error) {
				if id := obj.(*v1alpha1.Migration).Spec.ClientID; id != "" {
					return []string{id}, nil
				}
				return nil, nil
			},
		})
	if _, err := c.migInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.forgetCreating(obj.(*v1alpha1.Migration))
			c.enqueueMigration(obj)
		},
		UpdateFunc: func(_, obj any) { c.enqueueMigration(obj) },
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{podInformer.Informer().HasSynced, nodeInformer.HasSynced,
		c.factory.Apps().V1().Deployments().Informer().HasSynced, c.migInformer.HasSynced}
	return c, nil
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func workloadKey(namespace, kind, name string) string { return kind + "/" + namespace + "/" + name }

// ledgerIDOf is the ledger id of a Migration: the destination's carries it in its spec, the
// source derives it from the object's UID (so a restart before the status is written
// proposes the same id again).
func ledgerIDOf(m *v1alpha1.Migration) string {
	if m.Spec.LedgerID != "" {
		return m.Spec.LedgerID
	}
	return m.Status.LedgerID
}

func (c *Controller) sourceLedgerID(m *v1alpha1.Migration) string {
	uid := strings.ReplaceAll(string(m.UID), "-", "")
	if len(uid) > 12 {
		uid = uid[:12]
	}
	return c.id + "-" + uid
}

func (c *Controller) enqueueMigration(obj any) {
	if m, ok := obj.(*v1alpha1.Migration); ok {
		c.queue.Add(objectKey(m.Namespace, m.Name))
	}
}

func (c *Controller) enqueueMigrationsOfWorkload(namespace, kind, name string) {
	objs, _ := c.migInformer.GetIndexer().ByIndex(indexWorkload, workloadKey(namespace, kind, name))
	for _, obj := range objs {
		if m := obj.(*v1alpha1.Migration); !m.Final() {
			c.enqueueMigration(m)
		}
	}
}

func (c *Controller) enqueueMigrationsOfPod(p *corev1.Pod) {
	kind, ns, name, ok := splitWorkload(p.Annotations[api.AnnotationWorkload])
	if !ok {
		kind, ns, name = v1alpha1.KindPod, p.Namespace, p.Name
	}
	c.enqueueMigrationsOfWorkload(ns, kind, name)
}

func (c *Controller) onPod(p *corev1.Pod) {
	c.usage.SetPod(p)
	c.enqueueMigrationsOfPod(p)
}

// splitWorkload parses the webhook's edgemigrate.io/workload, Kind/namespace/name.
func splitWorkload(s string) (kind, namespace, name string, ok bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	if parts[0] != v1alpha1.KindDeployment && parts[0] != v1alpha1.KindPod {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// Run starts the informers and the loops and returns when ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.factory.Start(ctx.Done())
	go c.migInformer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("waiting for the informers to sync: %w", ctx.Err())
	}
	if err := c.register(ctx); err != nil {
		return err
	}
	c.registered.Store(true)
	klog.InfoS("Descheduler running", "cluster", c.id, "site", c.site, "coverageRadiusM", c.o.CoverageRadius,
		"endpoint", c.o.PublicEndpoint, "dryRun", c.o.DryRun)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){c.watchLedger, c.resyncLoop, c.triggerLoop, c.capacityLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); c.worker(ctx) }()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		requeue, err := c.sync(ctx, key)
		switch {
		case err != nil:
			klog.ErrorS(err, "Reconciling; will retry", "key", key)
			c.queue.AddRateLimited(key)
		case requeue > 0:
			c.queue.Forget(key)
			c.queue.AddAfter(key, requeue)
		default:
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	switch {
	case strings.HasPrefix(key, keyLedger):
		return c.syncLedger(ctx, strings.TrimPrefix(key, keyLedger))
	case strings.HasPrefix(key, keyObject):
		ns, name, _ := strings.Cut(strings.TrimPrefix(key, keyObject), "/")
		obj, exists, err := c.migInformer.GetIndexer().GetByKey(ns + "/" + name)
		if err != nil || !exists {
			return 0, err
		}
		m := obj.(*v1alpha1.Migration)
		if w, ok := c.written.Load(key); ok && w.(*v1alpha1.Migration).UID == m.UID &&
			compareResourceVersions(w.(*v1alpha1.Migration).ResourceVersion, m.ResourceVersion) > 0 {
			m = w.(*v1alpha1.Migration)
		} else {
			c.written.Delete(key)
		}
		m = m.DeepCopy()
		if m.Final() {
			return 0, nil
		}
		if m.Spec.LedgerID != "" {
			return c.syncDestination(ctx, m)
		}
		return c.syncSource(ctx, m)
	}
	return 0, nil
}

// resyncLoop reconciles every open ledger migration and every open Migration object now and
// then, so that a lost event or a crash costs at most one interval.
func (c *Controller) resyncLoop(ctx context.Context) {
	t := time.NewTicker(c.o.ResyncInterval)
	defer t.Stop()
	for {
		c.resync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Controller) resync(ctx context.Context) {
	open, err := c.ledger.ListOpenMigrations(ctx)
	if err != nil {
		klog.ErrorS(err, "Listing open migrations on the ledger")
	}
	for _, m := range open {
		c.queue.Add(keyLedger + m.ID)
	}
	for _, obj := range c.migInformer.GetStore().List() {
		if m := obj.(*v1alpha1.Migration); !m.Final() {
			c.enqueueMigration(m)
		}
	}
}

// migrationsByIndex returns the Migrations of an index value, oldest first.
func (c *Controller) migrationsByIndex(index, value string) []*v1alpha1.Migration {
	objs, _ := c.migInformer.GetIndexer().ByIndex(index, value)
	out := make([]*v1alpha1.Migration, 0, len(objs))
	for _, obj := range objs {
		out = append(out, obj.(*v1alpha1.Migration))
	}
	slices.SortFunc(out, func(a, b *v1alpha1.Migration) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return compareResourceVersions(a.ResourceVersion, b.ResourceVersion)
	})
	return out
}

// compareResourceVersions orders resource versions that are, on every API server backed by
// etcd, decimal revision numbers.
func compareResourceVersions(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
