package descheduler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned"
	migrationinformers "github.com/edgemigrate/edgemigrate/api/generated/informers/externalversions"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/jetson/usage"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/locator"
	"github.com/edgemigrate/edgemigrate/mtls"
	"github.com/edgemigrate/edgemigrate/policy"
)

// Indexes of the Migration informer.
const (
	indexLedgerID = "ledgerID"
	indexWorkload = "workload"
	indexClient   = "client"
	// indexPodClient indexes pods by their client id.
	indexPodClient = "client"
)

// Guards and pacing.
const (
	// workers reconcile the queue in parallel.
	workers = 4
	// retryBase and retryMax bound the backoff of a key whose reconcile failed.
	retryBase, retryMax = 100 * time.Millisecond, 10 * time.Second
	// usageAssumeTTL is how long a bid's assumed use of a node is kept without a pod event:
	// the same usage cache as the extender's, here only fed by the informers.
	usageAssumeTTL = 30 * time.Second
	// migrationCacheTTL keeps this process's own status writes ahead of a lagging informer.
	migrationCacheTTL = time.Minute
	// clientCheckInterval is how often every client's position is checked against the
	// coverage; location updates also check their client at once (OnLocation).
	clientCheckInterval = 500 * time.Millisecond
	// checkpointSaveInterval batches the ledger checkpoint's writes.
	checkpointSaveInterval = 2 * time.Second
)

// Controller is one cluster's descheduler.
type Controller struct {
	cfg     *Config
	kube    kubernetes.Interface
	migs    versioned.Interface
	ledger  ledger.Ledger
	clock   clock.WithTicker
	metrics *metrics
	// locations are the clients' last reported positions.
	locations LocationSource
	// gatewayInFlight counts the gateway's requests per client; nil when nothing is proxied here.
	gatewayInFlight RequestsInFlight

	// peerHTTP calls other clusters' public endpoints, presenting this cluster's
	// identity when it has one.
	peerHTTP *http.Client
	// clientTokens: the source's request through the destination's gateway
	// carries its client's token.
	clientTokens locator.Tokens
	// tidied is when tidyLedger last ran (Unix nanoseconds).
	tidied atomic.Int64
	// endpoints caches the public endpoint of each cluster on the ledger (id → URL): the
	// gateway's routes need them on every request, and they seldom change.
	endpoints sync.Map

	kubeInformers informers.SharedInformerFactory
	migInformers  migrationinformers.SharedInformerFactory
	pods          corelisters.PodLister
	podIndex      cache.Indexer
	deployments   appslisters.DeploymentLister
	migIndexer    cache.Indexer
	// migrations reads the informer's Migrations, or this process's later write of one the
	// informer has not shown yet, so a reconcile does not start from a stale copy.
	migrations cache.MutationCache
	usage      *usage.Cache
	synced     []cache.InformerSynced

	queue       workqueue.TypedRateLimitingInterface[queueKey]
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder

	// registered is set once the cluster is on the ledger: before that, other clusters'
	// decisions do not wait for its bid, so it must not take clients (readiness).
	registered atomic.Bool
	// starting says what Run waits for before it is registered (readiness); stopped is
	// why Run returned while its context lived (liveness).
	starting atomic.Pointer[string]
	stopped  atomic.Pointer[error]
	// beats are the loops' last rounds and busy the workers' current keys (liveness).
	beats sync.Map // loop name → *atomic.Int64, Unix nanoseconds
	busy  [workers]busyWorker

	// The service bundle (bundle*.go): the objects a workload takes along, the nodes'
	// images, and the bundles this cluster fetched as a destination (ledger id → bundle).
	services   corelisters.ServiceLister
	configMaps corelisters.ConfigMapLister
	pdbs       policylisters.PodDisruptionBudgetLister
	hpas       autoscalinglisters.HorizontalPodAutoscalerLister
	nodes      corelisters.NodeLister
	bundles    sync.Map
	// identity tells the bundle's peers apart (nil: development, loopback peers over
	// plain HTTP).
	identity *mtls.Identity

	// Hosting peers' services (hosting.go): the destination policy, the configuration the
	// host clients impersonate with, and one client per hosted namespace.
	policy      *policy.Config
	restConfig  *rest.Config
	hostClients sync.Map

	// ledgerView: whether the ledger answers and its clock (ledgerclock.go).
	ledgerView ledgerView
	// homes caches the ledger's dead clusters and homes of services (rehome.go).
	homes homesCache

	mu sync.Mutex
	// creating guards against starting a second migration for a workload before the
	// informer shows the first.
	creating map[string]time.Time
	// admitted are the source Migrations in flight (namespace/name), at most
	// --max-concurrent-migrations (admit).
	admitted map[string]struct{}
}

