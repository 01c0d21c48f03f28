package descheduler

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	migfake "github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned/fake"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/gateway"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/inference"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
	"github.com/edgemigrate/edgemigrate/locator"
)

// The state-machine tests run real controllers on fake API servers (client-go's fake
// clientsets), the embedded ledger (the real contract) and a fake clock. Nothing runs by
// itself: a test drives each reconcile and plays the parts of the missing controllers (the
// kubelet making copies Ready, the ReplicaSet controller removing a scaled-down copy's pods).

const (
	testNamespace = "apps"
	gi            = jetsontest.Gi
)

// sites: edge-a at the origin of the test area, the others north of it, each covering its
// own disc of 1 km.
var sites = map[string]geo.Point{
	"edge-a": {Lat: 35.0, Lon: 128.0},
	"edge-b": geo.North(geo.Point{Lat: 35.0, Lon: 128.0}, 3000),
	"edge-c": geo.North(geo.Point{Lat: 35.0, Lon: 128.0}, 6000),
}

// adminMSP is the ledger's admin: it admits each cluster of a world for the cluster's MSP.
const adminMSP = "MSP-admin"

// world is a set of clusters sharing one ledger and one clock.
type world struct {
	t     *testing.T
	ctx   context.Context
	clock *clocktesting.FakeClock
	store *embedded.Store
	// ledgerFile is the embedded ledger's database, for tests that scan what it holds.
	ledgerFile string
	clusters   []*cluster
	// realClock gives the controllers the real clock, for tests of Run.
	realClock bool
}

// cluster is one edge cluster: its API servers, its controller, and its clients' locations.
type cluster struct {
	w         *world
	id        string
	cfg       *Config
	kube      *kubefake.Clientset
	migs      *migfake.Clientset
	ledger    ledger.Ledger
	c         *Controller
	locations *locations
	// evictionBlocked makes the eviction API answer 429, as with a PodDisruptionBudget.
	evictionBlocked atomic.Bool
	// noKubelet leaves migrated copies starting forever.
	noKubelet bool
	// twice runs every reconcile a second time at once.
	twice bool
	// crashAt, when a Migration first satisfies it, replaces the controller with a fresh
	// one, as a crash and restart would.
	crashAt  func(*v1alpha1.Migration) bool
	restarts int
	stop     context.CancelFunc
	// inFlight, when set, plays the gateway's count of requests in flight.
	inFlight *inFlightCounts
	// events, when set, records the controller's Events instead of the broadcaster.
	events *record.FakeRecorder
	// gateway is the cluster's public endpoint (see serveGateway).
	gateway *testGateway
	// clockOffset skews the cluster's clock from the world's (clock_test.go); the ledger
	// keeps the world's.
	clockOffset time.Duration
}

// clientTokens gives every client the token "token-<id>".
type clientTokens struct{}

func (clientTokens) Token(id string) (string, bool) { return "token-" + id, true }

// testGateway is a cluster's public endpoint on loopback: the real edge gateway (package
// gateway), routing by the cluster's controller. Only the last hop is stood in for: a
// request the gateway sends to a Ready pod is answered by serviceHandler in-process, as a
// service would answer, since the fake API server's pods run nothing.
type testGateway struct {
	url  string
	ctrl atomic.Pointer[Controller]
	// requests counts the requests that reached a pod of this cluster; lastPath is the
	// path of the last.
	requests atomic.Int64
	lastPath atomic.Value
}

