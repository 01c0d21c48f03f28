// Package demo runs edgemigrate's two migration scenarios on a fleet of local edge
// clusters, for a person to watch: a connected car drives through every cluster's coverage
// and back while its inference service follows it, then a full cluster offloads a new
// service to a neighbour. The terminal narrates each step and prints every migration's
// timeline; the dashboard draws the same live.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/dashboard"
	"github.com/edgemigrate/edgemigrate/internal/inference"
	"github.com/edgemigrate/edgemigrate/internal/inference/profile"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/locator"
)

const (
	// Namespace holds the demo's services.
	Namespace = "demo"
	// CarID is the simulated connected car.
	CarID = "car-1"
	// CarService is the car's inference service; OffloadService is the one that finds its
	// cluster full; FillerService fills it.
	CarService     = "detector"
	OffloadService = "segmenter"
	FillerService  = "filler"
	// On real containers the offloaded service is the profiler, serving OffloadClient, and
	// GPUHolder holds the source's real node's only GPU.
	ProfilerService = "profiler"
	GPUHolder       = "gpu-holder"
	OffloadClient   = "car-2"

	// nodesPerCluster AGX Xavier boards (32 GiB each) per cluster: enough to show binpacking
	// and offload, few enough for two cores.
	nodesPerCluster = 2
	// stepM and stepEvery: the car's pace, about 500 m/s, so a tour takes seconds.
	stepM     = 150.0
	stepEvery = 300 * time.Millisecond
	// publishEvery is how often the dashboard gets a new State.
	publishEvery = 250 * time.Millisecond
	// migrationTimeout bounds the wait for one migration, including a cold cluster.
	migrationTimeout = 2 * time.Minute
	pollEvery        = 100 * time.Millisecond
)

// Demand of the demo's services: the car's and the offloaded one fit comfortably anywhere
// with room; the filler takes a whole 32 GiB board but the car's 5 GiB.
var (
	carGPUMemory     = resource.MustParse("4Gi")
	offloadGPUMemory = resource.MustParse("8Gi")
	fillerGPUMemory  = resource.MustParse("25Gi")
	serviceMemory    = resource.MustParse("1Gi")
)

// Options configure a demo run.
type Options struct {
	// Clusters is the number of edge clusters, at least 2; default 2.
	Clusters int
	// Duration, when positive, is how long the run lasts: the scenarios are always
	// finished, then the dashboard stays live until Duration has passed since the start.
	// Zero drives the car round the route again and again until ctx ends (Ctrl-C).
	Duration time.Duration
	// Address is where the dashboard listens; default 127.0.0.1:8080.
	Address string
	// Listener, when set, is used for the dashboard instead of listening on Address.
	Listener net.Listener
	// Out receives the narration; default standard output.
	Out io.Writer
	// Binary is the edgemigrate binary the fleet runs; default DefaultBinary.
	Binary string
	// Kwok runs the services simulated on kwok even where real containers could run.
	Kwok bool
}

func (o *Options) defaults() error {
	if o.Clusters == 0 {
		o.Clusters = 2
	}
	if o.Clusters < 2 {
		return fmt.Errorf("demo: --clusters %d: a migration needs at least 2 clusters", o.Clusters)
	}
	if o.Duration < 0 {
		return fmt.Errorf("demo: --duration %s is negative", o.Duration)
	}
	if o.Address == "" {
		o.Address = dashboard.DefaultAddress
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Binary == "" {
		bin, err := DefaultBinary()
		if err != nil {
			return err
		}
		o.Binary = bin
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return fmt.Errorf("demo: the edgemigrate binary the clusters run (`make demo` builds it beside edgemigrate-demo; or pass --binary): %w", err)
	}
	return nil
}

// DefaultBinary is the edgemigrate binary beside the running executable, as `make demo`
// builds them into bin/.
func DefaultBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("demo: finding the edgemigrate binary to run: %w", err)
	}
	return filepath.Join(filepath.Dir(exe), "edgemigrate"), nil
}