// LocationSource is the client locator's memory of where each client is.
type LocationSource interface {
	Location(clientID string) (geo.Point, bool)
}

// RequestsInFlight is the gateway's count of requests it is handling per client.
type RequestsInFlight interface {
	InFlight(clientID string) int
}

// Deps are what the controller works with. The caller builds them: the controller builds
// no client of its own, so tests hand it fakes, the embedded ledger and a fake clock.
type Deps struct {
	Kube       kubernetes.Interface
	Migrations versioned.Interface
	Ledger     ledger.Ledger
	Clock      clock.WithTicker
	Locations  LocationSource
	// Registerer takes the controller's metrics.
	Registerer prometheus.Registerer
	// InFlight, optional, is the gateway's: a source copy is removed only once its
	// clients' requests through the gateway are done (bounded by --drain-timeout).
	InFlight RequestsInFlight

	// RestConfig is the descheduler's own: peers' objects are created impersonating a
	// namespace's host ServiceAccount with it (hosting.go). Nil only in unit tests with a
	// fake Kube.
	RestConfig *rest.Config
	// Identity is the cluster's certificate for peer calls over mutual TLS; nil
	// (kwok-only tests) means plain HTTP to loopback peers only.
	Identity *mtls.Identity
	// ClientTokens: the clients' bearer tokens, with which a source asks the
	// destination's gateway for its client's service before removing its copy.
	ClientTokens locator.Tokens
}

// peerRequestTimeout bounds one call to another cluster's public endpoint.
const peerRequestTimeout = 30 * time.Second

// keyKind says what a queue key names.
type keyKind int

const (
	// keyMigration: a Migration object, Namespace/Name.
	keyMigration keyKind = iota
	// keyLedger: a migration on the ledger; Name is its id.
	keyLedger
	// keyPendingPod: an opted-in pod that may have to be offloaded, Namespace/Name.
	keyPendingPod
	// keyHomes: dead clusters and the homes of services (rehome.go); one key.
	keyHomes
)

// queueKey is one unit of work.
type queueKey struct {
	Kind            keyKind
	Namespace, Name string
}

func (k queueKey) String() string {
	return [...]string{"migration", "ledger", "pod", "homes"}[k.Kind] + ":" + cache.NewObjectName(k.Namespace, k.Name).String()
}

func migrationKey(m *v1alpha1.Migration) queueKey {
	return queueKey{Kind: keyMigration, Namespace: m.Namespace, Name: m.Name}
}

// Ready reports whether the controller runs and is registered on the ledger.
func (c *Controller) Ready() bool { return c.registered.Load() }

// Readiness says why the controller takes no clients yet, nil once it does. An outage of
// the ledger after registration does not end readiness: the gateway and the locator serve
// from what this cluster knows, only migrations wait.
func (c *Controller) Readiness() error {
	if c.registered.Load() {
		return nil
	}
	if err := c.stopped.Load(); err != nil {
		return fmt.Errorf("the controller stopped: %w", *err)
	}
	if s := c.starting.Load(); s != nil {
		return errors.New(*s)
	}
	return errors.New("starting")
}

func (c *Controller) setStarting(s string) { c.starting.Store(&s) }

// Liveness bounds: a loop's round or a worker's reconcile older than its interval plus
// stuckAfter means the controller is stuck (a call that never returns); the process is
// better restarted.
const stuckAfter = 5 * time.Minute

// busyWorker is the key a worker reconciles and since when (Unix nanoseconds; 0: idle).
type busyWorker struct {
	since atomic.Int64
	key   atomic.Pointer[queueKey]
}

// Liveness says why the running controller is stopped or stuck, nil while it works.
func (c *Controller) Liveness() error {
	if err := c.stopped.Load(); err != nil {
		return fmt.Errorf("the controller stopped: %w", *err)
	}
	if !c.registered.Load() {
		return nil // registering: bounded by --register-timeout, or waiting for admission
	}
	now := c.clock.Now()
	for name, every := range map[string]time.Duration{"resync": c.cfg.ResyncInterval, "capacity": c.cfg.CapacityReportInterval, "clients": clientCheckInterval} {
		if v, ok := c.beats.Load(name); ok {
			if last := time.Unix(0, v.(*atomic.Int64).Load()); now.Sub(last) > every+stuckAfter {
				return fmt.Errorf("the %s loop last ran %s ago", name, now.Sub(last).Round(time.Second))
			}
		}
	}
	for i := range c.busy {
		if since := c.busy[i].since.Load(); since != 0 && now.Sub(time.Unix(0, since)) > stuckAfter {
			return fmt.Errorf("worker %d has reconciled %s for %s", i, c.busy[i].key.Load(), now.Sub(time.Unix(0, since)).Round(time.Second))
		}
	}
	return nil
}

