package chaos

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/internal/chaos"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/inference"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

const (
	// carEvery is each car's request interval.
	carEvery = 100 * time.Millisecond
	// reportEvery is how often a car reports its position again, as it does to the road
	// side units it passes: a report lost to a fault is made good.
	reportEvery = 2 * time.Second
	// appearTimeout bounds the wait for the migration a move triggers, moveTimeout the
	// wait for it to end.
	appearTimeout = 45 * time.Second
	moveTimeout   = 90 * time.Second
	// setupTimeout bounds each wait of the setup.
	setupTimeout = 3 * time.Minute
)

// offloadEdge is where the offloads start: its real node's only GPU is taken.
const offloadEdge = 0

// run is one chaos run's services, cars and moves, in one namespace of every cluster.
type run struct {
	t   testing.TB
	ctx context.Context
	f   *localfleet.Fleet
	cfg config
	ns  string
	w   *watch
	img string
	// began and deadline bound the driving; the k-th move starts k paces after began.
	began, deadline time.Time
	pace            time.Duration
	moves           atomic.Int64

	mu       sync.Mutex
	cars     []*driver
	services []string
	outcomes map[string]int
	issues   []string
}

// driver is one car and its service.
type driver struct {
	id, svc string
	car     *car.Car
	// at is the index of the edge the car stands at.
	at     atomic.Int64
	rng    *rand.Rand
	cancel context.CancelFunc
	done   chan struct{}
}

func newRun(ctx context.Context, t testing.TB, f *localfleet.Fleet, cfg config) *run {
	r := &run{t: t, ctx: ctx, f: f, cfg: cfg, ns: "chaos-" + utilrand.String(6), outcomes: map[string]int{}}
	for _, e := range f.Edges {
		if _, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace %s in %s: %v", r.ns, e.ID, err)
		}
	}
	t.Cleanup(func() {
		for _, e := range f.Edges {
			_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), r.ns, metav1.DeleteOptions{})
		}
	})
	w, err := startWatch(ctx, f, r.ns)
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	r.img = fleettest.Image(t, images.TestService)
	return r
}

// service is client's test service on real nodes.
func (r *run) service(name, client string) *appsv1.Deployment {
	d := inference.Deployment(name, r.ns, r.img, client)
	d.Spec.Template.Spec.NodeSelector, d.Spec.Template.Spec.Tolerations = localcluster.RealNodePlacement()
	return d
}

func (r *run) waitFor(what string, timeout time.Duration, cond func() bool) bool {
	err := wait.PollUntilContextTimeout(r.ctx, 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		r.t.Logf("waiting for %s: %v", what, err)
		return false
	}
	return true
}

// only is whether app serves from exactly one pod, at cluster.
func only(serving map[string]int, cluster string) bool {
	return len(serving) == 1 && serving[cluster] == 1
}

// newCar creates car id, placed at edge i (its position reported there).
func (r *run) newCar(id, svc string, i int) (*driver, error) {
	var clusters []car.Cluster
	for _, e := range r.f.Edges {
		clusters = append(clusters, car.Cluster{ID: e.ID, Gateway: e.LocatorURL, Site: e.Point(), RadiusM: e.RadiusM})
	}
	c, err := car.New(car.Options{ID: id, Token: tokens[id], Clusters: clusters, Every: carEvery,
		NewRequest: func(int) car.Request { return car.Request{Method: http.MethodGet, Path: "/"} },
		HTTPClient: r.f.CarClient(car.DefaultTimeout, false)})
	if err != nil {
		return nil, err
	}
	d := &driver{id: id, svc: svc, car: c, rng: rand.New(rand.NewPCG(r.cfg.seed, uint64(len(r.cars))+1))}
	d.at.Store(int64(i))
	// The service counts from now on, whether its car can be placed or not.
	r.mu.Lock()
	r.services = append(r.services, svc)
	r.mu.Unlock()
	if !r.waitFor(id+" placed at "+r.f.Edges[i].ID, setupTimeout, func() bool {
		err = c.MoveTo(r.ctx, r.f.Edges[i].Point())
		return err == nil
	}) {
		return nil, fmt.Errorf("placing %s at %s: %w", id, r.f.Edges[i].ID, err)
	}
	r.mu.Lock()
	r.cars = append(r.cars, d)
	r.mu.Unlock()
	return d, nil
}