// demo is one run.
type demo struct {
	opts  Options
	narr  *narrator
	fleet *localfleet.Fleet
	col   *collector
	// published is col once its caches are ready, for the dashboard's publisher.
	published atomic.Pointer[collector]
	token     string
	// offloadToken is OffloadClient's.
	offloadToken string
	// serving is the cluster that runs the car's service now.
	serving  string
	position geo.Point
	mode     mode
	// sender sends the car's requests, on real containers only.
	sender *car.Car
	// stopSending stops the car's requests; nil before they start.
	stopSending func()
}

// Run runs the demo: it starts the fleet and the dashboard, plays both scenarios and
// prints a summary. It returns nil when both scenarios succeeded (even if ctx ends
// afterwards, as Ctrl-C does), an error otherwise. Every process it started is stopped
// before it returns.
func Run(ctx context.Context, o Options) (err error) {
	if err := o.defaults(); err != nil {
		return err
	}
	began := time.Now()
	d := &demo{opts: o, narr: newNarrator(o.Out)}
	// The demo's own watchers and publisher end before the fleet stops, so that they do
	// not log its going away, and in any case when Run returns.
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()

	d.narr.say("Checking the Kubernetes tools (etcd, kube-apiserver, kwok…)")
	binDir, err := localcluster.FindBinDir()
	if err != nil {
		return fmt.Errorf("run `make tools` first (the first build takes about 10 minutes): %w", err)
	}
	d.narr.detail("found in %s", binDir)
	d.mode = detectMode(ctx, o, binDir)
	d.narr.say("%s", d.mode)

	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Address); err != nil {
			return fmt.Errorf("listening for the dashboard on %s (choose another with --address): %w", o.Address, err)
		}
	}
	url := "http://" + ln.Addr().String()
	srv := dashboard.New(dashboard.Options{Address: ln.Addr().String()})
	dashCtx, stopDashboard := context.WithCancel(context.WithoutCancel(ctx))
	dashDone := make(chan error, 1)
	go func() { dashDone <- srv.Run(dashCtx, ln) }()
	defer func() {
		stopDashboard()
		if derr := <-dashDone; derr != nil {
			klog.ErrorS(derr, "Serving the dashboard")
		}
	}()

	go d.publish(watchCtx, srv)
	d.narr.say("Dashboard: %s (open it now: it fills in as the clusters come up)", url)

	d.token, d.offloadToken = rand.Text(), rand.Text()
	realNodes := 0
	if d.mode.real {
		realNodes = 1
		d.narr.say("Starting %d edge clusters, each with a real node, the ledger, and in each cluster the extender, the schedulers, the webhook and the descheduler (about a minute)", o.Clusters)
	} else {
		d.narr.say("Starting %d edge clusters, the ledger, and in each cluster the extender, the schedulers, the webhook and the descheduler (about 10 s)", o.Clusters)
	}
	d.fleet, err = localfleet.Start(ctx, localfleet.Options{
		RealNodes:    realNodes,
		Clusters:     o.Clusters,
		Binary:       o.Binary,
		BinDir:       binDir,
		Nodes:        demoNodes,
		ClientTokens: map[string]string{CarID: d.token, OffloadClient: d.offloadToken},
		// Snappy: offload after one second of Pending, resync often. Leader election as
		// the descheduler's defaults, not the fleet's short test times: one replica, and
		// on a busy machine a slow lease renewal must not stop the gateway mid-tour.
		DeschedulerArgs: []string{"--offload-after=1s", "--resync-interval=2s",
			"--leader-elect-lease-duration=15s", "--leader-elect-renew-deadline=10s", "--leader-elect-retry-period=2s"},
		Log: d.narr,
	})
	if err != nil {
		return fmt.Errorf("starting the fleet: %w", err)
	}
	defer func() {
		stopWatching()
		d.narr.say("Stopping every process the demo started")
		if err != nil && !errors.Is(err, context.Canceled) {
			d.stopRequests()
			d.printRequests()
			fmt.Fprintln(o.Out, d.fleet.LogTails(15))
		}
		d.fleet.Stop()
	}()
	for _, e := range d.fleet.Edges {
		d.narr.detail("%s at %s, %.1f km coverage, locator %s", e.ID, e.Point(), e.RadiusM/1000, e.LocatorURL)
	}

	l, err := d.fleet.Ledger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	col, err := newCollector(d.fleet, l, d.narr)
	if err != nil {
		return err
	}
	if d.mode.real {
		if d.sender, err = newCar(d.fleet, d.token, d.mode); err != nil {
			return err
		}
		col.sender = d.sender // before its watches start: they read it
	}
	if err := col.start(watchCtx); err != nil {
		return err
	}
	d.col = col
	d.published.Store(col)
	defer d.stopRequests()

	if err := d.scenarios(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before both scenarios finished: %w", err)
		}
		return err
	}
	d.narr.say("Both scenarios succeeded: the car's service followed it, and the full cluster offloaded")

	if o.Duration > 0 {
		if left := time.Until(began.Add(o.Duration)); left > 0 {
			d.narr.say("The dashboard stays live for %s more (--duration %s)", left.Round(time.Second), o.Duration)
			select {
			case <-ctx.Done():
			case <-time.After(left):
			}
		}
	} else {
		d.narr.say("Driving the route again and again until Ctrl-C")
		for ctx.Err() == nil {
			if err := d.tour(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
	d.stopRequests()
	d.printSummary()
	if d.sender != nil {
		if st := d.sender.Stats(); st.Failed > 0 {
			return fmt.Errorf("%d of the car's %d requests failed", st.Failed, st.Sent)
		}
	}
	return nil
}

// startRequests has the car send its requests until stopRequests, on real containers.
func (d *demo) startRequests(ctx context.Context) {
	if d.sender == nil || d.stopSending != nil {
		return
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.sender.Run(runCtx) // only fails without NewRequest or Every, which newCar sets
	}()
	d.stopSending = func() {
		cancel()
		<-done
	}
	d.narr.say("%s sends an MNIST digit to its service every %s through the gateway of the cluster covering it", CarID, requestEvery)
}

// stopRequests stops the car's requests, once every request sent has its answer.
func (d *demo) stopRequests() {
	if d.stopSending != nil {
		d.stopSending()
		d.stopSending = func() {}
	}
}

// scenarios plays client mobility, then offload.
func (d *demo) scenarios(ctx context.Context) error {
	if err := d.deployCarService(ctx); err != nil {
		return fmt.Errorf("scenario 1, client mobility: %w", err)
	}
	d.startRequests(ctx)
	d.narr.say("Scenario 1, client mobility: %s drives through every cluster's coverage and back", CarID)
	if err := d.tour(ctx); err != nil {
		return fmt.Errorf("scenario 1, client mobility: %w", err)
	}
	if err := d.offload(ctx); err != nil {
		return fmt.Errorf("scenario 2, offload: %w", err)
	}
	return nil
}

// deployCarService parks the car at the first site and starts its service there.
func (d *demo) deployCarService(ctx context.Context) error {
	first := d.fleet.Edges[0]
	if err := d.moveCar(ctx, first.Point()); err != nil {
		return err
	}
	d.narr.say("Deploying %s's inference service %s/%s in %s", CarID, Namespace, CarService, first.ID)
	if _, err := first.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s in %s: %w", Namespace, first.ID, err)
	}
	svc := inferenceService(CarService, CarID, 1, carGPUMemory)
	if d.mode.real {
		svc = inference.Deployment(CarService, Namespace, d.mode.classifier, CarID)
		svc.Spec.Template.Spec.NodeSelector, svc.Spec.Template.Spec.Tolerations = localcluster.RealNodePlacement()
		d.narr.detail("the classifier on %s's real node: its requests are answered by a real process", first.ID)
	}
	if err := d.createService(ctx, first, svc); err != nil {
		return err
	}
	if err := d.waitRunning(ctx, first, CarService, 1); err != nil {
		return err
	}
	d.serving = first.ID
	return d.waitLocator(ctx, first, first.ID)
}

// tour drives the car from the first site to the last and back, waiting at each site
// until its service has followed it there.
func (d *demo) tour(ctx context.Context) error {
	var ids []string
	var points []geo.Point
	for _, e := range d.fleet.Edges {
		ids, points = append(ids, e.ID), append(points, e.Point())
	}
	for _, s := range tour(ids, points)[1:] {
		d.narr.say("%s drives from %s's coverage towards %s", CarID, d.serving, s.Cluster)
		since := time.Now()
		for _, p := range legPoints(d.position, s.At, stepM) {
			if err := d.moveCar(ctx, p); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(stepEvery):
			}
		}
		if err := d.waitMigration(ctx, since, CarService, d.serving, s.Cluster); err != nil {
			return err
		}
		d.serving = s.Cluster
		if err := d.waitLocator(ctx, d.edge(s.Cluster), s.Cluster); err != nil {
			return err
		}
	}
	return nil
}

