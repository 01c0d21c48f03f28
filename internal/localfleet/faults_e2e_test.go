package localfleet_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

// TestE2EFleetFaults: with two descheduler replicas the public endpoint follows the
// leader when it is killed; the ledger server, the kube-apiserver and the webhook come back
// after a SIGKILL at the same address; a supervised replica that exits is restarted.
func TestE2EFleetFaults(t *testing.T) {
	f := fleettest.Start(t, localfleet.Options{Clusters: 1, DeschedulerReplicas: 2, Supervise: true, Log: testLog{t}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := f.Edges[0]
	if e.Replicas() != 2 || e.ReplicaURL(0) == e.LocatorURL || e.ReplicaURL(0) == e.ReplicaURL(1) {
		t.Fatalf("%d replicas at %s and %s behind %s", e.Replicas(), e.ReplicaURL(0), e.ReplicaURL(1), e.LocatorURL)
	}
	want := []string{"ledger", "edge-a/kube-apiserver", "edge-a/extender", "edge-a/default-scheduler", "edge-a/webhook", "edge-a/descheduler-0", "edge-a/descheduler-1"}
	var got []string
	for _, tg := range f.Targets() {
		got = append(got, tg.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	car := f.CarClient(5*time.Second, false)
	publicReady := func(what string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			resp, err := car.Get(e.LocatorURL + "/readyz")
			if err != nil {
				return false, nil
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
		if err != nil {
			t.Fatalf("%s: the public endpoint never answered ready: %v", what, err)
		}
	}

	t.Run("hand-over", func(t *testing.T) {
		leader, err := e.LeaderReplica(ctx)
		if err != nil {
			t.Fatal(err)
		}
		publicReady("at start")
		began := time.Now()
		e.KillReplica(leader)
		next, err := e.LeaderReplica(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if next == leader {
			t.Fatalf("replica %d still leads after it was killed", leader)
		}
		publicReady("after the kill")
		t.Logf("replica %d took over %s after replica %d was killed", next, time.Since(began).Round(100*time.Millisecond), leader)
		if e.ReplicaPID(leader) != 0 {
			t.Errorf("the killed replica was restarted by the supervisor")
		}
		if err := e.StartReplica(ctx, leader); err != nil {
			t.Fatal(err)
		}
		if err := e.StartReplica(ctx, leader); err == nil {
			t.Error("starting a running replica succeeded")
		}
	})

	t.Run("supervised", func(t *testing.T) {
		standby, pid := -1, 0
		leader, err := e.LeaderReplica(ctx)
		if err != nil {
			t.Fatal(err)
		}
		standby = 1 - leader
		pid = e.ReplicaPID(standby)
		// A crash the fleet did not cause: the supervisor restarts the process.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			p := e.ReplicaPID(standby)
			return p != 0 && p != pid, nil
		})
		if err != nil || e.Restarts(localfleet.ReplicaName(standby)) != 1 {
			t.Fatalf("replica %d (pid %d) not restarted: pid %d, %d restarts", standby, pid, e.ReplicaPID(standby), e.Restarts(localfleet.ReplicaName(standby)))
		}
	})

	t.Run("ledger", func(t *testing.T) {
		killed := f.LedgerPID()
		f.KillLedger()
		if err := syscall.Kill(killed, 0); !errors.Is(err, syscall.ESRCH) || f.LedgerPID() != 0 {
			t.Fatalf("ledger %d alive after KillLedger (kill -0: %v)", killed, err)
		}
		if _, err := f.Ledger(ctx); err == nil {
			t.Fatal("the ledger answers while killed")
		}
		if err := f.StartLedger(ctx); err != nil {
			t.Fatal(err)
		}
		l, err := f.Ledger(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		clusters, err := l.ListClusters(ctx)
		if err != nil || len(clusters) != 1 {
			t.Fatalf("after the restart the ledger lists %v (%v); want edge-a, from the same database", clusters, err)
		}
		if !slices.Contains(f.PIDs(), killed) {
			t.Errorf("the killed ledger %d is no longer among the fleet's PIDs", killed)
		}
	})

	t.Run("apiserver", func(t *testing.T) {
		if err := f.Kill(localfleet.Target{Edge: e.ID, Name: localfleet.ProcessAPIServer}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
			t.Fatal("the API server answers while killed")
		}
		if err := f.Start(ctx, localfleet.Target{Edge: e.ID, Name: localfleet.ProcessAPIServer}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		publicReady("after the API server's restart")
	})

	t.Run("webhook", func(t *testing.T) {
		tg := localfleet.Target{Edge: e.ID, Name: localfleet.ProcessWebhook}
		if err := f.Kill(tg); err != nil {
			t.Fatal(err)
		}
		if err := f.Start(ctx, tg); err != nil { // waits until the API server calls it again
			t.Fatal(err)
		}
		if err := f.Kill(localfleet.Target{Edge: e.ID, Name: "nothing"}); err == nil {
			t.Error("killing an unknown process succeeded")
		}
	})
}
