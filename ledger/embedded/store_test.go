package embedded

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/ledgertest"
)

func open(t *testing.T, path string) *Store { return openWith(t, path, Options{AdminMSP: "Org1MSP"}) }

func openWith(t *testing.T, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBehaviour(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) *ledgertest.Backend {
		path := filepath.Join(t.TempDir(), "ledger.db")
		clock := ledgertest.NewClock()
		opts := Options{AdminMSP: "Org1MSP", DeadAfter: 5 * time.Second, Now: clock.Now}
		s := openWith(t, path, opts)
		return &ledgertest.Backend{
			Orgs: [2]ledger.Ledger{s.Client("Org1MSP"), s.Client("Org2MSP")},
			MSPs: [2]string{"Org1MSP", "Org2MSP"},
			Restart: func(t *testing.T) [2]ledger.Ledger {
				if err := s.Close(); err != nil {
					t.Fatalf("closing: %v", err)
				}
				s = openWith(t, path, opts)
				return [2]ledger.Ledger{s.Client("Org1MSP"), s.Client("Org2MSP")}
			},
			Advance: clock.Advance,
		}
	})
}

func TestClosedStoreRefuses(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client("Org1MSP").RegisterCluster(context.Background(), chaincode.ClusterRegistration{ID: "a"}); err == nil {
		t.Error("a closed store accepted a transaction")
	}
	if _, err := s.Events(context.Background(), ledger.Checkpoint{}); err == nil {
		t.Error("a closed store opened an event stream")
	}
}

func TestQueriesCannotWrite(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx := context.Background()
	if _, err := s.Evaluate(ctx, "Org1MSP", "RegisterCluster", `{"id":"a"}`); chaincode.CodeOf(err) != chaincode.CodeInvalid {
		t.Errorf("evaluating a transaction: %v, want an invalid-argument error", err)
	}
	clusters, err := s.Client("Org1MSP").ListClusters(ctx)
	if err != nil || len(clusters) != 0 {
		t.Errorf("clusters %v (%v), want none", clusters, err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Open(filepath.Join(t.TempDir(), "ledger.db"), Options{Registerer: reg, AdminMSP: "Org1MSP"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	l := s.Client("Org1MSP")
	if _, err := l.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: "edge-a", MSPID: "Org1MSP"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: "edge-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client("Org2MSP").RegisterCluster(ctx, chaincode.ClusterRegistration{ID: "edge-a"}); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Fatalf("taking over edge-a: %v", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "edgemigrate_ledger_transactions_total":
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			case "edgemigrate_ledger_commit_duration_seconds":
				got["blocks"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	// Committed: the set-up, the admission and the registration.
	if got["committed"] != 3 || got["refused"] != 1 || got["blocks"] < 1 {
		t.Errorf("metrics %v, want three committed, one refused and at least one block", got)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "other.db"), Options{Registerer: reg}); err == nil {
		t.Error("a second ledger registered the same metrics")
	}
}

// TestAdminMSPIsKept: reopening with the same admin is a restart; with another admin or
// dead-after window, a clear error.
func TestAdminMSPIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{AdminMSP: "Org1MSP", DeadAfter: time.Minute}); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("reopening with another dead-after window: %v, want a conflict", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "other.db"), Options{AdminMSP: "Org1MSP", DeadAfter: 1500 * time.Millisecond}); chaincode.CodeOf(err) != chaincode.CodeInvalid {
		t.Errorf("a dead-after window of 1.5 s: %v, want invalid", err)
	}
	if _, err := Open(path, Options{AdminMSP: "Org2MSP"}); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("reopening with another admin: %v, want a conflict", err)
	}
}

// TestPruneKeepsOpenMigrations: after the retention window the store compacts finished
// migrations and drops old events, and every open migration stays as it was.
func TestPruneKeepsOpenMigrations(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx := context.Background()
	start := time.Now().Add(-chaincode.RetentionWindow - chaincode.MaxClockSkew - time.Hour)
	s.now = func() time.Time { return start }
	admin, other := s.Client("Org1MSP"), s.Client("Org2MSP")
	for id, l := range map[string]ledger.Ledger{"edge-a": admin, "edge-b": other} {
		msp := map[string]string{"edge-a": "Org1MSP", "edge-b": "Org2MSP"}[id]
		if _, err := admin.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: id, MSPID: msp}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: id, Capacity: chaincode.Resources{CPUMilli: 8000}}); err != nil {
			t.Fatal(err)
		}
	}
	propose := func(id string) {
		t.Helper()
		p := chaincode.Proposal{ID: id, Source: "edge-a", Workload: "Deployment/edge/x", Metadata: chaincode.WorkloadMetadata{Image: "x", CPUMilli: 1},
			Reason: chaincode.ReasonManual, BidTimeoutMillis: chaincode.MaxBidTimeoutMillis}
		if _, err := admin.ProposeMigration(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := other.SubmitBid(ctx, id, chaincode.BidInput{ClusterID: "edge-b", CanHost: true, Score: 1}); err != nil {
			t.Fatal(err)
		}
	}
	propose("done")
	if _, err := admin.Abort(ctx, "done", "no longer needed"); err != nil {
		t.Fatal(err)
	}
	propose("open")
	s.now = time.Now
	if err := s.prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GetMigration(ctx, "done"); chaincode.CodeOf(err) != chaincode.CodeNotFound {
		t.Errorf("finished migration after pruning: %v, want not found", err)
	}
	open, err := admin.ListOpenMigrations(ctx)
	if err != nil || len(open) != 1 || open[0].ID != "open" || len(open[0].Bids) != 1 {
		t.Errorf("open migrations after pruning: %+v (%v), want open with its bid", open, err)
	}
	events, err := s.readEvents(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// What is left of the log is what was stamped within the window: the set-up and the compaction.
	if len(events) != 2 || events[0].Type != chaincode.EventLedgerInitialised || events[1].Type != chaincode.EventMigrationCompacted {
		t.Errorf("events after pruning: %v", events)
	}
	// A consumer from its old checkpoint resumes at the oldest event kept.
	ch, err := s.Events(ctx, ledger.Checkpoint{Block: 2})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != chaincode.EventMigrationCompacted {
		t.Errorf("resumed at %+v", ev)
	}
}

// TestEventsFromHead: a stream from ledger.Head carries only what is committed after it.
func TestEventsFromHead(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := s.Client("Org1MSP")
	if _, err := admin.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: "edge-a", MSPID: "Org1MSP"}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Events(ctx, ledger.Head)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: "edge-a"}); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != chaincode.EventClusterRegistered {
		t.Errorf("first event from the head: %+v, want the registration", ev)
	}
}
