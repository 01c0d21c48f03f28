package descheduler

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
)

// TestLiarDoesNotTakeTheService: a peer that bids 100 on everything and reports Ready
// without running anything (edge-b's own ledger identity, no controller behind it) wins the
// decision, but the source's request through its public endpoint fails, so the source
// aborts and its copy never leaves. At every step the service has a Ready copy.
func TestLiarDoesNotTakeTheService(t *testing.T) {
	for name, liar := range map[string]http.HandlerFunc{
		// A gateway that runs nothing for the client: the real gateway's 503 or redirect.
		"nothing runs": func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no such service", http.StatusServiceUnavailable)
		},
		// Something answers 200, but no pod of edge-b behind its gateway.
		"not its gateway": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) },
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			a := w.addCluster("edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
			srv := httptest.NewServer(liar)
			t.Cleanup(srv.Close)
			w.admit("edge-b")
			l := w.store.Client("MSP-edge-b")
			if _, err := l.RegisterCluster(w.ctx, chaincode.ClusterRegistration{ID: "edge-b", Location: chaincode.Location{Lat: sites["edge-b"].Lat, Lon: sites["edge-b"].Lon},
				CoverageRadiusM: 1000, Capacity: chaincode.Resources{CPUMilli: 1 << 20, MemoryBytes: 1 << 50, GPUSlots: 1 << 10, GPUMemoryBytes: 1 << 50},
				Endpoint: srv.URL}); err != nil {
				t.Fatal(err)
			}
			lies := func() {
				open, err := l.ListOpenMigrations(w.ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range open {
					switch {
					case m.State == chaincode.StateProposed:
						_, _ = l.SubmitBid(w.ctx, m.ID, chaincode.BidInput{ClusterID: "edge-b", CanHost: true, CoversClient: true, Score: 100})
					case m.State == chaincode.StateDecided && m.Decision.Destination == "edge-b":
						_, _ = l.ReportReady(w.ctx, m.ID, "edge-b")
					}
				}
			}
			w.until("the source aborts", func() bool {
				lies()
				if n := a.copies(v1alpha1.KindDeployment, "svc"); n != 1 {
					t.Fatalf("the source runs %d copies\n%s", n, w.dump())
				}
				return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseAborted
			})
			m := a.only(v1alpha1.RoleSource)
			cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionDestinationVerified)
			if m.Status.Destination != "edge-b" || m.Status.Reason != reasonVerifyFailed || cond == nil || cond.Status != "False" {
				t.Errorf("source: destination %q reason %q condition %+v, want edge-b, %s, DestinationVerified False", m.Status.Destination, m.Status.Reason, cond, reasonVerifyFailed)
			}
			if cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionSourceRemoved); cond != nil {
				t.Errorf("the source started removing its copy: %+v", cond)
			}
			lm, err := l.GetMigration(w.ctx, m.Status.LedgerID)
			if err != nil || lm.State != chaincode.StateAborted {
				t.Errorf("ledger: %+v (%v), want Aborted", lm, err)
			}
		})
	}
}