// start sends the car's requests, and reports its position every reportEvery, until
// stopCars.
func (r *run) start(d *driver) {
	ctx, cancel := context.WithCancel(r.ctx)
	d.cancel, d.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.car.Run(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(reportEvery):
			}
			_ = d.car.MoveTo(ctx, r.f.Edges[d.at.Load()].Point())
		}
	})
	go func() { wg.Wait(); close(d.done) }()
}

// setup creates each mobility car's service at a site of its own and the car there, and
// the GPU filler of the offloads' edge, and starts the cars once their services serve.
func (r *run) setup() {
	r.t.Helper()
	for _, e := range r.f.Edges {
		var err error
		if !r.waitFor(e.ID+" answering", setupTimeout, func() bool { err = answering(r.ctx, r.f, e); return err == nil }) {
			r.t.Fatalf("%s's public endpoint never answered: %v", e.ID, err)
		}
	}
	var drivers []*driver
	for i := range r.cfg.mobilityCars {
		id := mobilityCar(i)
		at := i % len(r.f.Edges)
		svc := "svc-" + id
		if _, err := r.f.Edges[at].Client.AppsV1().Deployments(r.ns).Create(r.ctx, r.service(svc, id), metav1.CreateOptions{}); err != nil {
			r.t.Fatalf("creating %s at %s: %v", svc, r.f.Edges[at].ID, err)
		}
		d, err := r.newCar(id, svc, at)
		if err != nil {
			r.t.Fatal(err)
		}
		drivers = append(drivers, d)
	}
	for _, d := range drivers {
		at := r.f.Edges[d.at.Load()].ID
		if !r.waitFor(d.svc+" serving at "+at, setupTimeout, func() bool { return only(r.w.serving(d.svc), at) }) {
			r.t.Fatalf("%s never served at %s\n%s", d.svc, at, r.state())
		}
		r.answered(d)
		r.start(d)
	}
	if r.cfg.offloads > 0 {
		r.fillGPU()
	}
	r.t.Logf("setup: %d services serving, their cars sending every %s", len(drivers), carEvery)
}

// answered waits until the gateway of the car's cluster answers its service. The
// gateway's informers lag the run's own: a first request sent before would fail for that
// lag alone, outside any fault.
func (r *run) answered(d *driver) {
	r.t.Helper()
	e := r.f.Edges[d.at.Load()]
	client := r.f.CarClient(car.DefaultTimeout, false)
	status := 0
	if !r.waitFor(d.svc+" answering through "+e.ID+"'s gateway", setupTimeout, func() bool {
		req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, e.LocatorURL+"/v1/clients/"+d.id+"/service/", nil)
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", "Bearer "+tokens[d.id])
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status/100 == 2
	}) {
		r.t.Fatalf("%s never answered through %s's gateway (last status %d)\n%s", d.svc, e.ID, status, r.state())
	}
}

// gpu is one nvidia.com/gpu, what the real nodes have.
var gpu = corev1.ResourceList{corev1.ResourceName(api.ResourceGPU): resource.MustParse("1")}

