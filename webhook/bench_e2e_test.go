package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/webhook/certs"
)

// Pod-create benchmark parameters; EDGEMIGRATE_BENCH_PODS overrides the pods per phase.
const (
	benchCreators  = 32
	benchPods      = 1500
	benchRounds    = 3
	noopAnnotation = "bench.edgemigrate.io/noop"
)

// BenchmarkE2EPodCreate measures pod creation through the real API server in one run:
// without a webhook, with a do-nothing webhook (one annotation; the floor any webhook
// costs), and with edgemigrate's. It reports throughput and client-side p50/p99 of each,
// and throughput as ratios to no webhook. Run once: -benchtime 1x.
func BenchmarkE2EPodCreate(b *testing.B) {
	c := shared.Require(b)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pods := benchPods
	if v, err := strconv.Atoi(os.Getenv("EDGEMIGRATE_BENCH_PODS")); err == nil && v > 0 {
		pods = v
	}
	cfg := rest.CopyConfig(c.Config)
	// The benchmark measures the server; client-side throttling would cap it.
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ns := clustertest.Namespace(b, c, map[string]string{api.LabelNamespaceEnabled: "true"})
	if err := c.AddNodes(ctx, localcluster.JetsonNode("xavier-bench", localcluster.AGXXavier, localcluster.NodeOptions{})); err != nil {
		b.Fatal(err)
	}

	noopURL, noopCA := startNoopWebhook(ctx, b)
	ourURL, ourConfig := startOurWebhook(ctx, b, c)

	type phase struct {
		name      string
		install   func() func()
		latencies []time.Duration
		elapsed   time.Duration
	}
	phases := []*phase{
		{name: "none", install: func() func() { return func() {} }},
		{name: "noop", install: func() func() {
			return installWebhook(ctx, b, c, "bench-noop", "noop.bench.edgemigrate.io", noopURL, noopCA, ns, noopAnnotation)
		}},
		{name: "edgemigrate", install: func() func() {
			return installWebhook(ctx, b, c, ourConfig, e2eWebhookName, ourURL, nil, ns, api.AnnotationSourceCluster)
		}},
	}
	for b.Loop() {
		runPhase(ctx, b, client, ns, "warmup", pods/4) // first requests pay for caches and connections
		// Rounds in rotating order, so that drift in a shared machine's load spreads over
		// every phase instead of favouring one.
		for round := range benchRounds {
			for i := range phases {
				p := phases[(i+round)%len(phases)]
				uninstall := p.install()
				latencies, elapsed := runPhase(ctx, b, client, ns, fmt.Sprintf("%s-%d", p.name, round), pods/benchRounds)
				uninstall()
				p.latencies = append(p.latencies, latencies...)
				p.elapsed += elapsed
			}
		}
	}
	type result struct {
		name          string
		podsPerSecond float64
		p50, p99      time.Duration
	}
	var results []result
	for _, p := range phases {
		slices.Sort(p.latencies)
		results = append(results, result{p.name, float64(len(p.latencies)) / p.elapsed.Seconds(),
			p.latencies[len(p.latencies)/2], p.latencies[len(p.latencies)*99/100]})
	}
	base := results[0].podsPerSecond
	b.Logf("%d pods per phase in %d rounds, %d concurrent creators", pods/benchRounds*benchRounds, benchRounds, benchCreators)
	for _, r := range results {
		b.Logf("%-12s %7.0f pods/s (%.2fx no webhook)  p50 %6.2f ms  p99 %6.2f ms", r.name, r.podsPerSecond, r.podsPerSecond/base,
			float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000)
		b.ReportMetric(r.podsPerSecond, "pods/s-"+r.name)
		b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms-"+r.name)
		b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms-"+r.name)
	}
	b.ReportMetric(results[1].podsPerSecond/base, "ratio-noop")
	b.ReportMetric(results[2].podsPerSecond/base, "ratio-edgemigrate")
	b.ReportMetric(results[2].podsPerSecond/results[1].podsPerSecond, "ratio-edgemigrate/noop")
}

