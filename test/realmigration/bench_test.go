package realmigration

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned"
	emginformers "github.com/edgemigrate/edgemigrate/api/generated/informers/externalversions"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
)

// benchEvery is the car's request interval in the benchmark.
const benchEvery = 20 * time.Millisecond

// BenchmarkE2ERealMigration moves a car's classifier between the real nodes of edge-a and
// edge-b, b.N times (make bench-migration: 20), while the car sends it a digit through
// the gateways every benchEvery. It reports, from the test's own watches (milliseconds;
// the Migration's timestamps are whole seconds), the p50 and p99 of the car's move →
// destination Ready (the destination's Migration Ready) and → source removed (the
// source's Migration Completed), against the baseline measured in the same run: the same
// pod's create → Ready by Kubernetes alone on the same real nodes. And the requests'
// latency p50 and p99 outside and during migrations (from the move to the source's
// removal), and the failed requests (goal 0). Every other round trip lands on a node whose
// image was removed first: move → Ready on cold nodes against warm ones, as a ratio.
func BenchmarkE2ERealMigration(b *testing.B) {
	s := newScenario(b)
	edges := []*localfleet.Edge{s.f.Edges[0], s.f.Edges[1]}
	const name = "bench"
	phases := s.watchPhases()
	newRequest, _ := s.digits()

	// Baseline: the same Deployment without a client, created and deleted on each real
	// node; the first round on each (pulling the image) is not counted. (Migrations create
	// the namespace at their destination; the baseline needs it in edge-b first.)
	if _, err := edges[1].Client.CoreV1().Namespaces().Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	var base []time.Duration
	for round := range 6 {
		for _, e := range edges {
			took := s.createToReady(e, s.service(images.Classifier, "baseline", ""))
			if round > 0 {
				base = append(base, took)
			}
		}
	}

	d := s.startCar(carBench, edges[0], benchEvery, newRequest)
	s.create(edges[0], s.service(images.Classifier, name, carBench))
	s.runningOnRealNode(edges[0], name, classifierCommand)
	d.run()
	d.answeredBy(edges[0].ID, 20)

	var ready, removed, warm, cold []time.Duration
	var during [][2]time.Time
	i := 0
	for b.Loop() {
		from, to := edges[i%2], edges[(i+1)%2]
		// Every other round trip lands on a node without the image (cold: a pull); the
		// others on one that ran it before (warm).
		coldRound := (i/2)%2 == 1
		i++
		pulls := to.Cluster.Registry().BlobPulls(images.Classifier)
		if coldRound {
			for _, n := range to.Cluster.RealNodes() {
				refs, err := n.RemoveImages(s.ctx, images.Classifier)
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("migration %d: removed %s from %s's node", i, strings.Join(refs, " "), to.ID)
			}
		}
		trigger := time.Now()
		d.moveTo(to)
		s.completed(from, name, trigger)
		readyAt := phases.first(to.ID, v1alpha1.RoleDestination, name, v1alpha1.PhaseReady, trigger)
		removedAt := phases.first(from.ID, v1alpha1.RoleSource, name, v1alpha1.PhaseCompleted, trigger)
		if readyAt.IsZero() || removedAt.IsZero() {
			b.Fatalf("migration %d: the watches saw no destination Ready (%s) or source Completed (%s)\n%s", i, readyAt, removedAt, s.state())
		}
		ready = append(ready, readyAt.Sub(trigger))
		pulled := to.Cluster.Registry().BlobPulls(images.Classifier) > pulls
		switch {
		case coldRound && !pulled:
			b.Errorf("migration %d to the cold node of %s pulled nothing", i, to.ID)
		case !coldRound && pulled:
			b.Errorf("migration %d to the warm node of %s pulled the image again", i, to.ID)
		case coldRound:
			cold = append(cold, readyAt.Sub(trigger))
		default:
			warm = append(warm, readyAt.Sub(trigger))
		}
		removed = append(removed, removedAt.Sub(trigger))
		during = append(during, [2]time.Time{trigger, removedAt})
		// The next move starts from one copy, at to.
		s.waitFor("the source's pod gone", func() (bool, error) { return len(s.pods(from, name)) == 0, nil })
		s.runningOnRealNode(to, name, classifierCommand)
		// Half a second of requests, at least, outside any migration.
		d.answeredBy(to.ID, 25)
	}
	b.StopTimer()
	results := d.stop()
	s.checkServed(results)

	var inside, outside []time.Duration
	failed := 0
	for _, r := range results {
		if !r.OK() {
			failed++
			continue
		}
		if slices.ContainsFunc(during, func(w [2]time.Time) bool { return !r.Start.Before(w[0]) && !r.Start.After(w[1]) }) {
			inside = append(inside, r.Latency)
		} else {
			outside = append(outside, r.Latency)
		}
	}

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	baseP50 := car.Percentile(base, 50)
	b.Logf("baseline: create → Ready of the same pod on the real nodes, Kubernetes alone (%d runs): p50 %.1f ms, p99 %.1f ms",
		len(base), ms(baseP50), ms(car.Percentile(base, 99)))
	for _, m := range []struct {
		what string
		ds   []time.Duration
	}{{"ready", ready}, {"removed", removed}} {
		p50, p99 := car.Percentile(m.ds, 50), car.Percentile(m.ds, 99)
		b.ReportMetric(ms(p50), m.what+"-p50-ms")
		b.ReportMetric(ms(p99), m.what+"-p99-ms")
		b.ReportMetric(float64(p50)/float64(baseP50), m.what+"/baseline")
		b.Logf("%d migrations: car's move → %-8s p50 %7.1f ms  p99 %7.1f ms  (p50 %.2f× the baseline)", len(m.ds), m.what, ms(p50), ms(p99), float64(p50)/float64(baseP50))
	}
	if len(warm) > 0 && len(cold) > 0 {
		wp, cp := car.Percentile(warm, 50), car.Percentile(cold, 50)
		b.ReportMetric(ms(wp), "ready-warm-p50-ms")
		b.ReportMetric(ms(cp), "ready-cold-p50-ms")
		b.ReportMetric(float64(cp)/float64(wp), "cold/warm")
		b.Logf("car's move → ready: warm node (image held) p50 %.1f ms over %d, cold node (image pulled) p50 %.1f ms over %d: cold %.2f× warm",
			ms(wp), len(warm), ms(cp), len(cold), float64(cp)/float64(wp))
	}
	for _, l := range []struct {
		what string
		ds   []time.Duration
	}{{"outside", outside}, {"during", inside}} {
		p50, p99 := car.Percentile(l.ds, 50), car.Percentile(l.ds, 99)
		b.ReportMetric(ms(p50), "req-"+l.what+"-p50-ms")
		b.ReportMetric(ms(p99), "req-"+l.what+"-p99-ms")
		b.Logf("requests %-7s migrations: %5d, latency p50 %6.2f ms  p99 %6.2f ms", l.what, len(l.ds), ms(p50), ms(p99))
	}
	// One line each: a benchmark's output is cut after ten.
	for _, m := range []struct {
		what string
		ds   []time.Duration
	}{{"ready", ready}, {"removed", removed}} {
		var each []string
		for _, d := range m.ds {
			each = append(each, fmt.Sprintf("%.2f", d.Seconds()))
		}
		b.Logf("each migration, move → %s (s): %s", m.what, strings.Join(each, " "))
	}
	b.ReportMetric(float64(len(results)), "requests")
	b.ReportMetric(float64(failed), "failed-requests")
	b.Logf("the car sent %d requests, one every %s: %d failed", len(results), benchEvery, failed)
	if failed > 0 {
		b.Errorf("%d requests failed", failed)
	}
}