// TestVerifiedThroughTheGateway: the source's request went through the destination's real
// gateway to a Ready pod there, at the path of the copy's readiness probe.
func TestVerifiedThroughTheGateway(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	b := w.addCluster("edge-b", nil)
	w.until("the source completes", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	cond := meta.FindStatusCondition(a.only(v1alpha1.RoleSource).Status.Conditions, v1alpha1.ConditionDestinationVerified)
	if cond == nil || cond.Status != "True" || cond.Reason != reasonVerified {
		t.Errorf("DestinationVerified %+v, want True", cond)
	}
	if b.gateway.requests.Load() == 0 || b.gateway.lastPath.Load() != "/healthz" {
		t.Errorf("edge-b's pods saw %d requests, the last at %v; want the source's at /healthz", b.gateway.requests.Load(), b.gateway.lastPath.Load())
	}
}

// TestReportFailedAfterReadyLeavesOneCopy: a destination that reported Ready cannot hand the
// migration back (the source may be removing its copy); the migration completes there.
func TestReportFailedAfterReadyLeavesOneCopy(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	b := w.addCluster("edge-b", nil)
	w.until("the destination is Ready", func() bool {
		ms := b.migrations(v1alpha1.RoleDestination)
		return len(ms) == 1 && ms[0].Status.Phase == v1alpha1.PhaseReady
	})
	id := b.only(v1alpha1.RoleDestination).Spec.LedgerID
	if _, err := b.ledger.ReportFailed(w.ctx, id, "edge-b", "changed my mind"); chaincode.CodeOf(err) != chaincode.CodeConflict || !strings.Contains(err.Error(), "after reporting it Ready") {
		t.Fatalf("ReportFailed after Ready: %v, want a conflict", err)
	}
	w.until("the source completes", func() bool {
		if a.copies(v1alpha1.KindDeployment, "svc")+b.copies(v1alpha1.KindDeployment, "svc") == 0 {
			t.Fatalf("no copy anywhere\n%s", w.dump())
		}
		return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted
	})
	if a.copies(v1alpha1.KindDeployment, "svc") != 0 || b.copies(v1alpha1.KindDeployment, "svc") != 1 {
		t.Errorf("copies: edge-a %d, edge-b %d; want 0 and 1", a.copies(v1alpha1.KindDeployment, "svc"), b.copies(v1alpha1.KindDeployment, "svc"))
	}
}

// TestNoClientKeepsTheLedgersWord: a workload that serves no client cannot be reached
// through a gateway; the source says so in a Warning Event and completes.
func TestNoClientKeepsTheLedgersWord(t *testing.T) {
	w := newWorld(t)
	d := deployment("svc", 1, "2Gi")
	delete(d.Spec.Template.Annotations, api.AnnotationClientID)
	a := w.addCluster("edge-a", nil, d, manual(v1alpha1.KindDeployment, "svc"))
	w.addCluster("edge-b", nil)
	w.until("the source completes", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	cond := meta.FindStatusCondition(a.only(v1alpha1.RoleSource).Status.Conditions, v1alpha1.ConditionDestinationVerified)
	if cond == nil || cond.Status != "Unknown" || cond.Reason != reasonUnverifiable {
		t.Errorf("DestinationVerified %+v, want Unknown %s", cond, reasonUnverifiable)
	}
}

// TestOverdueMigrationExpires: a migration whose source went silent after proposing stays
// open until a member expires it; edge-b does, after the deadline and twice the grace.
func TestOverdueMigrationExpires(t *testing.T) {
	w := newWorldWith(t, true)
	b := w.addCluster("edge-b", nil)
	w.admit("edge-a")
	src := w.store.Client("MSP-edge-a")
	if _, err := src.RegisterCluster(w.ctx, chaincode.ClusterRegistration{ID: "edge-a", Location: chaincode.Location{Lat: sites["edge-a"].Lat, Lon: sites["edge-a"].Lon}, CoverageRadiusM: 1000}); err != nil {
		t.Fatal(err)
	}
	id := "edge-a-000000000001"
	if _, err := src.ProposeMigration(w.ctx, chaincode.Proposal{ID: id, Source: "edge-a", Workload: "Deployment/apps/svc",
		Metadata: chaincode.WorkloadMetadata{Image: "x", CPUMilli: 1}, Reason: chaincode.ReasonManual,
		BidTimeoutMillis: 2000}); err != nil {
		t.Fatal(err)
	}
	b.c.resync(w.ctx)
	if m, _ := src.GetMigration(w.ctx, id); m.State != chaincode.StateProposed {
		t.Fatalf("before the grace: %s", m.State)
	}
	w.clock.Step(2*chaincode.ExpiryGrace + chaincode.MaxClockSkew + 3*time.Second)
	b.c.resync(w.ctx)
	m, err := src.GetMigration(w.ctx, id)
	if err != nil || m.State != chaincode.StateAborted || m.History[len(m.History)-1].Event != chaincode.EventMigrationExpired {
		t.Errorf("after twice the grace: %+v (%v), want expired", m, err)
	}
}

// TestNoServicePortKeepsTheLedgersWord: a workload whose pods declare no port for the
// gateway cannot be reached through it either (as kwok fleets' workloads).
func TestNoServicePortKeepsTheLedgersWord(t *testing.T) {
	w := newWorld(t)
	d := deployment("svc", 1, "2Gi")
	d.Spec.Template.Spec.Containers[0].Ports = nil
	a := w.addCluster("edge-a", nil, d, manual(v1alpha1.KindDeployment, "svc"))
	w.addCluster("edge-b", nil)
	w.until("the source completes", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	cond := meta.FindStatusCondition(a.only(v1alpha1.RoleSource).Status.Conditions, v1alpha1.ConditionDestinationVerified)
	if cond == nil || cond.Status != "Unknown" || !strings.Contains(cond.Message, "no service port") {
		t.Errorf("DestinationVerified %+v, want Unknown for the missing port", cond)
	}
}

// TestRegisterWaitsForAdmission: a cluster whose id is not admitted yet waits, and
// registers once the admin admits it; an id admitted for another MSP is an error at once.
func TestRegisterWaitsForAdmission(t *testing.T) {
	w := newWorld(t)
	cl := w.newCluster("edge-a", nil)
	admin := w.store.Client(adminMSP)
	if _, err := admin.RemoveCluster(w.ctx, "edge-a", "not yet"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cl.c.register(w.ctx) }()
	for !w.clock.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("register returned before the admission: %v", err)
	default:
	}
	if _, err := admin.AdmitCluster(w.ctx, chaincode.AdmissionInput{ClusterID: "edge-a", MSPID: "MSP-edge-a"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Step(admissionRetry)
	if err := <-done; err != nil {
		t.Fatalf("register after the admission: %v", err)
	}

	other := w.newCluster("edge-b", nil)
	if _, err := admin.RemoveCluster(w.ctx, "edge-b", "for another MSP"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AdmitCluster(w.ctx, chaincode.AdmissionInput{ClusterID: "edge-b", MSPID: "MSP-someone-else"}); err != nil {
		t.Fatal(err)
	}
	if err := other.c.register(w.ctx); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Errorf("registering an id admitted for another MSP: %v, want %s at once", err, chaincode.CodeForbidden)
	}
}

// TestVerificationNeverSendsTheTokenInClear: a destination whose endpoint is plain HTTP
// beyond loopback is not asked (the request would carry the car's token in clear); the
// source aborts and keeps its copy.
func TestVerificationNeverSendsTheTokenInClear(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	// 192.0.2.0/24 is TEST-NET-1: nothing is sent there, the check refuses first.
	w.addCluster("edge-b", func(c *Config) { c.PublicEndpoint = "http://192.0.2.1:8090" })
	w.until("the source aborts", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseAborted })
	cond := meta.FindStatusCondition(a.only(v1alpha1.RoleSource).Status.Conditions, v1alpha1.ConditionDestinationVerified)
	if cond == nil || !strings.Contains(cond.Message, "plain HTTP") || a.copies(v1alpha1.KindDeployment, "svc") != 1 {
		t.Errorf("DestinationVerified %+v, source copies %d; want a refusal of plain HTTP and the copy kept", cond, a.copies(v1alpha1.KindDeployment, "svc"))
	}
}
