package migration

// The fault tests: a descheduler leader stopped or killed mid-migration, the
// ledger server down while migrations are in flight, a destination cluster gone silent
// after Completed. Each starts a fleet of its own (two clusters, edge-a and edge-b, 2 km
// apart), since it stops parts of it, and prints what it measured.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/descheduler"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

// faultFleet starts two supervised clusters with the shared fleet's descheduler flags,
// changed by tweak.
func faultFleet(t *testing.T, tweak func(*localfleet.Options)) *localfleet.Fleet {
	o := localfleet.Options{
		Clusters:     2,
		ClientTokens: tokens,
		Nodes: func(i int) []*corev1.Node {
			return []*corev1.Node{localclusterNode(i, 0), localclusterNode(i, 1)}
		},
		// The shared fleet's flags, but a destination waits for a source's bundle longer than
		// the source's hand-over to its standby takes (the 8 s Lease, and a start).
		DeschedulerArgs: []string{"--offload-after=1s", "--destination-ready-timeout=20s", "--migration-timeout=90s", "--resync-interval=2s"},
		// As the kubelet would: a descheduler that exits or fails liveness comes back.
		Supervise: true,
	}
	if tweak != nil {
		tweak(&o)
	}
	return fleettest.Start(t, o)
}

// copyWatch samples, every 200 ms until stopped, the Running copies of services in every
// cluster and records each sample that breaks "one copy": a service runs nowhere (lost),
// twice in one cluster, or in more than two clusters (more than a migration's source and
// destination overlapping, make-before-break). At the end of each test exactly one is
// checked separately.
type copyWatch struct {
	s       *scenario
	names   []string
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples int
	bad     []string
}

func (s *scenario) watchCopies(names ...string) *copyWatch {
	w := &copyWatch{s: s, names: names, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ticker := time.NewTicker(200 * time.Millisecond)
		defer ticker.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-ticker.C:
			}
		}
	}()
	return w
}

func (w *copyWatch) sample() {
	for _, name := range w.names {
		per, err := w.s.copies(name)
		if err != nil {
			continue // an API server not answering is no evidence either way
		}
		total, where := 0, 0
		for _, n := range per {
			total += n
			if n > 0 {
				where++
			}
		}
		w.mu.Lock()
		w.samples++
		if total == 0 || where > 2 || slices.ContainsFunc(slices.Collect(maps.Values(per)), func(n int) bool { return n > 1 }) {
			w.bad = append(w.bad, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), name, per))
		}
		w.mu.Unlock()
	}
}

// check stops the sampling and fails the test for each bad sample.
func (w *copyWatch) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("copies of %v sampled %d times, %d outside one per cluster and at least one in all", w.names, w.samples, len(w.bad))
	for _, b := range w.bad {
		t.Errorf("copies: %s", b)
	}
}

// copies counts the Running, not deleting copies of a service in each cluster, without
// failing the test (it runs beside it).
func (s *scenario) copies(name string) (map[string]int, error) {
	per := map[string]int{}
	for _, e := range s.f.Edges {
		pods, err := e.Client.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return nil, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				per[e.ID]++
			}
		}
	}
	return per, nil
}

// runsOnce waits until the service runs exactly one copy in all, wherever, and returns
// where.
func (s *scenario) runsOnce(name string) string {
	s.t.Helper()
	var at string
	s.waitFor(name+" running exactly once", func() (bool, error) {
		per, err := s.copies(name)
		if err != nil {
			return false, nil
		}
		total := 0
		for id, n := range per {
			total += n
			if n > 0 {
				at = id
			}
		}
		return total == 1, nil
	})
	return at
}

// driveEventually reports the car's position until every cluster's locator takes it: a
// public endpoint without a ready replica refuses connections, as a Service does.
func (s *scenario) driveEventually(car string, metresNorth float64) {
	s.t.Helper()
	var last error
	s.waitFor(fmt.Sprintf("%s's position taken by every locator", car), func() (bool, error) {
		last = fleettest.Drive(s.ctx, s.f, car, tokens[car], s.at(metresNorth))
		return last == nil, nil
	})
}