// offload fills the first cluster's boards, then creates a service that cannot fit there.
func (d *demo) offload(ctx context.Context) error {
	first := d.fleet.Edges[0]
	d.narr.say("Scenario 2, offload: filling every Jetson of %s with a %s model", first.ID, fillerGPUMemory.String())
	// The real node (tainted, so only pods that tolerate it go there) is not filled: the
	// filler and the offloaded service are simulated on the kwok boards.
	nodes, err := first.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "!" + localcluster.RealNodeLabel})
	if err != nil {
		return fmt.Errorf("listing the nodes of %s: %w", first.ID, err)
	}
	if d.mode.real && d.mode.profiler == "" {
		d.narr.detail("the filler and %s are simulated on %s's kwok boards: the real node is left as it is (no profiler image)", OffloadService, first.ID)
	}
	filler := inferenceService(FillerService, "", int32(len(nodes.Items)), fillerGPUMemory)
	// One per board.
	filler.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": FillerService}}, TopologyKey: corev1.LabelHostname}}}}
	if err := d.createService(ctx, first, filler); err != nil {
		return err
	}
	if err := d.waitRunning(ctx, first, FillerService, len(nodes.Items)); err != nil {
		return err
	}
	name, svc := OffloadService, inferenceService(OffloadService, "", 1, offloadGPUMemory)
	if d.mode.real && d.mode.profiler != "" {
		if err := d.holdRealGPU(ctx, first); err != nil {
			return err
		}
		name, svc = ProfilerService, d.gpuService(ProfilerService, OffloadClient)
		d.narr.say("%s is full; deploying %s/%s, the real profiler asking for a GPU, there: the real node's only GPU is taken and its kwok boards are full", first.ID, Namespace, name)
	} else {
		d.narr.say("%s is full; deploying %s/%s (%s GPU memory) there: it fits on none of its boards", first.ID, Namespace, name, offloadGPUMemory.String())
	}
	since := time.Now()
	if err := d.createService(ctx, first, svc); err != nil {
		return err
	}
	r, err := d.waitFinished(ctx, since, name, first.ID)
	if err != nil {
		return err
	}
	if r.reason != v1alpha1.ReasonInsufficientResources {
		return fmt.Errorf("%s moved for reason %s, want %s", name, r.reason, v1alpha1.ReasonInsufficientResources)
	}
	dest := d.edge(r.destination)
	if dest == nil {
		return fmt.Errorf("%s offloaded to unknown cluster %q", name, r.destination)
	}
	if err := d.waitRunning(ctx, dest, name, 1); err != nil {
		return err
	}
	d.narr.say("%s runs in %s, offloaded from the full %s", name, dest.ID, first.ID)
	if name == ProfilerService {
		return d.askProfiler(ctx, first, dest)
	}
	return nil
}

