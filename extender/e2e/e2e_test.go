// Package e2e tests the extender with a real kube-scheduler configured from
// manifests/scheduler-config.yaml, on one shared local cluster with fake Jetson nodes.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/extender"
	"github.com/edgemigrate/edgemigrate/extender/schedtest"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/manifests"
)

var shared clustertest.Shared

func TestMain(m *testing.M) { clustertest.Main(m, 1, localcluster.Options{Name: "extender"}, &shared) }

// env is the package's extender and scheduler, started once on the shared cluster.
type env struct {
	cluster *localcluster.Cluster
	ext     *extender.Extender
	// seen records the pods (namespace/name) the scheduler asked the extender about.
	seen sync.Map
}

var (
	envOnce sync.Once
	theEnv  *env
	envErr  error
)

// setup starts the extender on 127.0.0.1 and then kube-scheduler from the manifest, with
// the extender's URL rewritten to it. Both run until the package's cluster stops.
func setup(t *testing.T) *env {
	t.Helper()
	c := shared.Require(t)[0]
	envOnce.Do(func() { theEnv, envErr = start(c) })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return theEnv
}

func start(c *localcluster.Cluster) (*env, error) {
	ctx := context.Background() // lives as long as the test binary
	client, err := kubernetes.NewForConfig(extender.ClientConfig(c.Config))
	if err != nil {
		return nil, fmt.Errorf("creating client: %w", err)
	}
	reg := serve.NewRegistry()
	ext, err := extender.New(client, extender.Options{}, reg)
	if err != nil {
		return nil, err
	}
	if err := ext.Start(ctx); err != nil {
		return nil, err
	}
	e := &env{cluster: c, ext: ext}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	go func() { _ = serve.Serve(ctx, ln, e.recording(ext.Handler(reg)), nil) }()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return ext.Ready() == nil, nil
	}); err != nil {
		return nil, fmt.Errorf("extender caches never synced: %w", err)
	}

	sched, err := schedulerConfig("http://" + ln.Addr().String())
	if err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.StartScheduler(startCtx, sched); err != nil {
		return nil, err
	}
	return e, nil
}

// schedulerConfig is manifests/scheduler-config.yaml with its extender pointed at url.
func schedulerConfig(url string) (*schedconfig.KubeSchedulerConfiguration, error) {
	cfg, err := manifests.SchedulerConfig()
	if err != nil {
		return nil, err
	}
	cfg.Extenders[0].URLPrefix = url
	// One scheduler: no lease to wait for (the manifest's lives in the chart's release
	// namespace, which this cluster lacks).
	cfg.LeaderElection.LeaderElect = ptr.To(false)
	return cfg, nil
}

// recording notes which pod each extender call is about, then serves it.
func (e *env) recording(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			var req struct {
				Pod *struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				}
				PodName, PodNamespace string
			}
			if json.Unmarshal(body, &req) == nil {
				if req.Pod != nil {
					e.seen.Store(req.Pod.Metadata.Namespace+"/"+req.Pod.Metadata.Name, true)
				} else if req.PodName != "" {
					e.seen.Store(req.PodNamespace+"/"+req.PodName, true)
				}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func (e *env) schedtest() *schedtest.Env {
	return &schedtest.Env{
		Cluster: e.cluster,
		Counts: func(node string, occupied int64) bool {
			c, used, ok := e.ext.Usage().Node(node)
			return ok && c.Jetson && used.Unified() == occupied
		},
		Asked: func(pod string) bool { _, ok := e.seen.Load(pod); return ok },
	}
}

func TestE2EPodsLandWhereTheFitModelSays(t *testing.T) {
	schedtest.PodsLandWhereTheFitModelSays(t, setup(t).schedtest())
}

func TestE2EBurstNeverOvercommits(t *testing.T) {
	schedtest.BurstNeverOvercommits(t, setup(t).schedtest())
}

func TestE2EOtherSchedulersPodsUntouched(t *testing.T) {
	schedtest.OtherSchedulersPodsUntouched(t, setup(t).schedtest())
}