func (w *world) serveGateway(id string) *testGateway {
	w.t.Helper()
	tg := &testGateway{}
	auth, err := locator.NewAuth(locator.AuthOptions{Tokens: clientTokens{}})
	if err != nil {
		w.t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{Auth: auth, ClusterID: id,
		Router: gateway.RouterFunc(func(client string) gateway.Route {
			if c := tg.ctrl.Load(); c != nil {
				return c.Route(client)
			}
			return gateway.Route{Kind: gateway.Unavailable, Cluster: id, Reason: "starting"}
		}),
		Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			tg.requests.Add(1)
			tg.lastPath.Store(r.URL.Path)
			rec := httptest.NewRecorder()
			rec.WriteString("served")
			return rec.Result(), nil
		}),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	engine := gin.New()
	gw.Register(engine)
	engine.GET(bundleRoute, func(g *gin.Context) {
		if c := tg.ctrl.Load(); c != nil {
			c.serveBundle(g)
			return
		}
		g.AbortWithStatus(http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(engine)
	w.t.Cleanup(srv.Close)
	tg.url = srv.URL
	return tg
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// inFlightCounts is a gateway's in-flight count per client, set by the test.
type inFlightCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (f *inFlightCounts) InFlight(id string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.m[id] }

func (f *inFlightCounts) set(id string, n int) { f.mu.Lock(); f.m[id] = n; f.mu.Unlock() }

type locations struct{ m map[string]geo.Point }

func (l *locations) Location(id string) (geo.Point, bool) { p, ok := l.m[id]; return p, ok }

func newWorld(t *testing.T) *world { return newWorldWith(t, false) }

// newWorldWith is newWorld; with ledgerOnFakeClock the ledger stamps transactions by the
// world's fake clock, for tests of the contract's time rules (a long step leaves clusters
// that do not report capacity no longer live).
func newWorldWith(t *testing.T, ledgerOnFakeClock bool) *world {
	t.Helper()
	// The contract times transactions by the real clock: start the fake one there.
	clk := clocktesting.NewFakeClock(time.Now())
	opts := embedded.Options{NoSync: true, AdminMSP: adminMSP}
	if ledgerOnFakeClock {
		opts.Now = clk.Now
	}
	file := filepath.Join(t.TempDir(), "ledger.db")
	store, err := embedded.Open(file, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &world{t: t, ctx: ctx, clock: clk, store: store, ledgerFile: file}
}

func testConfig(id string) *Config {
	jc, policy, err := jetson.DefaultFlags().Parse()
	if err != nil {
		panic(err)
	}
	return &Config{
		ClusterID: id, Namespace: api.SystemNamespace, PublicEndpoint: "http://" + id + ".example:8090",
		Coverage:                geo.Coverage{Center: sites[id], RadiusM: 1000, HysteresisM: 100},
		MaxConcurrentMigrations: 4, OffloadAfter: 2 * time.Second, BidTimeout: 2 * time.Second,
		MigrationTimeout: 2 * time.Minute, DestinationReadyTimeout: time.Minute, CapacityReportInterval: 30 * time.Second,
		ResyncInterval: 10 * time.Second, RegisterTimeout: 2 * time.Minute, Jetson: jc, Policy: policy, SchedulerName: api.SchedulerName, VerifyTimeout: 30 * time.Second,
	}
}

// jetsonNode is an AGX Xavier with nothing on it, its GPU time-sliced four ways.
func jetsonNode(name string) *corev1.Node {
	r := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods: resource.MustParse("110"), api.ResourceGPU: resource.MustParse("4")}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{api.LabelGPUProduct: "NVIDIA-Jetson-AGX-Xavier", corev1.LabelArchStable: "arm64"}},
		Status: corev1.NodeStatus{Capacity: r, Allocatable: r.DeepCopy()},
	}
}

// addCluster starts a cluster with the given objects (a Jetson node unless nodes are
// given) and registers it on the ledger.
func (w *world) addCluster(id string, mutate func(*Config), objs ...runtime.Object) *cluster {
	w.t.Helper()
	cl := w.newCluster(id, mutate, objs...)
	if err := cl.c.register(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	cl.c.registered.Store(true)
	return cl
}

// admit has the ledger's admin admit cluster id for its MSP, once.
func (w *world) admit(id string) {
	w.t.Helper()
	_, err := w.store.Client(adminMSP).AdmitCluster(w.ctx, chaincode.AdmissionInput{ClusterID: id, MSPID: "MSP-" + id})
	if err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict {
		w.t.Fatalf("admitting %s: %v", id, err)
	}
}

// newCluster builds a cluster's controller on its API servers' objects; it does not register.
func (w *world) newCluster(id string, mutate func(*Config), objs ...runtime.Object) *cluster {
	w.t.Helper()
	return w.newClusterWith(nil, id, mutate, objs...)
}

// newClusterWith is newCluster with the cluster's test doubles set by before, ahead of the
// controller's construction.
func (w *world) newClusterWith(before func(*cluster), id string, mutate func(*Config), objs ...runtime.Object) *cluster {
	w.t.Helper()
	cfg := testConfig(id)
	// The cluster's public endpoint: its gateway, and its bundles for the destinations.
	gw := w.serveGateway(id)
	cfg.PublicEndpoint = gw.url
	if mutate != nil {
		mutate(cfg)
	}
	var kubeObjs, migObjs []runtime.Object
	hasNode := false
	for _, o := range objs {
		switch o.(type) {
		case *v1alpha1.Migration:
			migObjs = append(migObjs, o)
		case *corev1.Node:
			hasNode = true
			kubeObjs = append(kubeObjs, o)
		default:
			kubeObjs = append(kubeObjs, o)
		}
	}
	if !hasNode {
		kubeObjs = append(kubeObjs, jetsonNode(id+"-xavier-0"))
	}
	w.admit(id)
	cl := &cluster{w: w, id: id, cfg: cfg, kube: kubefake.NewClientset(kubeObjs...), migs: migfake.NewSimpleClientset(migObjs...),
		ledger: w.store.Client("MSP-" + id), locations: &locations{m: map[string]geo.Point{}}, gateway: gw}
	if before != nil {
		before(cl)
	}
	cl.addReactors()
	cl.start()
	w.clusters = append(w.clusters, cl)
	return cl
}

// start builds the cluster's controller and starts its informers.
func (cl *cluster) start() {
	w := cl.w
	var clk clock.WithTicker = w.clock
	if w.realClock {
		clk = clock.RealClock{}
	}
	if cl.clockOffset != 0 {
		clk = offsetClock{WithTicker: clk, offset: cl.clockOffset}
	}
	d := Deps{Kube: cl.kube, Migrations: cl.migs, Ledger: cl.ledger, Clock: clk, Locations: cl.locations,
		Registerer: prometheus.NewRegistry(), ClientTokens: clientTokens{}}
	if cl.inFlight != nil {
		d.InFlight = cl.inFlight
	}
	c, err := New(cl.cfg, d)
	if err != nil {
		w.t.Fatal(err)
	}
	if cl.events != nil {
		c.recorder = cl.events
	}
	cl.c = c
	if cl.gateway != nil {
		cl.gateway.ctrl.Store(c)
	}
	ctx, stop := context.WithCancel(w.ctx)
	cl.stop = stop
	w.t.Cleanup(stop)
	c.kubeInformers.Start(ctx.Done())
	c.migInformers.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		w.t.Fatal("informers did not sync")
	}
	c.seedAdmitted() // as Run does
}

// restart replaces the controller with a fresh one on the same API servers and ledger.
func (cl *cluster) restart() {
	cl.w.t.Helper()
	cl.stop()
	cl.restarts++
	cl.start()
	if err := cl.c.register(cl.w.ctx); err != nil {
		cl.w.t.Fatal(err)
	}
	cl.c.registered.Store(true)
	cl.settle()
}

// crashIfDue restarts the controller the first time a Migration satisfies crashAt.
func (cl *cluster) crashIfDue() bool {
	if cl.crashAt == nil || cl.restarts > 0 {
		return false
	}
	list, _ := cl.migs.EdgemigrateV1alpha1().Migrations("").List(cl.w.ctx, metav1.ListOptions{})
	for i := range list.Items {
		if cl.crashAt(&list.Items[i]) {
			cl.restart()
			return true
		}
	}
	return false
}

// waitQueued waits until the queue holds a key whose delay has passed.
func (cl *cluster) waitQueued() {
	cl.w.t.Helper()
	err := wait.PollUntilContextTimeout(cl.w.ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cl.c.queue.Len() > 0, nil
	})
	if err != nil {
		cl.w.t.Fatalf("%s: nothing queued", cl.id)
	}
}

// addReactors gives the fake API server what a real one does and the tests need: names
// from generateName, UIDs and creation times, and the eviction API.
func (cl *cluster) addReactors() {
	n := 0
	stamp := func(action clienttesting.Action) (bool, runtime.Object, error) {
		obj := action.(clienttesting.CreateAction).GetObject()
		m, err := meta.Accessor(obj)
		if err != nil {
			return false, nil, nil
		}
		n++
		if m.GetName() == "" && m.GetGenerateName() != "" {
			m.SetName(fmt.Sprintf("%s%05d", m.GetGenerateName(), n))
		}
		if m.GetUID() == "" {
			m.SetUID(types.UID(fmt.Sprintf("%08d-1111-2222-3333-%012d", n, n)))
		}
		if ts := m.GetCreationTimestamp(); ts.IsZero() {
			m.SetCreationTimestamp(metav1.NewTime(cl.w.clock.Now()))
		}
		return false, nil, nil
	}
	cl.migs.PrependReactor("create", "migrations", stamp)
	cl.kube.PrependReactor("create", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() == "eviction" {
			ev := action.(clienttesting.CreateAction).GetObject().(metav1.Object)
			if cl.evictionBlocked.Load() {
				return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
			}
			err := cl.kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), ev.GetNamespace(), ev.GetName())
			return true, nil, err
		}
		return stamp(action)
	})
}

