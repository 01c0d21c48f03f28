package fabric

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/fabric/fabrictest"
	"github.com/edgemigrate/edgemigrate/ledger/ledgertest"
)

// up starts a network for the test, or skips, saying why, when there are no binaries.
func up(tb testing.TB) *network {
	return &network{fabrictest.Up(tb, "Fabric leg of the ledger suite")}
}

type network struct{ *fabrictest.Network }

func (n *network) dial(tb testing.TB, org int) ledger.Ledger {
	tb.Helper()
	o := n.Orgs[org]
	l, err := Dial(Config{PeerEndpoint: o.PeerEndpoint, TLSCACertPath: o.TLSCACert, ServerNameOverride: o.ServerName,
		MSPID: o.MSPID, CertPath: o.Cert, KeyPath: o.Key, Channel: n.Channel, Chaincode: n.Chaincode})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// TestBehaviour runs the ledger suite against a real Fabric network: one network for all
// of it, each test with ids of its own.
func TestBehaviour(t *testing.T) {
	n := up(t)
	orgs := [2]ledger.Ledger{n.dial(t, 0), n.dial(t, 1)}
	ledgertest.Run(t, func(t *testing.T) *ledgertest.Backend {
		return &ledgertest.Backend{
			// network.sh's init transaction names the first organisation the ledger's admin.
			Orgs: orgs,
			MSPs: [2]string{n.Orgs[0].MSPID, n.Orgs[1].MSPID},
			// The network keeps running; the client restarts with new connections and
			// resumes from its checkpoint, as a restarted descheduler would.
			Restart: func(t *testing.T) [2]ledger.Ledger { return [2]ledger.Ledger{n.dial(t, 0), n.dial(t, 1)} },
		}
	})
}

func TestConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  Config
	}{
		{"empty", Config{}},
		{"no certificate", Config{PeerEndpoint: "127.0.0.1:1", MSPID: "Org1MSP", Channel: "c", Chaincode: "cc", CertPath: filepath.Join(dir, "none.pem")}},
	}
	for _, tc := range cases {
		if _, err := Dial(tc.cfg); err == nil {
			t.Errorf("%s: Dial succeeded", tc.name)
		}
	}
}

// BenchmarkSubmitToCommit measures Fabric's submit-to-commit latency at the network's
// BatchTimeout (100 ms from hack/fabric), reported as p50 and p99.
func BenchmarkSubmitToCommit(b *testing.B) {
	n := up(b)
	l := n.dial(b, 0)
	ctx := context.Background()
	id := fmt.Sprintf("bench-%d", time.Now().UnixNano()%1e9)
	if _, err := l.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: id, MSPID: n.Orgs[0].MSPID}); err != nil {
		b.Fatal(err)
	}
	if _, err := l.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: id}); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := l.ReportCapacity(ctx, id, chaincode.Resources{CPUMilli: int64(i)}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