// beat records a round of a loop.
func (c *Controller) beat(name string) {
	v, _ := c.beats.LoadOrStore(name, new(atomic.Int64))
	v.(*atomic.Int64).Store(c.clock.Now().UnixNano())
}

// New builds a controller from its configuration and dependencies; Run starts it.
func New(cfg *Config, d Deps) (*Controller, error) {
	if d.Kube == nil || d.Migrations == nil || d.Ledger == nil || d.Locations == nil || d.Registerer == nil {
		return nil, fmt.Errorf("descheduler.New: every dependency but the clock and the in-flight count is required")
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	m, err := newMetrics(d.Registerer, d.Clock)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		cfg: cfg, kube: d.Kube, migs: d.Migrations, ledger: d.Ledger, clock: d.Clock, metrics: m, locations: d.Locations,
		gatewayInFlight: d.InFlight,
		usage:           usage.New(cfg.Jetson, usageAssumeTTL),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[queueKey](retryBase, retryMax),
			workqueue.TypedRateLimitingQueueConfig[queueKey]{Name: "migrations", Clock: d.Clock}),
		creating: map[string]time.Time{},
		admitted: map[string]struct{}{},
		// The source's verification request.
		clientTokens: d.ClientTokens,
	}
	// Every call feeds ledgerUp and ledgerNow.
	c.ledger = observedLedger{Ledger: d.Ledger, c: c}
	c.policy, c.restConfig = cfg.Hosting, d.RestConfig
	if c.policy == nil {
		c.policy = policy.Default()
	}
	// Peer calls: mutual TLS with the cluster identity, plain HTTP without one.
	c.peerHTTP = &http.Client{Timeout: peerRequestTimeout}
	if d.Identity != nil {
		c.peerHTTP = d.Identity.HTTPClient(peerRequestTimeout)
	}

	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	c.broadcaster = record.NewBroadcaster()
	c.recorder = c.broadcaster.NewRecorder(s, corev1.EventSource{Component: "edgemigrate-descheduler", Host: cfg.ClusterID})

	c.kubeInformers = informers.NewSharedInformerFactory(d.Kube, 0)
	podInformer := c.kubeInformers.Core().V1().Pods()
	if err := podInformer.Informer().AddIndexers(cache.Indexers{indexPodClient: podsByClient}); err != nil {
		return nil, err
	}
	c.pods, c.podIndex = podInformer.Lister(), podInformer.Informer().GetIndexer()
	c.deployments = c.kubeInformers.Apps().V1().Deployments().Lister()
	nodeInformer := c.kubeInformers.Core().V1().Nodes().Informer()
	if _, err := nodeInformer.AddEventHandler(c.usage.NodeHandler()); err != nil {
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
	deployInformer := c.kubeInformers.Apps().V1().Deployments().Informer()
	if _, err := deployInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			d := obj.(*appsv1.Deployment)
			c.enqueueMigrationsOfWorkload(d.Namespace, v1alpha1.KindDeployment, d.Name)
			c.onDeployment(d)
		},
	}); err != nil {
		return nil, err
	}

	c.migInformers = migrationinformers.NewSharedInformerFactory(d.Migrations, 0)
	migInformer := c.migInformers.Edgemigrate().V1alpha1().Migrations().Informer()
	if err := migInformer.AddIndexers(migrationIndexers); err != nil {
		return nil, err
	}
	c.migIndexer = migInformer.GetIndexer()
	c.migrations = cache.NewIntegerResourceVersionMutationCache(klog.Background(), migInformer.GetStore(), c.migIndexer, migrationCacheTTL, false)
	if _, err := migInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.forgetCreating(obj.(*v1alpha1.Migration))
			c.enqueueMigration(obj)
		},
		UpdateFunc: func(_, obj any) { c.enqueueMigration(obj) },
		DeleteFunc: func(obj any) {
			if m, ok := unwrap(obj).(*v1alpha1.Migration); ok {
				c.release(m)
			}
		},
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{podInformer.Informer().HasSynced, nodeInformer.HasSynced, deployInformer.HasSynced, migInformer.HasSynced}
	// The service bundle's objects, and the identity its peers are checked against.
	c.identity = d.Identity
	c.nodes = c.kubeInformers.Core().V1().Nodes().Lister()
	for _, inf := range []interface {
		Informer() cache.SharedIndexInformer
	}{c.kubeInformers.Core().V1().Services(), c.kubeInformers.Core().V1().ConfigMaps(),
		c.kubeInformers.Policy().V1().PodDisruptionBudgets(), c.kubeInformers.Autoscaling().V2().HorizontalPodAutoscalers()} {
		c.synced = append(c.synced, inf.Informer().HasSynced)
	}
	c.services = c.kubeInformers.Core().V1().Services().Lister()
	c.configMaps = c.kubeInformers.Core().V1().ConfigMaps().Lister()
	c.pdbs = c.kubeInformers.Policy().V1().PodDisruptionBudgets().Lister()
	c.hpas = c.kubeInformers.Autoscaling().V2().HorizontalPodAutoscalers().Lister()
	return c, nil
}