// gpuService is an inference service of the profiler image on a real node, asking for
// one GPU slot.
func (d *demo) gpuService(name, client string) *appsv1.Deployment {
	dep := inference.Deployment(name, Namespace, d.mode.profiler, client)
	spec := &dep.Spec.Template.Spec
	spec.NodeSelector, spec.Tolerations = localcluster.RealNodePlacement()
	c := &spec.Containers[0]
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	c.Resources.Limits[api.ResourceGPU] = resource.MustParse("1") // extended resources: the limit is the request
	return dep
}

// holdRealGPU takes the only GPU of e's real node with a pod edgemigrate leaves alone.
func (d *demo) holdRealGPU(ctx context.Context, e *localfleet.Edge) error {
	holder := d.gpuService(GPUHolder, "")
	tmpl := &holder.Spec.Template
	delete(tmpl.Annotations, api.AnnotationClientID)
	tmpl.Annotations[api.AnnotationMigrate] = "false"
	if err := d.createService(ctx, e, holder); err != nil {
		return err
	}
	if err := d.waitRunning(ctx, e, GPUHolder, 1); err != nil {
		return err
	}
	d.narr.detail("%s holds the only GPU of %s's real node", GPUHolder, e.ID)
	return nil
}

// askProfiler sends one telemetry window for OffloadClient to the full cluster's gateway
// and says who answered: the gateway redirects it to the neighbour now running the profiler.
func (d *demo) askProfiler(ctx context.Context, full, dest *localfleet.Edge) error {
	c, err := car.New(car.Options{ID: OffloadClient, Token: d.offloadToken, Clusters: carClusters(d.fleet), HTTPClient: d.fleet.CarClient(car.DefaultTimeout, false)})
	if err != nil {
		return fmt.Errorf("creating %s: %w", OffloadClient, err)
	}
	// Parked at the full cluster's site, not reported: its service moved for room, not for it.
	c.SetPosition(full.Point())
	body, err := json.Marshal(profile.Request{Samples: profile.Window(1, profile.Moderate)})
	if err != nil {
		return fmt.Errorf("encoding a telemetry window: %w", err)
	}
	req := car.Request{Method: "POST", Path: "/infer", ContentType: "application/json", Body: body}
	res := c.Do(ctx, req)
	if !res.OK() || res.Cluster != dest.ID {
		return fmt.Errorf("%s's profiler request to %s: %s (answered by %q, want %s)", OffloadClient, full.ID, res.Err, res.Cluster, dest.ID)
	}
	var answer struct {
		Profile string  `json:"profile"`
		Score   float64 `json:"score"`
	}
	_ = json.Unmarshal(res.Body, &answer) // the figures are only narrated
	d.narr.say("%s sent a telemetry window to %s's gateway: answered by %s in %s (via %s) in %s: %s driving, score %.0f",
		OffloadClient, res.Via[0], res.Pod, res.Cluster, strings.Join(res.Via, " → "), formatDuration(res.Latency), answer.Profile, answer.Score)
	return nil
}

