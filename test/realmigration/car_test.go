package realmigration

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

// readinessGrace is how far the test's watch of a pod may lag the gateway's: both hear of
// the pod from the same API server, each through its own watch.
const readinessGrace = time.Second

// driver is a test's car: package car, sending requests through the fleet's gateways.
type driver struct {
	*car.Car
	s      *scenario
	id     string
	cancel context.CancelFunc
	done   chan struct{}
}

// startCar creates the car id of the fleet's Secret, parked at edge at (its location
// reported there), sending newRequest every interval once run is called.
func (s *scenario) startCar(id string, at *localfleet.Edge, every time.Duration, newRequest func(seq int) car.Request) *driver {
	s.t.Helper()
	d := s.carWithToken(id, tokens[id], every, newRequest)
	d.moveTo(at)
	return d
}

// carWithToken creates car id presenting token, parked nowhere yet.
func (s *scenario) carWithToken(id, token string, every time.Duration, newRequest func(seq int) car.Request) *driver {
	s.t.Helper()
	var clusters []car.Cluster
	for _, e := range s.f.Edges {
		clusters = append(clusters, car.Cluster{ID: e.ID, Gateway: e.LocatorURL, Site: e.Point(), RadiusM: e.RadiusM})
	}
	c, err := car.New(car.Options{ID: id, Token: token, Clusters: clusters, Every: every, NewRequest: newRequest,
		HTTPClient: s.f.CarClient(car.DefaultTimeout, false)})
	if err != nil {
		s.t.Fatal(err)
	}
	d := &driver{Car: c, s: s, id: id}
	if s.driver == nil {
		s.driver = d
	}
	return d
}

// moveTo drives the car to edge e's site and reports it.
func (d *driver) moveTo(e *localfleet.Edge) {
	d.s.t.Helper()
	if err := d.MoveTo(d.s.ctx, e.Point()); err != nil {
		d.s.t.Fatal(err)
	}
}

// run starts sending requests in the background, until stop.
func (d *driver) run() {
	ctx, cancel := context.WithCancel(d.s.ctx)
	d.cancel, d.done = cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		d.Run(ctx)
	}()
	d.s.t.Cleanup(func() { d.stop() })
}

// stop ends run (its requests under way are left to finish) and returns every result.
func (d *driver) stop() []car.Result {
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
	return d.Results()
}

// answeredBy waits until n more requests than now have been answered by cluster.
func (d *driver) answeredBy(cluster string, n int) {
	d.s.t.Helper()
	want := d.Stats().ByCluster[cluster] + n
	d.s.waitFor(fmt.Sprintf("%d more answers to %s from %s", n, d.id, cluster), func() (bool, error) {
		return d.Stats().ByCluster[cluster] >= want, nil
	})
}

func (d *driver) String() string {
	st := d.Stats()
	return fmt.Sprintf("car %s: sent %d, ok %d, failed %d %v, in flight %d, answered by %v, latency p50 %s p99 %s\n", d.id,
		st.Sent, st.OK, st.Failed, st.FailedBy, st.InFlight, st.ByCluster, st.Latency.P50, st.Latency.P99)
}

// checkServed fails the test for every failed request, and for every answer not given by a
// pod of the answering gateway's cluster that was serving (Running, Ready, not deleting)
// while the request was under way. It returns the answers by cluster.
func (s *scenario) checkServed(results []car.Result) map[string]int {
	s.t.Helper()
	by := map[string]int{}
	var bad []string
	for _, r := range results {
		end := r.Start.Add(r.Latency)
		switch {
		case !r.OK():
			bad = append(bad, fmt.Sprintf("request %d at %s failed after %s via %v: %s", r.Seq, r.Start.Format(fleettest.TimeFormat), r.Latency, r.Via, r.Err))
		case len(r.Via) == 0 || r.Via[len(r.Via)-1] != r.Cluster:
			bad = append(bad, fmt.Sprintf("request %d answered as %s by the gateway of %v", r.Seq, r.Cluster, r.Via))
		case !strings.HasPrefix(r.Pod, s.ns+"/"):
			bad = append(bad, fmt.Sprintf("request %d answered by pod %q, not one of namespace %s", r.Seq, r.Pod, s.ns))
		case !s.ready.ServedBetween(r.Cluster, r.Pod, r.Start.Add(-readinessGrace), end.Add(readinessGrace)):
			bad = append(bad, fmt.Sprintf("request %d [%s, %s] answered by %s in %s, which was not serving then", r.Seq,
				r.Start.Format(fleettest.TimeFormat), end.Format(fleettest.TimeFormat), r.Pod, r.Cluster))
		default:
			by[r.Cluster]++
		}
	}
	if len(bad) > 0 {
		const show = 20
		s.t.Errorf("%d of %d requests were not served by a serving pod; the first %d:\n%s\n%s", len(bad), len(results), min(show, len(bad)),
			strings.Join(bad[:min(show, len(bad))], "\n"), s.state())
	}
	s.t.Logf("%d requests, answered by %v", len(results), by)
	return by
}