// settle waits until the controller's informers show what its API servers hold.
func (cl *cluster) settle() {
	cl.w.t.Helper()
	ctx := cl.w.ctx
	err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cl.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		deps, err := cl.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		migs, err := cl.migs.EdgemigrateV1alpha1().Migrations("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		inf := cl.c.kubeInformers
		svcs, err := cl.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		cms, err := cl.kube.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		hpas, err := cl.kube.AutoscalingV2().HorizontalPodAutoscalers("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return sameObjects(cl.c.podIndex, items(pods.Items)) && sameObjects(inf.Apps().V1().Deployments().Informer().GetStore(), items(deps.Items)) &&
			sameObjects(cl.c.migIndexer, items(migs.Items)) && sameObjects(inf.Core().V1().Services().Informer().GetStore(), items(svcs.Items)) &&
			sameObjects(inf.Core().V1().ConfigMaps().Informer().GetStore(), items(cms.Items)) &&
			sameObjects(inf.Autoscaling().V2().HorizontalPodAutoscalers().Informer().GetStore(), items(hpas.Items)), nil
	})
	if err != nil {
		cl.w.t.Fatalf("%s: informers never caught up: %v", cl.id, err)
	}
}

func items[T any](list []T) []any {
	out := make([]any, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}

func sameObjects(store cache.Store, want []any) bool {
	if len(store.ListKeys()) != len(want) {
		return false
	}
	for _, w := range want {
		have, ok, _ := store.Get(w)
		if !ok || !apiequality.Semantic.DeepEqual(have, w) {
			return false
		}
	}
	return true
}

// reconcile runs one round on every cluster: everything open on the ledger and every open
// Migration object is reconciled, and the kubelet and ReplicaSet controller play their part.
func (w *world) reconcile() {
	w.t.Helper()
	for _, cl := range w.clusters {
		cl.playControllers()
		cl.settle()
		cl.c.resync(w.ctx)
		cl.drain()
	}
}

// drain reconciles the queued keys whose time has come, settling the informers after each.
func (cl *cluster) drain() {
	cl.w.t.Helper()
	for range 100 {
		if cl.c.queue.Len() == 0 {
			return
		}
		key, _ := cl.c.queue.Get()
		for range map[bool]int{false: 1, true: 2}[cl.twice] {
			if _, err := cl.c.sync(cl.w.ctx, key); err != nil {
				cl.w.t.Logf("%s: sync %s: %v", cl.id, key, err)
			}
			cl.settle()
		}
		cl.c.queue.Forget(key)
		cl.c.queue.Done(key)
		if cl.crashIfDue() {
			return
		}
	}
	cl.w.t.Fatalf("%s: the queue never drained", cl.id)
}

// until reconciles rounds, a second of fake time apart, until done holds.
func (w *world) until(what string, done func() bool) {
	w.t.Helper()
	for range 60 {
		w.reconcile()
		if done() {
			return
		}
		w.clock.Step(time.Second)
	}
	w.t.Fatalf("never reached: %s\n%s", what, w.dump())
}

// playControllers does what a kubelet and the ReplicaSet controller would: a Deployment
// gets Ready pods up to its replicas (or loses them when scaled down), a Pod becomes Ready.
func (cl *cluster) playControllers() {
	cl.w.t.Helper()
	ctx := cl.w.ctx
	deps, _ := cl.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	for _, d := range deps.Items {
		if cl.noKubelet && d.Annotations[api.AnnotationMigrationID] != "" {
			continue
		}
		sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		pods, _ := cl.kube.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		want := int(ptr.Deref(d.Spec.Replicas, 1))
		for i := len(pods.Items); i < want; i++ {
			p := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
			p.Namespace, p.Name = d.Namespace, fmt.Sprintf("%s-%d", d.Name, i)
			p.Spec.NodeName = cl.id + "-xavier-0"
			// As the webhook annotates a Deployment's pods (the gateway groups them by it).
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			if p.Annotations[api.AnnotationWorkload] == "" {
				p.Annotations[api.AnnotationWorkload] = v1alpha1.KindDeployment + "/" + d.Namespace + "/" + d.Name
			}
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
			if _, err := cl.kube.CoreV1().Pods(d.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				cl.w.t.Fatal(err)
			}
		}
		for i := want; i < len(pods.Items); i++ {
			if err := cl.kube.CoreV1().Pods(d.Namespace).Delete(ctx, pods.Items[i].Name, metav1.DeleteOptions{}); err != nil {
				cl.w.t.Fatal(err)
			}
		}
		r := int32(want)
		if d.Status.ReadyReplicas != r || d.Status.ObservedGeneration != d.Generation {
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: r, ReadyReplicas: r, UpdatedReplicas: r, AvailableReplicas: r}
			if _, err := cl.kube.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, &d, metav1.UpdateOptions{}); err != nil {
				cl.w.t.Fatal(err)
			}
		}
	}
	pods, _ := cl.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		if p.Annotations[api.AnnotationMigrationID] != "" && !podReady(&p) && !cl.noKubelet {
			p.Spec.NodeName = cl.id + "-xavier-0"
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
			if _, err := cl.kube.CoreV1().Pods(p.Namespace).Update(ctx, &p, metav1.UpdateOptions{}); err != nil {
				cl.w.t.Fatal(err)
			}
		}
	}
}

