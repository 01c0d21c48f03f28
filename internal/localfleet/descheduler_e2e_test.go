package localfleet_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

// TestE2EFleetDescheduler: with the descheduler on, every cluster registers itself on the
// shared ledger under its own MSP, and a descheduler killed with SIGKILL comes back with
// StartDescheduler.
func TestE2EFleetDescheduler(t *testing.T) {
	f := fleettest.Start(t, localfleet.Options{Clusters: 2, Log: testLog{t}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	observer, err := f.Ledger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	var clusters []*chaincode.Cluster
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		clusters, err = observer.ListClusters(ctx)
		return err == nil && len(clusters) == len(f.Edges), nil
	})
	if err != nil {
		t.Fatalf("clusters on the ledger: %+v (%v), want both edges registered", clusters, err)
	}
	for i, c := range clusters {
		e := f.Edges[i]
		if c.ID != e.ID || c.MSPID != e.MSPID || c.Endpoint != e.LocatorURL {
			t.Errorf("ledger has cluster %s (MSP %s, endpoint %s), want %s (MSP %s, endpoint %s)", c.ID, c.MSPID, c.Endpoint, e.ID, e.MSPID, e.LocatorURL)
		}
	}

	e := f.Edges[0]
	killed := e.DeschedulerPID()
	if killed == 0 {
		t.Fatal("no descheduler runs")
	}
	e.KillDescheduler()
	if err := syscall.Kill(killed, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("descheduler %d alive after KillDescheduler (kill -0: %v)", killed, err)
	}
	if pid := e.DeschedulerPID(); pid != 0 {
		t.Fatalf("DeschedulerPID() = %d after the kill, want 0", pid)
	}
	if !slices.Contains(f.PIDs(), killed) {
		t.Errorf("the killed descheduler %d is no longer among the fleet's PIDs", killed)
	}
	if err := e.StartDescheduler(ctx); err != nil {
		t.Fatalf("restarting the descheduler: %v", err)
	}
	restarted := e.DeschedulerPID()
	if restarted == 0 || restarted == killed {
		t.Fatalf("DeschedulerPID() = %d after the restart (killed %d)", restarted, killed)
	}
	if err := e.StartDescheduler(ctx); err == nil {
		t.Error("a second StartDescheduler while one runs succeeded")
	}
	e.StopDescheduler()
	if err := syscall.Kill(restarted, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("descheduler %d alive after StopDescheduler (kill -0: %v)", restarted, err)
	}
}