// runPhase creates n pods with benchCreators concurrent creators and returns each
// create's latency and the wall time; it then deletes them.
func runPhase(ctx context.Context, b *testing.B, client kubernetes.Interface, ns, name string, n int) ([]time.Duration, time.Duration) {
	b.Helper()
	latencies := make([]time.Duration, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	start := time.Now()
	for range benchCreators {
		wg.Go(func() {
			for i := range next {
				p := e2ePod(fmt.Sprintf("%s-%d", name, i), ns, nil)
				t0 := time.Now()
				_, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
				latencies[i] = time.Since(t0)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatalf("phase %s: creating pods: %v", name, firstErr)
	}
	// Pods without a node are deleted at once; waiting keeps phases from overlapping.
	if err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		b.Fatalf("deleting pods: %v", err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, nil
	})
	if err != nil {
		b.Fatalf("waiting for phase %s's pods to go: %v", name, err)
	}
	return latencies, elapsed
}

// installWebhook makes a MutatingWebhookConfiguration like the manifest's call url: it
// creates it, or gives an existing one (ours, whose caBundle the webhook writes) the
// manifest's rules. It waits until the API server applies it (a dry-run pod carries
// marker) and returns a function that empties its rules and waits until it no longer
// applies.
func installWebhook(ctx context.Context, b *testing.B, c *localcluster.Cluster, name, hook, url string, caBundle []byte, ns, marker string) func() {
	b.Helper()
	cfg := manifestWebhookConfig(b)
	cfg.Name = name
	cfg.Webhooks[0].Name = hook
	cfg.Webhooks[0].ClientConfig.Service = nil
	cfg.Webhooks[0].ClientConfig.URL = ptr.To(url)
	cfg.Webhooks[0].ClientConfig.CABundle = caBundle
	mwcs := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if existing, err := mwcs.Get(ctx, name, metav1.GetOptions{}); err == nil {
		existing.Webhooks[0].Rules = cfg.Webhooks[0].Rules
		if _, err := mwcs.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
	} else if _, err := mwcs.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	waitMarker(ctx, b, c, ns, marker, true)
	return func() {
		// Emptied rather than deleted: our webhook keeps writing its caBundle there.
		existing, err := mwcs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		existing.Webhooks[0].Rules = []admissionregistrationv1.RuleWithOperations{}
		if _, err := mwcs.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitMarker(ctx, b, c, ns, marker, false)
	}
}

func waitMarker(ctx context.Context, b *testing.B, c *localcluster.Cluster, ns, marker string, present bool) {
	b.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := c.Client.CoreV1().Pods(ns).Create(ctx, e2ePod("probe", ns, nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, nil
		}
		_, ok := got.Annotations[marker]
		return ok == present, nil
	})
	if err != nil {
		b.Fatalf("waiting for annotation %s present=%v on new pods: %v", marker, present, err)
	}
}

// startNoopWebhook serves a webhook that adds one annotation, over TLS, and returns its
// URL and CA bundle.
func startNoopWebhook(ctx context.Context, b *testing.B) (string, []byte) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var bundle []byte
	src, err := certs.NewSelfSigned(ctx, certs.SelfSignedOptions{Hosts: []string{"127.0.0.1"},
		Publish: func(_ context.Context, ca []byte) error { bundle = ca; return nil }})
	if err != nil {
		b.Fatal(err)
	}
	patch := []byte(`[{"op":"add","path":"/metadata/annotations","value":{"` + noopAnnotation + `":"1"}}]`)
	engine := serve.NewEngine(serve.NewRegistry(), func() error { return nil })
	engine.POST("/", func(c *gin.Context) {
		body, _ := io.ReadAll(c.Request.Body)
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			c.AbortWithStatus(http.StatusBadRequest)
			return
		}
		pt := admissionv1.PatchTypeJSONPatch
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &pt}
		review.Request = nil
		c.JSON(http.StatusOK, &review)
	})
	go func() { _ = serve.Serve(ctx, ln, engine, certs.TLSConfig(src)) }()
	return "https://" + ln.Addr().String() + "/", bundle
}

// startOurWebhook runs edgemigrate's webhook in self-signed mode against a configuration
// with no rules yet (so it applies to nothing until installWebhook gives it rules).
func startOurWebhook(ctx context.Context, b *testing.B, c *localcluster.Cluster) (url, configName string) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	url = "https://" + ln.Addr().String() + Path
	cfg := manifestWebhookConfig(b)
	cfg.Name = "bench-edgemigrate"
	cfg.Webhooks[0].ClientConfig.Service = nil
	cfg.Webhooks[0].ClientConfig.URL = ptr.To(url)
	cfg.Webhooks[0].Rules = []admissionregistrationv1.RuleWithOperations{}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
		_ = c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), "bench-noop", metav1.DeleteOptions{})
	})
	opts := NewOptions()
	opts.ClusterID = e2eCluster
	opts.SelfSigned = true
	opts.SelfSignedHosts = []string{"127.0.0.1"}
	opts.WebhookConfigName = cfg.Name
	go func() {
		if err := Serve(ctx, opts, c.Client, ln); err != nil {
			b.Errorf("webhook: %v", err)
		}
	}()
	return url, cfg.Name
}