// migrations returns the cluster's Migrations of a role ("" for all), oldest first.
func (cl *cluster) migrations(role v1alpha1.MigrationRole) []v1alpha1.Migration {
	list, err := cl.migs.EdgemigrateV1alpha1().Migrations("").List(cl.w.ctx, metav1.ListOptions{})
	if err != nil {
		cl.w.t.Fatal(err)
	}
	var out []v1alpha1.Migration
	for _, m := range list.Items {
		if role == "" || m.Status.Role == role {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b v1alpha1.Migration) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return out
}

// only returns the single Migration of a role, failing otherwise.
func (cl *cluster) only(role v1alpha1.MigrationRole) v1alpha1.Migration {
	cl.w.t.Helper()
	ms := cl.migrations(role)
	if len(ms) != 1 {
		cl.w.t.Fatalf("%s has %d %s Migrations, want 1\n%s", cl.id, len(ms), role, cl.w.dump())
	}
	return ms[0]
}

// copies counts the Ready copies of a workload that run in the cluster.
func (cl *cluster) copies(kind, name string) int {
	ctx := cl.w.ctx
	switch kind {
	case v1alpha1.KindDeployment:
		d, err := cl.kube.AppsV1().Deployments(testNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || ptr.Deref(d.Spec.Replicas, 1) == 0 {
			return 0
		}
		return 1
	default:
		p, err := cl.kube.CoreV1().Pods(testNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || !podReady(p) {
			return 0
		}
		return 1
	}
}

// ledgerMigration reads a migration from the ledger.
func (w *world) ledgerMigration(id string) *chaincode.Migration {
	w.t.Helper()
	lm, err := w.store.Client("MSP-edge-a").GetMigration(w.ctx, id)
	if err != nil {
		w.t.Fatalf("reading %s from the ledger: %v", id, err)
	}
	return lm
}

// dump describes every cluster's Migrations, for failure messages.
func (w *world) dump() string {
	s := ""
	for _, cl := range w.clusters {
		list, _ := cl.migs.EdgemigrateV1alpha1().Migrations("").List(w.ctx, metav1.ListOptions{})
		for _, m := range list.Items {
			s += fmt.Sprintf("%s %s: role %s phase %s reason %s: %s (destination %q)\n", cl.id, m.Name, m.Status.Role, m.Status.Phase,
				m.Status.Reason, m.Status.Message, m.Status.Destination)
		}
	}
	return s
}

// Workloads as the webhook leaves them.

func deployment(name string, replicas int32, gpuMemory string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, UID: types.UID("uid-" + name), Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					api.AnnotationClientID: "car-1", api.AnnotationGPUMemory: gpuMemory,
					api.AnnotationWorkload: v1alpha1.KindDeployment + "/" + testNamespace + "/" + name}},
				Spec: corev1.PodSpec{SchedulerName: api.SchedulerName, Containers: []corev1.Container{{Name: "model", Image: "registry.example/model:1",
					Ports:          []corev1.ContainerPort{{Name: api.ServicePortName, ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"),
						corev1.ResourceMemory: resource.MustParse("1Gi"), api.ResourceGPU: resource.MustParse("1")},
						Limits: corev1.ResourceList{api.ResourceGPU: resource.MustParse("1")}}}}},
			}},
	}
	inference.Restrict(&d.Spec.Template.Spec) // what a destination hosts
	return d
}

func barePod(name string) *corev1.Pod {
	d := deployment(name, 1, "2Gi")
	p := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
	p.Name, p.Namespace, p.UID = name, testNamespace, types.UID("uid-"+name)
	p.Annotations[api.AnnotationWorkload] = v1alpha1.KindPod + "/" + testNamespace + "/" + name
	p.Spec.NodeName = "edge-a-xavier-0"
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	return p
}

// manual is a user's Migration of a workload.
func manual(kind, name string) *v1alpha1.Migration {
	return &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: "move-" + name, Namespace: testNamespace, UID: types.UID(uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String()),
		CreationTimestamp: metav1.NewTime(time.Now())},
		Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: kind, Name: name}, Reason: v1alpha1.ReasonManual}}
}

// bundleServer serves the bundles of the controller c returns (it changes on a restart).
func bundleServer(c func() *Controller) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET(bundleRoute, func(g *gin.Context) { c().serveBundle(g) })
	return e
}