// watchPhase waits until a migration of workload in cluster id, in role, reaches one of
// phases, watching rather than polling (a phase may last milliseconds); trigger runs once
// the watch is open.
func (s *scenario) watchPhase(id, workload string, role v1alpha1.MigrationRole, trigger func(), phases ...v1alpha1.MigrationPhase) *v1alpha1.Migration {
	s.t.Helper()
	w, err := s.migs[s.index(id)].Migrations(s.ns).Watch(s.ctx, metav1.ListOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer w.Stop()
	trigger()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				s.t.Fatalf("watch ended before a %s migration of %s in %s reached %v\n%s", role, workload, id, phases, s.state())
			}
			if m, isMig := ev.Object.(*v1alpha1.Migration); isMig && m.Status.Role == role && m.Spec.Workload.Name == workload && slices.Contains(phases, m.Status.Phase) {
				return m
			}
		case <-deadline:
			s.t.Fatalf("no %s migration of %s in %s reached %v\n%s", role, workload, id, phases, s.state())
		}
	}
}

// ends waits until the named Migration in cluster id is Completed, Failed or Aborted.
func (s *scenario) ends(id, name string) *v1alpha1.Migration {
	s.t.Helper()
	var m *v1alpha1.Migration
	s.waitFor(fmt.Sprintf("migration %s in %s to end", name, id), func() (bool, error) {
		var err error
		m, err = s.migs[s.index(id)].Migrations(s.ns).Get(s.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		switch m.Status.Phase {
		case v1alpha1.PhaseCompleted, v1alpha1.PhaseFailed, v1alpha1.PhaseAborted:
			return true, nil
		}
		return false, nil
	})
	return m
}

// leaseHolder is the holder of the descheduler's Lease in cluster e (named after the
// cluster, see descheduler.Options.Config).
func (s *scenario) leaseHolder(e *localfleet.Edge) (string, int32) {
	s.t.Helper()
	l, err := e.Client.CoordinationV1().Leases(api.SystemNamespace).Get(s.ctx, descheduler.LeaseName+"-"+e.ID, metav1.GetOptions{})
	if err != nil {
		s.t.Fatalf("reading the descheduler Lease of %s: %v", e.ID, err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, ""), ptr.Deref(l.Spec.LeaseTransitions, 0)
}

// TestE2EHandOver: two descheduler replicas per cluster. The source's leader is stopped
// with SIGTERM while a mobility migration is Proposed, then, on the way back, killed with
// SIGKILL while the next is Decided; each time the standby takes the Lease and finishes the
// same migration, with one copy per cluster at every sample and exactly one at the end.
func TestE2EHandOver(t *testing.T) {
	f := faultFleet(t, func(o *localfleet.Options) { o.DeschedulerReplicas = 2 })
	s := newScenarioOn(t, f)
	const car, name = "car-1", "handover"
	// The fronts pick a ready replica every 200 ms; a report in between may meet a
	// closed connection, as a client of a Service would, and is sent again.
	s.driveEventually(car, 0)
	s.create("edge-a", s.service(name, car, 1, "2Gi"))
	s.runsOnlyIn("edge-a", name, 1)
	copies := s.watchCopies(name)

	for _, tc := range []struct {
		fault    string
		from, to string
		metres   float64 // where the car drives
		phase    v1alpha1.MigrationPhase
	}{
		{"SIGTERM", "edge-a", "edge-b", 2000, v1alpha1.PhaseProposed},
		{"SIGKILL", "edge-b", "edge-a", 0, v1alpha1.PhaseDecided},
	} {
		src := s.edge(tc.from)
		leader, err := src.LeaderReplica(s.ctx)
		if err != nil {
			t.Fatal(err)
		}
		holder, transitions := s.leaseHolder(src)
		m := s.watchPhase(tc.from, name, v1alpha1.RoleSource, func() { s.driveEventually(car, tc.metres) }, tc.phase)
		began := time.Now()
		if tc.fault == "SIGTERM" {
			src.StopReplica(leader)
		} else {
			src.KillReplica(leader)
		}
		next, err := src.LeaderReplica(s.ctx)
		if err != nil {
			t.Fatalf("%s of %s's leader during %s: %v\n%s", tc.fault, tc.from, tc.phase, err, s.state())
		}
		tookOver := time.Since(began)
		if next == leader {
			t.Fatalf("replica %d still leads %s after its %s", leader, tc.from, tc.fault)
		}
		s.driveEventually(car, tc.metres) // the car keeps reporting; the new leader learns where it is
		done := s.ends(tc.from, m.Name)
		if done.Status.Phase != v1alpha1.PhaseCompleted || done.Status.Destination != tc.to {
			t.Fatalf("migration %s after the %s: %s to %q (%s); want Completed to %s\n%s", m.Name, tc.fault, done.Status.Phase, done.Status.Destination, done.Status.Message, tc.to, s.state())
		}
		s.runsOnlyIn(tc.to, name, 1)
		oneCopy := time.Since(began)
		newHolder, newTransitions := s.leaseHolder(src)
		if newHolder == "" || newHolder == holder || newTransitions <= transitions {
			t.Errorf("%s's Lease after the %s: holder %q (was %q), transitions %d (were %d); want it moved to the standby", tc.from, tc.fault, newHolder, holder, newTransitions, transitions)
		}
		t.Logf("%s of %s's leader (replica %d) in %s: replica %d ready after %s, one copy in %s after %s",
			tc.fault, tc.from, leader, tc.phase, next, tookOver.Round(100*time.Millisecond), tc.to, oneCopy.Round(100*time.Millisecond))
		if err := src.StartReplica(s.ctx, leader); err != nil { // the next round has a standby again
			t.Fatal(err)
		}
	}
	copies.check(t)
	s.scaledAway("edge-b", name, "edge-a")
}

// TestE2ELedgerOutage: the ledger server stops while two migrations are in flight, one held
// in Ready by a PodDisruptionBudget (released during the outage) and one just Proposed;
// edge-b's descheduler is restarted during the outage. Ten seconds later the ledger comes
// back: edge-b's descheduler becomes ready, each migration ends Completed or Aborted, and
// each service runs exactly once, with one copy per cluster at every sample.
func TestE2ELedgerOutage(t *testing.T) {
	f := faultFleet(t, nil)
	s := newScenarioOn(t, f)
	a, b := s.edge("edge-a"), s.edge("edge-b")
	const held, fresh = "planner", "outage"

	s.drive("car-3", s.at(0))
	s.drive("car-4", s.at(0))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: held, Namespace: s.ns, Labels: map[string]string{"app": held},
			Annotations: map[string]string{api.AnnotationMigrate: "true", api.AnnotationGPUMemory: "2Gi", api.AnnotationClientID: "car-3"}},
		Spec: inferenceSpec(),
	}
	if _, err := a.Client.CoreV1().Pods(s.ns).Create(s.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: held, Namespace: s.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": held}}}}
	if _, err := a.Client.PolicyV1().PodDisruptionBudgets(s.ns).Create(s.ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.create("edge-a", s.service(fresh, "car-4", 1, "2Gi"))
	s.runsOnlyIn("edge-a", held, 1)
	s.runsOnlyIn("edge-a", fresh, 1)
	s.waitFor("the budget to be computed", func() (bool, error) {
		p, err := a.Client.PolicyV1().PodDisruptionBudgets(s.ns).Get(s.ctx, held, metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 1, err
	})
	copies := s.watchCopies(held, fresh)

	s.drive("car-3", s.at(2000))
	afterReady := s.migration("edge-a", held, v1alpha1.PhaseReady)
	s.waitFor("the budget to block the eviction", func() (bool, error) {
		m, err := s.migs[0].Migrations(s.ns).Get(s.ctx, afterReady.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(m.Status.Conditions, func(c metav1.Condition) bool {
			return c.Type == "SourceRemoved" && c.Reason == "EvictionBlocked"
		}), nil
	})
	beforeReady := s.watchPhase("edge-a", fresh, v1alpha1.RoleSource, func() { s.drive("car-4", s.at(2000)) }, v1alpha1.PhaseProposed)

	down := time.Now()
	f.StopLedger()
	// The source may now remove its copy of the held service, while the ledger is away.
	if err := a.Client.PolicyV1().PodDisruptionBudgets(s.ns).Delete(s.ctx, held, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A descheduler that starts during the outage, and takes the Lease in it (once the
	// killed one's expires): it cannot register until the ledger is back. (A SIGTERM is no
	// quicker: with the ledger down, the old one took its whole 10 s grace to exit.)
	holder, _ := s.leaseHolder(b)
	b.KillDescheduler()
	if err := b.StartReplica(s.ctx, 0); err != nil {
		t.Fatal(err)
	}
	s.waitFor("edge-b's restarted descheduler to take the Lease", func() (bool, error) {
		h, _ := s.leaseHolder(b)
		return h != "" && h != holder, nil
	})
	led := time.Since(down)
	// Ten seconds at least, and a few after the new leader's first registration attempt.
	time.Sleep(time.Until(latest(down.Add(10*time.Second), time.Now().Add(3*time.Second))))
	var during strings.Builder
	for _, name := range []string{afterReady.Name, beforeReady.Name} {
		if m, err := s.migs[0].Migrations(s.ns).Get(s.ctx, name, metav1.GetOptions{}); err == nil {
			fmt.Fprintf(&during, " %s=%s", m.Spec.Workload.Name, m.Status.Phase)
		}
	}
	up := time.Now()
	if err := f.StartLedger(s.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LeaderReplica(s.ctx); err != nil {
		t.Fatalf("edge-b's descheduler, started during the outage, after the ledger returned: %v\n%s", err, s.state())
	}
	bReady := time.Since(up)
	s.driveEventually("car-3", 2000)
	s.driveEventually("car-4", 2000)
	for _, m := range []*v1alpha1.Migration{afterReady, beforeReady} {
		end := s.ends("edge-a", m.Name)
		if end.Status.Phase != v1alpha1.PhaseCompleted && end.Status.Phase != v1alpha1.PhaseAborted {
			t.Errorf("migration of %s in flight during the outage ended %s (%s: %s); want Completed or Aborted", m.Spec.Workload.Name, end.Status.Phase, end.Status.Reason, end.Status.Message)
		}
		at := s.runsOnce(m.Spec.Workload.Name)
		if want := map[v1alpha1.MigrationPhase]string{v1alpha1.PhaseCompleted: "edge-b", v1alpha1.PhaseAborted: "edge-a"}[end.Status.Phase]; want != "" && at != want {
			t.Errorf("%s ended %s but runs in %s", m.Spec.Workload.Name, end.Status.Phase, at)
		}
		t.Logf("%s (%s when the ledger stopped): %s, one copy in %s %s after the ledger returned",
			m.Spec.Workload.Name, m.Status.Phase, end.Status.Phase, at, time.Since(up).Round(100*time.Millisecond))
	}
	t.Logf("ledger down %s; during it:%s; edge-b's restarted descheduler led %s into the outage, ready %s after the ledger returned (restarted by the supervisor %d times)",
		up.Sub(down).Round(100*time.Millisecond), during.String(), led.Round(100*time.Millisecond), bReady.Round(100*time.Millisecond), b.Restarts(localfleet.ReplicaName(0)))
	copies.check(t)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestE2ESilentDestination: after a migration edge-a → edge-b completes, edge-b's descheduler
// dies and edge-b goes silent on the ledger. After the dead-after window edge-a marks it
// dead and re-homes the service: its parked copy is scaled back up and its locator sends
// the car to itself. When edge-b's descheduler returns, edge-b sees it was superseded and
// stands its copy down: one Running copy, at edge-a.
func TestE2ESilentDestination(t *testing.T) {
	f := faultFleet(t, func(o *localfleet.Options) { o.LedgerDeadAfter = 6 * time.Second })
	s := newScenarioOn(t, f)
	a, b := s.edge("edge-a"), s.edge("edge-b")
	const car, name = "car-2", "survivor"
	s.drive(car, s.at(0))
	s.create("edge-a", s.service(name, car, 1, "2Gi"))
	s.runsOnlyIn("edge-a", name, 1)
	s.drive(car, s.at(2000))
	moved := s.migration("edge-a", name, v1alpha1.PhaseCompleted)
	s.runsOnlyIn("edge-b", name, 1)
	s.scaledAway("edge-a", name, "edge-b")
	// Within both coverages: once re-homed at edge-a the service has no reason to move again.
	s.drive(car, s.at(1000))
	s.locatorSays("edge-a", car, "edge-b")
	copies := s.watchCopies(name)

	observer, err := f.Ledger(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	clusterB := func() *chaincode.Cluster {
		clusters, err := observer.ListClusters(s.ctx)
		if err != nil {
			return nil
		}
		for _, c := range clusters {
			if c.ID == b.ID {
				return c
			}
		}
		return nil
	}

	silent := time.Now()
	b.KillDescheduler()
	// MarkClusterDead is refused before the last report + dead-after + the ledger's clock
	// skew allowance (30 s): the wait is that long at least.
	waitLong := func(what string, cond func() bool) time.Duration {
		t.Helper()
		err := wait.PollUntilContextTimeout(s.ctx, 200*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) { return cond(), nil })
		if err != nil {
			t.Fatalf("waiting for %s after edge-b went silent: %v\n%s", what, err, s.state())
		}
		return time.Since(silent)
	}
	dead := waitLong("the ledger to mark edge-b dead", func() bool { c := clusterB(); return c != nil && c.Dead })
	backUp := waitLong("edge-a's parked copy to run again", func() bool { per, err := s.copies(name); return err == nil && per["edge-a"] == 1 })
	local := waitLong("edge-a's locator to send the car to edge-a", func() bool { return s.endpoint("edge-a", car) == "edge-a" })
	homes, err := observer.ListHomes(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	rehomed := slices.ContainsFunc(homes, func(h *chaincode.Home) bool { return h.Cluster == a.ID && h.RehomedFrom == b.ID })
	if !rehomed {
		t.Errorf("no home re-homed from edge-b to edge-a on the ledger: %+v", homes)
	}
	if d := s.deployment("edge-a", name); ptr.Deref(d.Spec.Replicas, 0) != 1 {
		t.Errorf("edge-a's Deployment has %d replicas after the re-homing, want 1", ptr.Deref(d.Spec.Replicas, 0))
	}

	back := time.Now()
	if err := b.StartDescheduler(s.ctx); err != nil {
		t.Fatal(err)
	}
	s.waitFor("edge-b to stand its superseded copy down", func() (bool, error) {
		per, err := s.copies(name)
		return err == nil && per["edge-b"] == 0, nil
	})
	stoodDown := time.Since(back)
	s.waitFor("edge-b revived on the ledger", func() (bool, error) { c := clusterB(); return c != nil && !c.Dead, nil })
	s.runsOnlyIn("edge-a", name, 1)
	s.locatorSays("edge-a", car, "edge-a")
	t.Logf("migration %s to edge-b, then edge-b silent: marked dead after %s, edge-a's copy up after %s, its route local after %s; edge-b back: copy stood down after %s",
		moved.Name, dead.Round(100*time.Millisecond), backUp.Round(100*time.Millisecond), local.Round(100*time.Millisecond), stoodDown.Round(100*time.Millisecond))
	copies.check(t)
}
