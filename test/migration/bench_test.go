package migration

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	emcar "github.com/edgemigrate/edgemigrate/car" // the package; car is the test's client id
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// BenchmarkE2EMigration moves one car's service back and forth between edge-a and edge-b,
// b.N times (make bench-migration: 50), and reports median and p99 of trigger → decided,
// trigger → destination Ready and trigger → source removed (the ledger's Completed), from
// the ledger's transaction times against the moment the car reported its position. The
// baseline, measured in the same run, is what Kubernetes alone needs to start the same
// Deployment in a cluster (create → Ready); the ratios are the price of a migration over
// it. Meanwhile a probe asks edge-a's locator for the service's redirect, as a car would
// before each request, and counts answers that pointed at a cluster with no Ready copy
// (target 0); the redirect p99 is measured on the same requests.
func BenchmarkE2EMigration(b *testing.B) {
	s := newScenario(b)
	const car, name = "car-11", "bench"
	obs, err := s.f.Ledger(s.ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer obs.Close()
	// Ledger times of each migration's transitions, by migration id.
	var mu sync.Mutex
	times := map[string]map[string]time.Time{}
	events, err := obs.Events(s.ctx, ledger.Checkpoint{})
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for ev := range events {
			at, err := time.Parse(time.RFC3339Nano, ev.Time)
			if err != nil || ev.MigrationID == "" {
				continue
			}
			mu.Lock()
			if times[ev.MigrationID] == nil {
				times[ev.MigrationID] = map[string]time.Time{}
			}
			times[ev.MigrationID][ev.Type] = at
			mu.Unlock()
		}
	}()

	// Baseline: create → Ready of the same Deployment, in edge-b directly.
	baseline := s.service("baseline", "", 1, "4Gi")
	if _, err := s.edge("edge-b").Client.CoreV1().Namespaces().Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	s.create("edge-b", baseline)
	s.waitFor("the baseline Deployment Ready", func() (bool, error) {
		d := s.deployment("edge-b", "baseline")
		return d.Status.ReadyReplicas == 1, nil
	})
	base := time.Since(start)
	if err := s.edge("edge-b").Client.AppsV1().Deployments(s.ns).Delete(s.ctx, "baseline", metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}

	s.drive(car, s.at(0))
	s.create("edge-a", s.service(name, car, 1, "4Gi"))
	s.runsOnlyIn("edge-a", name, 1)

	probe := startProbe(s, car, name)
	var decided, ready, removed []time.Duration
	where := []struct {
		cluster string
		metres  float64
	}{{"edge-b", 2000}, {"edge-a", 0}}
	b.ResetTimer()
	for i := range b.N {
		to := where[i%2]
		from := where[(i+1)%2].cluster
		trigger := time.Now()
		s.drive(car, s.at(to.metres))
		m := s.migration(from, name, "Completed")
		for m.Status.StartTime == nil || m.Status.StartTime.Time.Before(trigger.Truncate(time.Second)) {
			m = s.migration(from, name, "Completed") // an earlier round's
		}
		s.runsOnlyIn(to.cluster, name, 1)
		mu.Lock()
		t := times[m.Status.LedgerID]
		mu.Unlock()
		if t[chaincode.EventMigrationCompleted].IsZero() {
			b.Fatalf("no ledger times for %s: %v", m.Status.LedgerID, t)
		}
		decided = append(decided, t[chaincode.EventMigrationDecided].Sub(trigger))
		ready = append(ready, t[chaincode.EventMigrationReady].Sub(trigger))
		removed = append(removed, t[chaincode.EventMigrationCompleted].Sub(trigger))
	}
	b.StopTimer()
	redirects, failures, requests := probe.stop()

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	report := func(what string, ds []time.Duration) {
		p50, p99 := emcar.Percentile(ds, 50), emcar.Percentile(ds, 99)
		b.ReportMetric(ms(p50), what+"-p50-ms")
		b.ReportMetric(ms(p99), what+"-p99-ms")
		b.Logf("trigger → %-8s p50 %7.1f ms  p99 %7.1f ms  (%.2f× the baseline)", what, ms(p50), ms(p99), float64(p50)/float64(base))
	}
	b.Logf("baseline: create → Ready of the same Deployment, Kubernetes alone: %.1f ms", ms(base))
	report("decided", decided)
	report("ready", ready)
	report("removed", removed)
	b.ReportMetric(float64(emcar.Percentile(removed, 50))/float64(base), "removed/baseline")
	b.ReportMetric(ms(emcar.Percentile(redirects, 99)), "redirect-p99-ms")
	b.ReportMetric(float64(failures), "probe-failures")
	b.Logf("probe: %d requests through the locator, %d pointed at a cluster without a Ready copy; redirect p50 %.2f ms p99 %.2f ms",
		requests, failures, ms(emcar.Percentile(redirects, 50)), ms(emcar.Percentile(redirects, 99)))
	if failures > 0 {
		b.Errorf("%d probe requests would have failed", failures)
	}
}

// probe is a car asking edge-a's locator where its service runs, in a loop.
type probe struct {
	cancel    context.CancelFunc
	done      chan struct{}
	redirects []time.Duration
	failures  int
	requests  int
}

func startProbe(s *scenario, car, name string) *probe {
	ctx, cancel := context.WithCancel(s.ctx)
	p := &probe{cancel: cancel, done: make(chan struct{})}
	client := s.f.CarClient(10*time.Second, true)
	byURL := map[string]string{}
	for _, e := range s.f.Edges {
		byURL[e.LocatorURL] = e.ID
	}
	// Watched, not listed: the probe must not load the API servers it measures.
	watch, err := fleettest.WatchReadiness(ctx, s.f, s.ns, "app="+name)
	if err != nil {
		s.t.Fatal(err)
	}
	ready := watch.ServingNow
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			// A copy Ready just before or just after the answer: the request would have been
			// served (the answer and the check cannot be one atomic step).
			before := ready()
			start := time.Now()
			resp, err := client.Get(s.edge("edge-a").LocatorURL + "/v1/clients/" + car + "/redirect/infer")
			if err != nil {
				continue
			}
			resp.Body.Close()
			p.redirects = append(p.redirects, time.Since(start))
			p.requests++
			target := ""
			for url, id := range byURL {
				if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, url) {
					target = id
				}
			}
			if resp.StatusCode != http.StatusTemporaryRedirect || (!before[target] && !ready()[target]) {
				p.failures++
				s.t.Logf("probe: %d to %q (cluster %q)", resp.StatusCode, resp.Header.Get("Location"), target)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return p
}

func (p *probe) stop() ([]time.Duration, int, int) {
	p.cancel()
	<-p.done
	return p.redirects, p.failures, p.requests
}
