package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/internal/dashboard"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/inference/mnist"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

const (
	// requestEvery is the car's steady request rate on real containers.
	requestEvery = 100 * time.Millisecond
	// stripRequests are the recent requests the dashboard draws one by one.
	stripRequests = 150
	// digits is how many MNIST test digits the car cycles through.
	digits = 500
)

// mode is how a run plays the services: real containers on real nodes, with the car
// sending requests, or kwok with the service simulated (an API object) and no request.
type mode struct {
	real bool
	// why the run is on kwok; empty when real.
	why string
	// classifier and profiler are the images' references in the clusters' registries;
	// without the profiler the offload scenario stays on kwok boards.
	classifier, profiler string
	// requests are the classifier requests the car sends, MNIST test digits.
	requests [][]byte
}

// String is the demo's opening line about it.
func (m mode) String() string {
	if m.real {
		return fmt.Sprintf("Real containers: each cluster has a real node (kubelet, containerd, runc); the car's service is the classifier image %s, and the car sends it an MNIST test digit every %s through the gateway of the cluster covering it", m.classifier, requestEvery)
	}
	return "kwok: every node is simulated and the car's service is an API object, so the car sends no request (" + m.why + ")"
}

// detectMode says whether this machine can run the demo on real containers: Linux as
// root with the real-node prerequisites, the classifier image, and the MNIST test digits.
func detectMode(ctx context.Context, o Options, binDir string) mode {
	if o.Kwok {
		return mode{why: "--kwok asks for it"}
	}
	if runtime.GOOS != "linux" {
		return mode{why: "real nodes need Linux, this is " + runtime.GOOS}
	}
	if _, err := localcluster.RealNodeRequirements(); err != nil {
		return mode{why: err.Error()}
	}
	dir := os.Getenv(localcluster.ImagesDirEnv)
	if dir == "" {
		dir = filepath.Join(binDir, "images")
	}
	built, err := images.ReadLayout(dir)
	if err != nil {
		return mode{why: fmt.Sprintf("no images of `make images`: %v", err)}
	}
	m := mode{}
	for _, b := range built {
		switch {
		case strings.HasPrefix(b.Ref, images.Registry+"/"+images.Classifier+":"):
			m.classifier = b.Ref
		case strings.HasPrefix(b.Ref, images.Registry+"/"+images.Profiler+":"):
			m.profiler = b.Ref
		}
	}
	if m.classifier == "" {
		return mode{why: fmt.Sprintf("no %s image in %s: run `make images`", images.Classifier, dir)}
	}
	wd, err := os.Getwd()
	if err != nil {
		return mode{why: fmt.Sprintf("finding the MNIST test digits: %v", err)}
	}
	dataDir, err := mnist.DataDir(ctx, wd)
	if err != nil {
		return mode{why: fmt.Sprintf("finding the MNIST test digits (run the demo in the repository): %v", err)}
	}
	set, err := mnist.LoadTest(dataDir)
	if err != nil {
		return mode{why: fmt.Sprintf("loading the MNIST test digits: %v", err)}
	}
	for i := range min(digits, set.Len()) {
		body, err := json.Marshal(mnist.NewRequest(set.Images[i]))
		if err != nil {
			return mode{why: fmt.Sprintf("encoding an MNIST digit: %v", err)}
		}
		m.requests = append(m.requests, body)
	}
	if len(m.requests) == 0 {
		return mode{why: "the MNIST test split is empty"}
	}
	m.real = true
	return m
}

// newCar is the car that sends the classifier requests, its clusters the fleet's.
func newCar(f *localfleet.Fleet, token string, m mode) (*car.Car, error) {
	c, err := car.New(car.Options{ID: CarID, Token: token, Clusters: carClusters(f), Every: requestEvery, HTTPClient: f.CarClient(car.DefaultTimeout, false),
		NewRequest: func(seq int) car.Request {
			return car.Request{Method: "POST", Path: "/infer", ContentType: "application/json", Body: m.requests[seq%len(m.requests)]}
		}})
	if err != nil {
		return nil, fmt.Errorf("creating the demo's car: %w", err)
	}
	return c, nil
}

// carClusters are the fleet's clusters as a car knows them: the public endpoint is the gateway.
func carClusters(f *localfleet.Fleet) []car.Cluster {
	var clusters []car.Cluster
	for _, e := range f.Edges {
		clusters = append(clusters, car.Cluster{ID: e.ID, Gateway: e.LocatorURL, Site: e.Point(), RadiusM: e.RadiusM})
	}
	return clusters
}

// dashboardRequests is the car's figures as the dashboard shows them.
func dashboardRequests(id string, st car.Stats, recent []car.Result) dashboard.Requests {
	r := dashboard.Requests{Car: id, Sent: st.Sent, OK: st.OK, Failed: st.Failed, InFlight: st.InFlight,
		ByCluster: st.ByCluster, FailedBy: st.FailedBy,
		WindowS: st.Window.Span.Seconds(), RatePerS: st.Window.Rate, WindowFailed: st.Window.Failed,
		P50Ms: milliseconds(st.Window.Latency.P50), P99Ms: milliseconds(st.Window.Latency.P99)}
	for _, q := range recent {
		r.Recent = append(r.Recent, dashboard.Request{Seq: q.Seq, Cluster: q.Cluster, OK: q.OK(), Status: q.Status,
			LatencyMs: milliseconds(q.Latency)})
	}
	return r
}

func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// requestFigures is a timeline line's tail for the car's requests started within w,
// e.g. "requests: 57, 0 failed, p50 3.1ms, p99 12ms".
func requestFigures(w car.Window) string {
	s := fmt.Sprintf("requests: %d, %d failed", w.Requests, w.Failed)
	if w.Requests > w.Failed {
		s += fmt.Sprintf(", p50 %s, p99 %s", formatDuration(w.Latency.P50), formatDuration(w.Latency.P99))
	}
	return s
}