// createToReady creates d at e and returns how long its pod took, from the create call to
// serving as the test's watch saw it; then deletes it and waits until its pods are gone.
func (s *scenario) createToReady(e *localfleet.Edge, d *appsv1.Deployment) time.Duration {
	s.t.Helper()
	start := time.Now()
	s.create(e, d)
	var took time.Duration
	s.waitFor(d.Name+" Ready at "+e.ID, func() (bool, error) {
		for _, p := range s.pods(e, d.Name) {
			if spans := s.ready.Serving(e.ID, s.ns+"/"+p.Name); len(spans) > 0 {
				took = spans[0].From.Sub(start)
				return true, nil
			}
		}
		return false, nil
	})
	if err := e.Client.AppsV1().Deployments(s.ns).Delete(s.ctx, d.Name, metav1.DeleteOptions{}); err != nil {
		s.t.Fatal(err)
	}
	s.waitFor("no pod of "+d.Name+" left at "+e.ID, func() (bool, error) { return len(s.pods(e, d.Name)) == 0, nil })
	return took
}

// phases records, from a watch of every cluster's Migrations in the namespace, when each
// first reached each phase, on the test's clock.
type phases struct {
	mu   sync.Mutex
	seen []phaseSeen
}

type phaseSeen struct {
	cluster, workload string
	uid               string
	role              v1alpha1.MigrationRole
	phase             v1alpha1.MigrationPhase
	at                time.Time
}

func (s *scenario) watchPhases() *phases {
	s.t.Helper()
	p := &phases{}
	for _, e := range s.f.Edges {
		client, err := versioned.NewForConfig(e.Config)
		if err != nil {
			s.t.Fatal(err)
		}
		factory := emginformers.NewSharedInformerFactoryWithOptions(client, 0, emginformers.WithNamespace(s.ns))
		inf := factory.Edgemigrate().V1alpha1().Migrations().Informer()
		cluster := e.ID
		record := func(obj any) {
			if m, ok := obj.(*v1alpha1.Migration); ok {
				p.record(cluster, m)
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, obj any) { record(obj) }}); err != nil {
			s.t.Fatal(err)
		}
		factory.Start(s.ctx.Done())
		if !cache.WaitForCacheSync(s.ctx.Done(), inf.HasSynced) {
			s.t.Fatalf("watching Migrations in %s", e.ID)
		}
	}
	return p
}

func (p *phases) record(cluster string, m *v1alpha1.Migration) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.ContainsFunc(p.seen, func(s phaseSeen) bool { return s.uid == string(m.UID) && s.phase == m.Status.Phase }) {
		return
	}
	p.seen = append(p.seen, phaseSeen{cluster: cluster, workload: m.Spec.Workload.Name, uid: string(m.UID), role: m.Status.Role, phase: m.Status.Phase, at: now})
}

// first is when a Migration of workload at cluster, in role, was first seen in phase after
// after; zero if none was.
func (p *phases) first(cluster string, role v1alpha1.MigrationRole, workload string, phase v1alpha1.MigrationPhase, after time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.seen {
		if s.cluster == cluster && s.role == role && s.workload == workload && s.phase == phase && s.at.After(after) {
			return s.at
		}
	}
	return time.Time{}
}