// podsByClient indexes pods by the client they serve.
func podsByClient(obj any) ([]string, error) {
	if p, ok := obj.(*corev1.Pod); ok && p.Annotations[api.AnnotationClientID] != "" {
		return []string{p.Annotations[api.AnnotationClientID]}, nil
	}
	return nil, nil
}

// migrationIndexers index Migrations by ledger id, workload and client.
var migrationIndexers = cache.Indexers{
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
	return c.cfg.ClusterID + "-" + uid
}

func (c *Controller) enqueueMigration(obj any) {
	if m, ok := obj.(*v1alpha1.Migration); ok {
		c.queue.Add(migrationKey(m))
	}
}

func (c *Controller) enqueueMigrationsOfWorkload(namespace, kind, name string) {
	for _, m := range c.migrationsByIndex(indexWorkload, workloadKey(namespace, kind, name)) {
		if !m.Final() {
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
	c.enqueueOffload(p)
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
	logger := klog.FromContext(ctx)
	defer c.queue.ShutDown()
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.kube.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()
	// The informers stop with ctx: Run also returns on an error while its caller's
	// context lives, and Shutdown waits for them.
	ctx, stop := context.WithCancel(ctx)
	c.kubeInformers.Start(ctx.Done())
	c.migInformers.Start(ctx.Done())
	defer c.kubeInformers.Shutdown()
	defer c.migInformers.Shutdown()
	defer stop()
	// An error while ctx lives stops the controller for good: liveness says so.
	fail := func(err error) error {
		if ctx.Err() == nil {
			c.stopped.Store(&err)
		}
		return err
	}
	c.setStarting("waiting for the informers to sync")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("waiting for the informers to sync: %w", ctx.Err())
	}
	c.seedAdmitted()
	c.setStarting("registering on the ledger")
	if err := c.register(ctx); err != nil {
		return fail(err)
	}
	if err := c.untilReachable(ctx, c.afterRegister); err != nil {
		return fail(err)
	}
	c.registered.Store(true)
	logger.Info("Descheduler running", "cluster", c.cfg.ClusterID, "site", c.cfg.Coverage.Center, "coverageRadiusM", c.cfg.Coverage.RadiusM,
		"endpoint", c.cfg.PublicEndpoint, "dryRun", c.cfg.DryRun)
	var wg sync.WaitGroup
	for _, loop := range []struct {
		name string
		run  func(context.Context)
	}{
		{"ledger-events", c.watchLedger},
		{"resync", c.every("resync", c.resync, c.cfg.ResyncInterval)},
		{"clients", c.every("clients", c.checkClients, clientCheckInterval)},
		{"capacity", c.every("capacity", c.reportCapacity, c.cfg.CapacityReportInterval)},
	} {
		wg.Go(func() { loop.run(klog.NewContext(ctx, klog.LoggerWithName(logger, loop.name))) })
	}
	for i := range workers {
		wg.Go(func() { c.worker(klog.NewContext(ctx, klog.LoggerWithValues(logger, "worker", i)), &c.busy[i]) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// untilReachable runs f again, with registerBackoff, while it fails to reach the ledger,
// for at most --register-timeout: a blip just after registering does not stop the
// controller; any other error, or a longer outage, is returned.
func (c *Controller) untilReachable(ctx context.Context, f func(context.Context) error) error {
	backoff := registerBackoff
	giveUp := c.clock.Now().Add(c.cfg.RegisterTimeout)
	for {
		err := f(ctx)
		left := giveUp.Sub(c.clock.Now())
		if err == nil || !unreachable(err) || left <= 0 {
			return err
		}
		delay := min(backoff.Step(), left)
		klog.FromContext(ctx).V(2).Info("Waiting for the ledger", "err", err, "in", delay)
		select {
		case <-c.clock.After(delay):
		case <-ctx.Done():
			return err
		}
	}
}

// every runs f every interval, recording each round for liveness.
func (c *Controller) every(name string, f func(context.Context), interval time.Duration) func(context.Context) {
	return func(ctx context.Context) {
		c.beat(name)
		wait.UntilWithContext(ctx, func(ctx context.Context) { f(ctx); c.beat(name) }, interval)
	}
}

func (c *Controller) worker(ctx context.Context, busy *busyWorker) {
	for c.processNext(ctx, busy) {
	}
}

// processNext reconciles one key; false once the queue shuts down. busy, when set, shows
// the key while it is reconciled.
func (c *Controller) processNext(ctx context.Context, busy *busyWorker) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if busy != nil {
		busy.key.Store(&key)
		busy.since.Store(c.clock.Now().UnixNano())
		defer busy.since.Store(0)
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "key", key)
	requeue, err := c.sync(klog.NewContext(ctx, logger), key)
	switch {
	case unreachable(err):
		// The outage is logged once (observe); the key waits for the ledger with backoff.
		logger.V(2).Info("Waiting for the ledger", "err", err)
		c.queue.AddRateLimited(key)
	case err != nil:
		logger.Error(err, "Reconciling; will retry")
		c.queue.AddRateLimited(key)
	case requeue > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, requeue)
	default:
		c.queue.Forget(key)
	}
	return true
}

// sync reconciles one key and says when to look again (0: on the next event).
func (c *Controller) sync(ctx context.Context, key queueKey) (time.Duration, error) {
	switch key.Kind {
	case keyLedger:
		return c.syncLedger(ctx, key.Name)
	case keyPendingPod:
		return c.syncPendingPod(ctx, key.Namespace, key.Name)
	case keyHomes:
		return c.syncHomes(ctx)
	}
	obj, exists, err := c.migrations.GetByKey(cache.NewObjectName(key.Namespace, key.Name).String())
	if err != nil || !exists {
		return 0, err
	}
	m := obj.(*v1alpha1.Migration).DeepCopy()
	if m.Final() {
		c.release(m)
		return 0, c.forgetFinal(ctx, m)
	}
	if m.Spec.LedgerID != "" {
		return c.syncDestination(ctx, m)
	}
	return c.syncSource(ctx, m)
}

// resync reconciles every open ledger migration and every open Migration object, so that
// a lost event or a crash costs at most one interval.
func (c *Controller) resync(ctx context.Context) {
	c.refreshEndpoints(ctx)
	open, err := c.ledger.ListOpenMigrations(ctx)
	if err != nil {
		logLedgerError(ctx, err, "Listing open migrations on the ledger")
	}
	for _, m := range open {
		c.queue.Add(queueKey{Kind: keyLedger, Name: m.ID})
	}
	if err == nil {
		c.tidyLedger(ctx, open) // bounded state
	}
	for _, obj := range c.migIndexer.List() {
		if m := obj.(*v1alpha1.Migration); !m.Final() {
			c.enqueueMigration(m)
		}
	}
	c.queue.Add(homesKey)
}

// migrationsByIndex returns the Migrations of an index value, oldest first.
func (c *Controller) migrationsByIndex(index, value string) []*v1alpha1.Migration {
	objs, _ := c.migrations.ByIndex(index, value)
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

// compareResourceVersions orders objects created in the same second (creation timestamps
// have one-second resolution; a car can come back faster). Resource versions are opaque to
// clients, but on every API server backed by etcd they are decimal revisions, increasing.
func compareResourceVersions(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// refreshEndpoints reads every cluster's public endpoint from the ledger into the cache.
func (c *Controller) refreshEndpoints(ctx context.Context) {
	start := c.clock.Now()
	clusters, err := c.ledger.ListClusters(ctx)
	c.metrics.ledgerCall("ListClusters", start, err)
	if err != nil {
		logLedgerError(ctx, err, "Listing the clusters' endpoints on the ledger")
		return
	}
	for _, cl := range clusters {
		if cl.Endpoint != "" {
			c.endpoints.Store(cl.ID, cl.Endpoint)
		}
	}
}

// learnEndpoint caches one cluster's endpoint unless it is cached already.
func (c *Controller) learnEndpoint(ctx context.Context, cluster string) error {
	if _, ok := c.endpoints.Load(cluster); ok || cluster == "" {
		return nil
	}
	start := c.clock.Now()
	cl, err := c.ledger.GetCluster(ctx, cluster)
	c.metrics.ledgerCall("GetCluster", start, err)
	if err != nil {
		return fmt.Errorf("reading cluster %s's endpoint from the ledger: %w", cluster, err)
	}
	if cl.Endpoint != "" {
		c.endpoints.Store(cl.ID, cl.Endpoint)
	}
	return nil
}
