// Package schedbench measures a real kube-scheduler's throughput on many fake Jetson nodes
// in three phases of the same run on the same cluster: the stock kube-scheduler without the
// extender, with it, and the edgemigrate-scheduler build (plugin mode); it reports each as a
// ratio to the first. It is a benchmark only: run it with `make bench-scheduler`.
package schedbench

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/extender"
	"github.com/edgemigrate/edgemigrate/extender/schedtest"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/manifests"
)

var shared clustertest.Shared

// TestMain starts the cluster only when the benchmark is selected: `go test ./...` and
// `go test -bench . -skip SchedulerThroughput ./...` have nothing to do here.
func TestMain(m *testing.M) {
	flag.Parse()
	if !selected("test.bench", false) || selected("test.skip", true) {
		os.Exit(m.Run())
	}
	binDir, err := linkedBinDir()
	if err != nil {
		shared.Err = err // Require skips or fails with it
		os.Exit(m.Run())
	}
	clustertest.Main(m, 1, localcluster.Options{Name: "schedbench", BinDir: binDir}, &shared)
}

// Where the pinned binaries are, and a directory linking them whose kube-scheduler each
// phase points at the build it measures.
var pinnedBinDir, phaseBinDir string

func linkedBinDir() (string, error) {
	// Checked now, so that a missing build skips (or fails) before any cluster starts.
	dir, bin, err := localcluster.TempBinDir(localcluster.SchedulerBinary)
	if err != nil {
		return "", err
	}
	pinnedBinDir, phaseBinDir = bin, dir
	return dir, localcluster.LinkBinDir(dir, bin, "kube-scheduler")
}

// selected reports whether the regular expression given to a -test flag names this
// package's benchmark; an empty flag names nothing. A bad expression counts as naming it
// for -bench and not for -skip, so that the testing package gets to report it.
func selected(flagName string, skip bool) bool {
	f := flag.Lookup(flagName)
	if f == nil || f.Value.String() == "" {
		return false
	}
	re, err := regexp.Compile(strings.SplitN(f.Value.String(), "/", 2)[0])
	if err != nil {
		return !skip // let the testing package report the bad expression
	}
	return re.MatchString("BenchmarkSchedulerThroughput")
}

const (
	nodeCount = 1000
	podCount  = 3000
)

// rounds of the three phases, interleaved so that the machine's load drifts across all.
const rounds = 2

// phase is one way of scheduling: a kube-scheduler build and its configuration.
type phase struct {
	name      string
	scheduler string // file in the bin directory
	config    *schedconfig.KubeSchedulerConfiguration
	rates     []float64
}

// BenchmarkSchedulerThroughput creates 1,000 kwok Jetson nodes, then, rounds times, for each
// phase a burst of 3,000 pending pods for edgemigrate-scheduler, and starts that phase's
// scheduler: the stock kube-scheduler configured as manifests/scheduler-config.yaml without
// its extender (the baseline), the same with the extender in this process, and
// edgemigrate-scheduler configured as the chart's plugin mode (schedtest.PluginConfig). Throughput is
// pods bound per second between the first and the last binding; each phase reports its
// mean over the rounds and its ratio to the baseline's.
func BenchmarkSchedulerThroughput(b *testing.B) {
	c := shared.Require(b)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	cfg := extender.ClientConfig(c.Config)
	cfg.QPS, cfg.Burst = 500, 1000 // creating thousands of nodes and pods
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	addNodes(ctx, b, c)

	manifest, err := readManifest()
	if err != nil {
		b.Fatal(err)
	}
	baselineConfig := manifest.DeepCopy()
	baselineConfig.Extenders = nil

	reg := serve.NewRegistry()
	ext, err := extender.New(client, extender.Options{}, reg)
	if err != nil {
		b.Fatal(err)
	}
	if err := ext.Start(ctx); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = serve.Serve(ctx, ln, ext.Handler(reg), nil) }()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return ext.Ready() == nil, nil
	}); err != nil {
		b.Fatalf("extender not ready: %v", err)
	}
	withExtender := manifest.DeepCopy()
	withExtender.Extenders[0].URLPrefix = "http://" + ln.Addr().String()

	pluginConfig, err := schedtest.PluginConfig()
	if err != nil {
		b.Fatal(err)
	}
	pluginConfig.ClientConnection = manifest.ClientConnection

	phases := []*phase{
		{name: "baseline", scheduler: "kube-scheduler", config: baselineConfig},
		{name: "extender", scheduler: "kube-scheduler", config: withExtender},
		{name: "plugin", scheduler: localcluster.SchedulerBinary, config: pluginConfig},
	}
	for round := range rounds {
		for _, p := range phases {
			if err := localcluster.LinkBinDir(phaseBinDir, pinnedBinDir, p.scheduler); err != nil {
				b.Fatal(err)
			}
			p.rates = append(p.rates, run(ctx, b, c, client, fmt.Sprintf("%s-%d", p.name, round), p.config))
		}
	}

	reportLatency(b, reg)
	baseline := mean(phases[0].rates)
	line := fmt.Sprintf("scheduler throughput on %d nodes, %d pods, %d rounds:", nodeCount, podCount, rounds)
	for _, p := range phases {
		rate := mean(p.rates)
		b.ReportMetric(rate, "pods/s-"+p.name)
		if p != phases[0] {
			b.ReportMetric(rate/baseline, "ratio-"+p.name)
		}
		line += fmt.Sprintf(" %s %.0f pods/s (%.2fx, rounds %s);", p.name, rate, rate/baseline, formatRates(p.rates))
	}
	fmt.Println(strings.TrimSuffix(line, ";"))
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func formatRates(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, "/")
}

