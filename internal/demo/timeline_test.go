package demo

import (
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
)

var t0 = time.Date(2026, 11, 27, 13, 5, 1, 0, time.UTC)

// completed is a mobility migration triggered at t0 with every ledger step.
func completed(id string) *record {
	r := newRecord(id)
	r.reason, r.source, r.destination = v1alpha1.ReasonClientMobility, "edge-a", "edge-b"
	r.namespace, r.kind, r.name, r.clientID = "demo", "Deployment", "detector", "car-1"
	r.phase = v1alpha1.PhaseCompleted
	r.triggered = t0
	r.steps[stepProposed] = t0.Add(12 * time.Millisecond)
	r.steps[stepDecided] = t0.Add(1020 * time.Millisecond)
	r.steps[stepReady] = t0.Add(1310 * time.Millisecond)
	r.steps[stepCompleted] = t0.Add(1450 * time.Millisecond)
	return r
}

func TestTimelineLine(t *testing.T) {
	failed := completed("m2")
	failed.phase, failed.statusWhy, failed.message = v1alpha1.PhaseFailed, "NoDestination", "no cluster can cover the client"
	delete(failed.steps, stepReady)
	delete(failed.steps, stepCompleted)
	offload := completed("m3")
	offload.clientID, offload.name, offload.reason = "", "segmenter", v1alpha1.ReasonInsufficientResources
	// The watch saw the object after the ledger's proposal: the proposal is the start.
	late := completed("m4")
	late.triggered = t0.Add(20 * time.Millisecond)

	for _, tc := range []struct {
		name string
		r    *record
		want string
	}{
		{"completed", completed("m1"),
			"13:05:01  car-1 service detector: edge-a → edge-b  (ClientMobility)  proposed +12ms  decided +1.02s  ready +1.31s  source removed +1.45s"},
		{"failed says why", failed,
			"13:05:01  car-1 service detector: edge-a → edge-b  (ClientMobility)  proposed +12ms  decided +1.02s  FAILED (NoDestination: no cluster can cover the client)"},
		{"no client", offload,
			"13:05:01  service segmenter: edge-a → edge-b  (InsufficientResources)  proposed +12ms  decided +1.02s  ready +1.31s  source removed +1.45s"},
		{"trigger seen late", late,
			"13:05:01  car-1 service detector: edge-a → edge-b  (ClientMobility)  proposed +0.0ms  decided +1.01s  ready +1.30s  source removed +1.44s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.timelineLine(); got != tc.want {
				t.Errorf("timelineLine()\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestRecordFinal(t *testing.T) {
	noLedgerCompletion := completed("m")
	delete(noLedgerCompletion.steps, stepCompleted)
	ledgerOnly := completed("m")
	ledgerOnly.phase = v1alpha1.PhaseReady
	aborted := completed("m")
	aborted.phase = v1alpha1.PhaseAborted
	for _, tc := range []struct {
		name string
		r    *record
		want bool
	}{
		{"completed on both sides", completed("m"), true},
		{"object completed, ledger event not read yet", noLedgerCompletion, false},
		{"ledger completed, object not updated yet", ledgerOnly, false},
		{"aborted", aborted, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.final(); got != tc.want {
				t.Errorf("final() = %v, want %v", got, tc.want)
			}
			if got := tc.r.dashboardMigration().Phase == string(v1alpha1.PhaseCompleted); got && !tc.want {
				t.Errorf("dashboard shows %s as Completed before it is final", tc.name)
			}
		})
	}
}

func TestDashboardMigrationSteps(t *testing.T) {
	m := completed("m1").dashboardMigration()
	if m.Workload != "Deployment/demo/detector" || m.Phase != string(v1alpha1.PhaseCompleted) || !m.Started.Equal(t0) {
		t.Fatalf("migration %+v", m)
	}
	var phases []string
	for i, s := range m.Steps {
		phases = append(phases, s.Phase)
		if i > 0 && s.At < m.Steps[i-1].At {
			t.Errorf("steps out of order: %v", m.Steps)
		}
	}
	if got, want := strings.Join(phases, ","), "Proposed,Decided,Ready,Completed"; got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
}

func TestSummary(t *testing.T) {
	slow := completed("m2")
	slow.steps[stepCompleted] = t0.Add(2450 * time.Millisecond)
	failed := completed("m3")
	failed.phase = v1alpha1.PhaseFailed
	running := completed("m4")
	running.phase = v1alpha1.PhaseDecided
	s := summarize([]*record{completed("m1"), slow, failed, running}, 10, 2, 1, 25*time.Millisecond)
	got := strings.Join(s.lines(), "\n")
	for _, want := range []string{
		"migrations: 2 completed, 1 failed",
		"source removed +1.95s",
		"proposed +12ms",
		"locator: 10 answers (2.5ms each on average), 2 before the service first ran, 1 errors",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}

func TestCollectorPrintsEachMigrationOnce(t *testing.T) {
	var out strings.Builder
	c := &collector{narr: newNarrator(&out), records: map[string]*record{}, triggered: map[string]time.Time{}}
	mig := &v1alpha1.Migration{}
	mig.Namespace, mig.Name = "demo", "detector-x"
	mig.Spec.Workload = v1alpha1.WorkloadReference{Kind: "Deployment", Name: "detector"}
	mig.Spec.Reason, mig.Spec.ClientID = v1alpha1.ReasonClientMobility, "car-1"
	c.observeMigration("edge-a", mig, t0) // Pending: no ledger id yet

	mig.Status = v1alpha1.MigrationStatus{Role: v1alpha1.RoleSource, Phase: v1alpha1.PhaseProposed, LedgerID: "L1"}
	c.observeMigration("edge-a", mig, t0.Add(time.Millisecond))
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	c.observeLedger(chaincode.Event{Type: chaincode.EventMigrationProposed, MigrationID: "L1", ClusterID: "edge-a", Time: at(3 * time.Millisecond)}, t0)
	c.observeLedger(chaincode.Event{Type: chaincode.EventBidSubmitted, MigrationID: "L1", ClusterID: "edge-b", Time: at(5 * time.Millisecond)}, t0)
	c.observeLedger(chaincode.Event{Type: chaincode.EventMigrationDecided, MigrationID: "L1", Destination: "edge-b", Time: at(8 * time.Millisecond)}, t0)
	c.observeLedger(chaincode.Event{Type: chaincode.EventCapacityReported, ClusterID: "edge-b", Time: at(9 * time.Millisecond)}, t0)
	// A destination's object carries the ledger id in its spec: it must not become a source.
	dest := &v1alpha1.Migration{Spec: v1alpha1.MigrationSpec{LedgerID: "L1", Reason: v1alpha1.ReasonClientMobility}}
	dest.Namespace, dest.Name = "demo", "L1"
	c.observeMigration("edge-b", dest, t0)
	c.observeLedger(chaincode.Event{Type: chaincode.EventMigrationReady, MigrationID: "L1", ClusterID: "edge-b", Time: at(90 * time.Millisecond)}, t0)
	mig.Status.Phase, mig.Status.Destination = v1alpha1.PhaseCompleted, "edge-b"
	c.observeMigration("edge-a", mig, t0)
	if out.Len() != 0 {
		t.Fatalf("printed before the ledger's Completed event: %q", out.String())
	}
	c.observeLedger(chaincode.Event{Type: chaincode.EventMigrationCompleted, MigrationID: "L1", ClusterID: "edge-a", Time: at(130 * time.Millisecond)}, t0)
	c.observeMigration("edge-a", mig, t0)

	want := "13:05:01  car-1 service detector: edge-a → edge-b  (ClientMobility)  proposed +3.0ms  decided +8.0ms  ready +90ms  source removed +130ms\n"
	if out.String() != want {
		t.Errorf("printed\n%q\nwant\n%q", out.String(), want)
	}
	st := c.state(t0)
	if len(st.Ledger) != 5 {
		t.Errorf("dashboard ledger has %d events, want 5 (no CapacityReported): %+v", len(st.Ledger), st.Ledger)
	}
	if len(st.Migrations) != 1 || st.Migrations[0].Source != "edge-a" || st.Migrations[0].Phase != string(v1alpha1.PhaseCompleted) {
		t.Errorf("dashboard migrations %+v", st.Migrations)
	}
	r, ok := c.finished(t0, func(r *record) bool { return r.name == "detector" })
	if !ok || r.destination != "edge-b" {
		t.Errorf("finished() = %+v, %v", r, ok)
	}
}