// waitMigration waits for the migration of service from one cluster to another, started
// after since, and fails if it ended otherwise.
func (d *demo) waitMigration(ctx context.Context, since time.Time, service, from, to string) error {
	r, err := d.waitFinished(ctx, since, service, from)
	if err != nil {
		return err
	}
	if r.destination != to {
		return fmt.Errorf("the migration of %s from %s went to %q, want %s", service, from, r.destination, to)
	}
	return nil
}

// waitFinished waits for a finished source migration of service in cluster from, and
// fails if it did not complete.
func (d *demo) waitFinished(ctx context.Context, since time.Time, service, from string) (record, error) {
	var r record
	err := wait.PollUntilContextTimeout(ctx, pollEvery, migrationTimeout, true, func(context.Context) (bool, error) {
		var ok bool
		r, ok = d.col.finished(since.Add(-time.Second), func(r *record) bool {
			return r.name == service && r.namespace == Namespace && r.source == from
		})
		return ok, nil
	})
	if err != nil {
		return r, fmt.Errorf("waiting for %s to migrate away from %s: %w", service, from, err)
	}
	if r.phase != v1alpha1.PhaseCompleted {
		return r, fmt.Errorf("the migration of %s from %s ended %s: %s %s", service, from, r.phase, r.statusWhy, r.message)
	}
	return r, nil
}

// moveCar reports the car's position to every cluster's locator, as a car does to the
// road-side units it passes, then asks the nearest where its service runs.
func (d *demo) moveCar(ctx context.Context, p geo.Point) error {
	d.position = p
	d.col.moveCar(CarID, p)
	if d.sender != nil {
		d.sender.SetPosition(p)
	}
	nearest := d.fleet.Edges[0]
	for _, e := range d.fleet.Edges {
		if err := locator.NewClient(e.LocatorURL, d.fleet.CarClient(10*time.Second, false)).ReportLocation(ctx, CarID, d.token, p); err != nil {
			return fmt.Errorf("reporting %s's position to %s: %w", CarID, e.ID, err)
		}
		if geo.Distance(e.Point(), p) < geo.Distance(nearest.Point(), p) {
			nearest = e
		}
	}
	d.askLocator(ctx, nearest)
	return nil
}

// askLocator asks a cluster's locator where the car's service runs and records the answer.
func (d *demo) askLocator(ctx context.Context, e *localfleet.Edge) string {
	began := time.Now()
	route, err := locator.NewClient(e.LocatorURL, d.fleet.CarClient(10*time.Second, false)).Endpoint(ctx, CarID)
	d.col.locatorAnswer(route.Cluster, time.Since(began), err)
	return route.Cluster
}