// fillGPU holds the GPU of the offload edge's real node, as test/realmigration's offload
// test does.
func (r *run) fillGPU() {
	r.t.Helper()
	e := r.f.Edges[offloadEdge]
	filler := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-filler", Namespace: r.ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "hold", Image: fleettest.Image(r.t, images.Pause),
			Resources: corev1.ResourceRequirements{Requests: gpu, Limits: gpu}}}},
	}
	filler.Spec.NodeSelector, filler.Spec.Tolerations = localcluster.RealNodePlacement()
	if _, err := e.Client.CoreV1().Pods(r.ns).Create(r.ctx, filler, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	if !r.waitFor("the GPU filler running at "+e.ID, setupTimeout, func() bool {
		p, err := e.Client.CoreV1().Pods(r.ns).Get(r.ctx, filler.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	}) {
		r.t.Fatalf("the GPU filler never ran\n%s", r.state())
	}
}

// claim takes one of the run's moves, false once they are all taken or the driving is
// over. The k-th move waits until k paces after the start: a short run's moves spread over
// the faults it must meet.
func (r *run) claim() bool {
	if time.Now().After(r.deadline) || r.ctx.Err() != nil {
		return false
	}
	k := r.moves.Add(1)
	if k > int64(r.cfg.migrations) {
		return false
	}
	select {
	case <-time.After(time.Until(r.began.Add(time.Duration(k-1) * r.pace))):
	case <-r.ctx.Done():
		return false
	}
	return true
}

// drive moves the cars, and creates the offloads, until the run's migrations are all
// triggered and ended or its duration is over; the moves spread over span at least.
func (r *run) drive(span time.Duration) {
	r.began = time.Now()
	r.deadline = r.began.Add(r.cfg.duration)
	r.pace = span / time.Duration(r.cfg.migrations)
	var wg sync.WaitGroup
	r.mu.Lock()
	cars := slices.Clone(r.cars)
	r.mu.Unlock()
	for _, d := range cars {
		wg.Go(func() { r.driveCar(d) })
	}
	wg.Go(r.offload)
	wg.Wait()
}

// driveCar moves d to another site, drawn from its seeded stream, waits until the
// migration this triggers ends, dwells, and again.
func (r *run) driveCar(d *driver) {
	for r.claim() {
		from := int(d.at.Load())
		to := (from + 1 + d.rng.IntN(len(r.f.Edges)-1)) % len(r.f.Edges)
		dest := r.f.Edges[to].ID
		before := r.w.serving(d.svc)
		trigger := time.Now()
		d.at.Store(int64(to))
		if err := d.car.MoveTo(r.ctx, r.f.Edges[to].Point()); err != nil {
			r.t.Logf("%s moving to %s: %v (it reports again in %s)", d.id, dest, err, reportEvery)
		}
		outcome := "already there"
		if !only(before, dest) {
			outcome = r.awaitMigration(d.svc, trigger)
		}
		r.outcome(outcome)
		r.t.Logf("move %s → %s (%s): %s after %s", d.id, dest, d.svc, outcome, time.Since(trigger).Round(time.Millisecond))
		dwell := time.Second + time.Duration(d.rng.Int64N(int64(3*time.Second)))
		select {
		case <-time.After(dwell):
		case <-r.ctx.Done():
			return
		}
	}
}

// awaitMigration waits until a source migration of svc seen since trigger has ended and
// none is open, and returns its phase; or says none came. A move's migration comes within
// the trigger's retry after a failure (30 s) and a resync; it ends within
// --migration-timeout.
func (r *run) awaitMigration(svc string, trigger time.Time) string {
	if !r.waitFor("a migration of "+svc, appearTimeout, func() bool { return len(r.w.since(svc, trigger)) > 0 }) {
		return "no migration"
	}
	var last chaos.Migration
	if !r.waitFor("the migration of "+svc+" to end", moveTimeout, func() bool {
		ms := r.w.since(svc, trigger)
		for _, m := range ms {
			if !final(m.Phase) {
				return false
			}
		}
		last = ms[len(ms)-1]
		return true
	}) {
		return "migration not ended"
	}
	return strings.ToLower(string(last.Phase))
}

func final(p v1alpha1.MigrationPhase) bool {
	return p == v1alpha1.PhaseCompleted || p == v1alpha1.PhaseAborted || p == v1alpha1.PhaseFailed
}

func (r *run) outcome(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[what]++
}

// offload creates, once its share of the moves is taken, each offload service at the
// edge whose GPU is held, waits until it serves elsewhere and starts its car at that
// edge, which reaches it through the edge's gateway.
func (r *run) offload() {
	e := r.f.Edges[offloadEdge]
	for k := range r.cfg.offloads {
		share := int64((k + 1) * r.cfg.migrations / (r.cfg.offloads + 1))
		for r.moves.Load() < share && time.Now().Before(r.deadline) && r.ctx.Err() == nil {
			time.Sleep(250 * time.Millisecond)
		}
		if !r.claim() {
			return
		}
		id := offloadCar(k)
		svc := "svc-" + id
		dep := r.service(svc, id)
		res := &dep.Spec.Template.Spec.Containers[0].Resources
		res.Requests, res.Limits = withGPU(res.Requests), withGPU(res.Limits)
		trigger := time.Now()
		// Its API server may be the one down.
		var err error
		if !r.waitFor("creating "+svc+" at "+e.ID, setupTimeout, func() bool {
			_, err = e.Client.AppsV1().Deployments(r.ns).Create(r.ctx, dep, metav1.CreateOptions{})
			return err == nil || apierrors.IsAlreadyExists(err)
		}) {
			r.problem("creating the offload %s at %s: %v", svc, e.ID, err)
			continue
		}
		// Its car starts, as in test/realmigration, once the offload has Completed: until
		// then the edge's gateway has no route for it. A failed offload is tried again (its
		// pod is still unschedulable), so the wait is the setup's.
		outcome := "not completed"
		completed := r.waitFor("the offload of "+svc+" Completed", setupTimeout, func() bool {
			ms := r.w.since(svc, trigger)
			if len(ms) > 0 {
				outcome = strings.ToLower(string(ms[len(ms)-1].Phase))
			}
			return slices.ContainsFunc(ms, func(m chaos.Migration) bool { return m.Phase == v1alpha1.PhaseCompleted })
		})
		if completed {
			outcome = "completed"
		}
		r.outcome(outcome)
		r.t.Logf("offload %s from %s: %s after %s", svc, e.ID, outcome, time.Since(trigger).Round(time.Millisecond))
		if !completed || !r.waitFor(svc+" serving", setupTimeout, func() bool {
			n := 0
			for _, c := range r.w.serving(svc) {
				n += c
			}
			return n == 1
		}) {
			r.mu.Lock()
			r.services = append(r.services, svc) // lost, unless it serves by the end
			r.mu.Unlock()
			continue
		}
		d, err := r.newCar(id, svc, offloadEdge)
		if err != nil {
			r.problem("offload %s: %v", svc, err)
			continue
		}
		r.start(d)
	}
}

func withGPU(l corev1.ResourceList) corev1.ResourceList {
	out := l.DeepCopy()
	if out == nil {
		out = corev1.ResourceList{}
	}
	maps.Copy(out, gpu)
	return out
}

// settle waits until every cluster answers, every migration has ended and every service
// has one serving copy, and says how long that took.
func (r *run) settle() string {
	began := time.Now()
	pending := "nothing checked yet"
	ok := r.waitFor("the fleet to settle", r.cfg.settle, func() bool {
		for _, e := range r.f.Edges {
			if err := answering(r.ctx, r.f, e); err != nil {
				pending = err.Error()
				return false
			}
		}
		if n := r.w.open(); n > 0 {
			pending = fmt.Sprintf("%d migrations open", n)
			return false
		}
		serving, err := r.copies()
		if err != nil {
			pending = err.Error()
			return false
		}
		for svc, where := range serving {
			n := 0
			for _, c := range where {
				n += c
			}
			if n != 1 {
				pending = fmt.Sprintf("%s serving from %v", svc, where)
				return false
			}
		}
		return true
	})
	if ok {
		return fmt.Sprintf("settled %s after the faults stopped", time.Since(began).Round(100*time.Millisecond))
	}
	return fmt.Sprintf("not settled within %s after the faults stopped: %s", r.cfg.settle, pending)
}

// stopCars stops every car and returns its results.
func (r *run) stopCars() map[string][]car.Result {
	r.mu.Lock()
	cars := slices.Clone(r.cars)
	r.mu.Unlock()
	out := map[string][]car.Result{}
	for _, d := range cars {
		if d.cancel != nil {
			d.cancel()
			<-d.done
		}
		out[d.id] = d.car.Results()
	}
	return out
}

// copies counts, by listing every cluster's pods, each service's serving pods by cluster.
func (r *run) copies() (map[string]map[string]int, error) {
	serving, _, err := r.census()
	return serving, err
}

// census counts each service's serving pods by cluster, and names those serving without
// the webhook's marks (admitted while it was down: failurePolicy Ignore), which no trigger
// can move.
func (r *run) census() (copies map[string]map[string]int, unmarked []string, err error) {
	r.mu.Lock()
	services := slices.Clone(r.services)
	r.mu.Unlock()
	out := map[string]map[string]int{}
	for _, svc := range services {
		out[r.ns+"/"+svc] = map[string]int{}
	}
	for _, e := range r.f.Edges {
		pods, err := e.Client.CoreV1().Pods(r.ns).List(r.ctx, metav1.ListOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("listing pods in %s: %w", e.ID, err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if where, ok := out[r.ns+"/"+p.Labels["app"]]; ok && fleettest.Serving(p) {
				where[e.ID]++
				if p.Annotations[api.AnnotationWorkload] == "" {
					unmarked = append(unmarked, e.ID+"/"+p.Name)
				}
			}
		}
	}
	return out, unmarked, nil
}

// movesLine says how the moves ended.
func (r *run) movesLine() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.outcomes)) {
		n += r.outcomes[k]
		parts = append(parts, fmt.Sprintf("%d %s", r.outcomes[k], k))
	}
	return fmt.Sprintf("moves (car moves and offloads): %d of %d (%s)", n, r.cfg.migrations, strings.Join(parts, ", "))
}

func (r *run) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.t.Log(msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issues = append(r.issues, msg)
}

func (r *run) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.issues)
}

// state describes the fleet's migrations and pods in the run's namespace.
func (r *run) state() string {
	return fleettest.State(context.Background(), r.f, r.ns)
}