// reportLatency logs the extender's mean time per call and the nodes per call, from its
// metrics: how much of each scheduling cycle the extender itself takes.
func reportLatency(b *testing.B, reg *prometheus.Registry) {
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	calls, nodes := map[string]uint64{}, map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			verb := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "verb" {
					verb = l.GetValue()
				}
			}
			switch f.GetName() {
			case "edgemigrate_extender_request_duration_seconds":
				h := m.GetHistogram()
				calls[verb] = h.GetSampleCount()
				if h.GetSampleCount() > 0 {
					b.Logf("extender %s: %d calls, mean %s", verb, h.GetSampleCount(),
						time.Duration(h.GetSampleSum()/float64(h.GetSampleCount())*float64(time.Second)).Round(time.Microsecond))
				}
			case "edgemigrate_extender_nodes_considered_total":
				nodes[verb] = m.GetCounter().GetValue()
			}
		}
	}
	for verb, n := range nodes {
		if calls[verb] > 0 {
			b.Logf("extender %s: %.0f nodes per call", verb, n/float64(calls[verb]))
		}
	}
}

func readManifest() (*schedconfig.KubeSchedulerConfiguration, error) {
	cfg, err := manifests.SchedulerConfig()
	if err != nil {
		return nil, err
	}
	// The default client rate (50 requests/s) would measure the rate limiter, not the
	// scheduler; every phase gets the same.
	cfg.ClientConnection.QPS, cfg.ClientConnection.Burst = 1000, 2000
	// One scheduler: no lease to wait for (the manifest's lives in the chart's release
	// namespace, which this cluster lacks).
	cfg.LeaderElection.LeaderElect = ptr.To(false)
	return cfg, nil
}

func addNodes(ctx context.Context, b *testing.B, c *localcluster.Cluster) {
	b.Helper()
	models := []localcluster.JetsonModel{localcluster.AGXXavier, localcluster.AGXOrin, localcluster.OrinNX}
	nodes := make([]*corev1.Node, nodeCount)
	for i := range nodes {
		nodes[i] = localcluster.JetsonNode(fmt.Sprintf("jetson-%04d", i), models[i%len(models)], localcluster.NodeOptions{GPUReplicas: 1 + i%4})
	}
	if err := c.AddNodes(ctx, nodes...); err != nil {
		b.Fatal(err)
	}
}

// run creates podCount pending pods in a fresh namespace, starts the scheduler with cfg,
// waits until all are bound and returns pods bound per second, then stops the scheduler
// and deletes the pods.
func run(ctx context.Context, b *testing.B, c *localcluster.Cluster, client kubernetes.Interface, name string, cfg *schedconfig.KubeSchedulerConfiguration) float64 {
	b.Helper()
	ns, err := c.Namespace(ctx, "bench-"+name, nil)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed atomic.Value
	for i := range podCount {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := client.CoreV1().Pods(ns).Create(ctx, benchPod(ns, i), metav1.CreateOptions{}); err != nil {
				failed.Store(err)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("creating pods: %v", err)
	}

	// Bindings as a watch sees them: first and last, not sampled by polling.
	var bound atomic.Int64
	var first, last atomic.Int64
	seen := sync.Map{}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		if _, dup := seen.LoadOrStore(p.Name, true); dup {
			return
		}
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		last.Store(now)
		bound.Add(1)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, obj any) { onPod(obj) }}); err != nil {
		b.Fatal(err)
	}
	informerCtx, stopInformer := context.WithCancel(ctx)
	defer stopInformer()
	factory.Start(informerCtx.Done())
	toolscache.WaitForCacheSync(informerCtx.Done(), inf.HasSynced)

	b.ResetTimer()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.StartScheduler(startCtx, cfg); err != nil {
		b.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Minute, true, func(context.Context) (bool, error) {
		return bound.Load() == podCount, nil
	})
	b.StopTimer()
	c.StopScheduler()
	if err != nil {
		b.Fatalf("%s: %d of %d pods bound: %v", name, bound.Load(), podCount, err)
	}
	elapsed := time.Duration(last.Load() - first.Load())
	rate := float64(podCount-1) / elapsed.Seconds()
	b.Logf("%s: %d pods bound in %s: %.0f pods/s", name, podCount, elapsed.Round(time.Millisecond), rate)

	// The next phase starts on empty nodes. On a loaded machine one DeleteCollection of 3,000
	// pods can outlast the API server's request timeout, having deleted some: repeat it.
	err = wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
			b.Logf("deleting pods (retrying): %v", err)
		}
		left, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(left.Items) == 0, nil
	})
	if err != nil {
		b.Fatalf("deleting pods: %v", err)
	}
	return rate
}

// benchPod is small enough that every pod fits: the benchmark measures scheduling, not
// rejection.
func benchPod(ns string, i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("pod-%04d", i), Namespace: ns,
			Annotations: map[string]string{api.AnnotationGPUMemory: "128Mi"},
		},
		Spec: corev1.PodSpec{
			SchedulerName: api.SchedulerName,
			Containers: []corev1.Container{{
				Name: "model", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceMemory: resource.MustParse("64Mi"),
					corev1.ResourceCPU:    resource.MustParse("10m"),
				}},
			}},
		},
	}
}