// waitLocator waits until the locator of e sends the car to cluster want.
func (d *demo) waitLocator(ctx context.Context, e *localfleet.Edge, want string) error {
	var got string
	err := wait.PollUntilContextTimeout(ctx, pollEvery, migrationTimeout, true, func(ctx context.Context) (bool, error) {
		got = d.askLocator(ctx, e)
		return got == want, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the locator of %s to send %s to %s (it says %q): %w", e.ID, CarID, want, got, err)
	}
	d.narr.detail("the locator of %s sends %s to %s", e.ID, CarID, want)
	return nil
}

// waitRunning waits until n pods of service run in cluster e, and are Ready on real
// containers (the gateway sends requests to Ready pods only).
func (d *demo) waitRunning(ctx context.Context, e *localfleet.Edge, service string, n int) error {
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, migrationTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := e.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + service})
		if err != nil {
			return false, nil // the API server may be busy: try again
		}
		running := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && (!d.mode.real || podReady(&p)) {
				running++
			}
		}
		return running == n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d pods of %s to run in %s: %w", n, service, e.ID, err)
	}
	return nil
}

func (d *demo) createService(ctx context.Context, e *localfleet.Edge, dep *appsv1.Deployment) error {
	if _, err := e.Client.AppsV1().Deployments(Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Deployment %s/%s in %s: %w", Namespace, dep.Name, e.ID, err)
	}
	return nil
}

func (d *demo) edge(id string) *localfleet.Edge {
	for _, e := range d.fleet.Edges {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// publish sends the dashboard a new State every publishEvery until ctx ends.
func (d *demo) publish(ctx context.Context, srv *dashboard.Server) {
	tick := time.NewTicker(publishEvery)
	defer tick.Stop()
	for {
		if col := d.published.Load(); col != nil {
			srv.Publish(col.state(time.Now()))
		} else {
			srv.Publish(dashboard.State{Time: time.Now(), Log: d.narr.lines()})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (d *demo) printSummary() {
	d.narr.say("Summary")
	for _, line := range d.col.summary().lines() {
		d.narr.detail("%s", line)
	}
	d.printRequests()
}

// maxFailureLines caps the failed requests listed one by one.
const maxFailureLines = 20

// printRequests prints the car's request figures and its first failed requests.
func (d *demo) printRequests() {
	if d.sender == nil {
		if !d.mode.real {
			d.narr.detail("requests: none sent (the service is simulated on kwok)")
		}
		return
	}
	st := d.sender.Stats()
	for _, line := range st.Summary() {
		d.narr.detail("car %s", line)
	}
	listed := 0
	for _, r := range d.sender.Results() {
		if r.OK() {
			continue
		}
		if listed++; listed > maxFailureLines {
			d.narr.detail("… and %d more failed requests", st.Failed-maxFailureLines)
			break
		}
		d.narr.detail("FAILED request #%d at %s: %s (via %s)", r.Seq, r.Start.Format(time.TimeOnly+".000"), r.Err, strings.Join(r.Via, " → "))
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// inferenceService is an opted-in inference Deployment, bound to a car when car is set.
func inferenceService(name, car string, replicas int32, gpuMemory resource.Quantity) *appsv1.Deployment {
	annotations := map[string]string{api.AnnotationMigrate: "true", api.AnnotationGPUMemory: gpuMemory.String()}
	if car != "" {
		annotations[api.AnnotationClientID] = car
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "infer", Image: "nvcr.io/nvidia/l4t-ml:r35.2.1-py3",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: serviceMemory}},
				}}},
			},
		},
	}
	inference.Restrict(&d.Spec.Template.Spec) // what a destination hosts
	return d
}

// demoNodes are cluster i's boards.
func demoNodes(i int) []*corev1.Node {
	var nodes []*corev1.Node
	for j := range nodesPerCluster {
		nodes = append(nodes, localcluster.JetsonNode(fmt.Sprintf("xavier-%d-%d", i, j), localcluster.AGXXavier, localcluster.NodeOptions{}))
	}
	return nodes
}
