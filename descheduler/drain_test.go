package descheduler

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/record"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
)

// eventsOf takes the Events recorded so far.
func eventsOf(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func count(events []string, prefix string) int {
	n := 0
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// drainWorld: edge-a runs svc for car-1 with the gateway's count of its requests in flight,
// and a Migration of it to edge-b.
func drainWorld(t *testing.T, drainTimeout time.Duration) (*world, *cluster, *cluster) {
	w := newWorld(t)
	cfg := func(c *Config) { c.DrainTimeout = drainTimeout }
	a := w.newClusterWith(func(cl *cluster) {
		cl.inFlight = &inFlightCounts{m: map[string]int{}}
		cl.events = record.NewFakeRecorder(1000)
	}, "edge-a", cfg, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	if err := a.c.register(w.ctx); err != nil {
		t.Fatal(err)
	}
	a.c.registered.Store(true)
	b := w.addCluster("edge-b", nil)
	return w, a, b
}

func sourceRemoved(cl *cluster) (reason, message string) {
	c := meta.FindStatusCondition(cl.only(v1alpha1.RoleSource).Status.Conditions, v1alpha1.ConditionSourceRemoved)
	if c == nil {
		return "", ""
	}
	return c.Reason, c.Message
}

// TestDrain: once the destination is Ready, the source keeps its copy while the gateway
// still proxies requests of its client to it, and removes it when they are done.
func TestDrain(t *testing.T) {
	w, a, b := drainWorld(t, 30*time.Second)
	a.inFlight.set("car-1", 2)
	w.until("draining", func() bool { r, _ := sourceRemoved(a); return r == reasonDraining })
	for range 10 { // well within --drain-timeout
		w.clock.Step(time.Second)
		w.reconcile()
	}
	reason, msg := sourceRemoved(a)
	if reason != reasonDraining || !strings.Contains(msg, "2 requests") || a.copies(v1alpha1.KindDeployment, "svc") != 1 {
		t.Fatalf("with 2 requests in flight: SourceRemoved %s (%s), %d local copies; want Draining, 1", reason, msg, a.copies(v1alpha1.KindDeployment, "svc"))
	}
	if src := a.only(v1alpha1.RoleSource); src.Status.Phase != v1alpha1.PhaseReady {
		t.Errorf("phase %s while draining, want Ready", src.Status.Phase)
	}
	a.inFlight.set("car-1", 0)
	w.until("completed", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	if a.copies(v1alpha1.KindDeployment, "svc") != 0 || b.copies(v1alpha1.KindDeployment, "svc") != 1 {
		t.Errorf("copies: edge-a %d, edge-b %d", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
	}
	events := eventsOf(a.events)
	if count(events, "Normal Draining") != 1 || count(events, "Warning DrainTimeout") != 0 {
		t.Errorf("events %q: want one Draining, no DrainTimeout", events)
	}
}

// TestDrainTimeout: requests that never end hold the copy for --drain-timeout, then it
// goes with a Warning saying how many were cut.
func TestDrainTimeout(t *testing.T) {
	w, a, _ := drainWorld(t, 10*time.Second)
	a.inFlight.set("car-1", 3)
	w.until("draining", func() bool { r, _ := sourceRemoved(a); return r == reasonDraining })
	started := w.clock.Now()
	w.until("completed", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	if waited := w.clock.Since(started); waited < 10*time.Second {
		t.Errorf("removed the copy %s after the drain started, before --drain-timeout 10s", waited)
	}
	events := eventsOf(a.events)
	if count(events, "Warning DrainTimeout 3 requests") != 1 {
		t.Errorf("events %q: want one DrainTimeout naming 3 requests", events)
	}
}

// Without anything in flight, the copy goes at once, and nothing says Draining.
func TestDrainNothingInFlight(t *testing.T) {
	w, a, _ := drainWorld(t, 30*time.Second)
	w.until("completed", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	if events := eventsOf(a.events); count(events, "Normal Draining") != 0 {
		t.Errorf("events %q: want no Draining", events)
	}
}
