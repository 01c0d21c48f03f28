package fabric

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"

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

// TestFollowBacksOff runs the event stream's reconnection logic over streams that fail
// (they end at once, as the gateway's do when the peer is unreachable) and streams that
// deliver: each reopening starts after the last event delivered, the waits double while
// reopening fails, and a stream that delivered resets them.
func TestFollowBacksOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgertest.StreamTimeout)
	defer cancel()
	stream := func(blocks ...uint64) <-chan *client.ChaincodeEvent {
		ch := make(chan *client.ChaincodeEvent, len(blocks))
		for _, b := range blocks {
			ch <- &client.ChaincodeEvent{BlockNumber: b, TransactionID: fmt.Sprintf("tx%d", b), EventName: "E",
				Payload: []byte(fmt.Sprintf(`{"type":"E","clusterId":"c%d"}`, b))}
		}
		close(ch)
		return ch
	}
	// After the first stream: three failed reopenings, one that delivers, then failures.
	plan := []<-chan *client.ChaincodeEvent{stream(), stream(), stream(), stream(3), stream(), stream()}
	var opens []ledger.Checkpoint
	open := func(_ context.Context, after ledger.Checkpoint) (<-chan *client.ChaincodeEvent, error) {
		opens = append(opens, after)
		if len(opens) > len(plan) {
			cancel()
			return nil, errors.New("done")
		}
		return plan[len(opens)-1], nil
	}
	var waits []time.Duration
	cfg := Config{RetryInterval: time.Millisecond, MaxRetryInterval: time.Hour, OnRetry: func(d time.Duration, _ error) { waits = append(waits, d) }}
	out := make(chan ledger.Event, 16)
	follow(ctx, cfg, stream(1, 2), func() {}, ledger.Checkpoint{}, open, out)
	var got []uint64
	for ev := range out {
		got = append(got, ev.Checkpoint.Block)
	}
	if !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("delivered blocks %v, want 1 2 3 once each", got)
	}
	at := func(b uint64) ledger.Checkpoint { return ledger.Checkpoint{Block: b, TxID: fmt.Sprintf("tx%d", b)} }
	if want := []ledger.Checkpoint{at(2), at(2), at(2), at(2), at(3), at(3), at(3)}; !slices.Equal(opens, want) {
		t.Errorf("reopened after %v, want %v", opens, want)
	}
	ms := time.Millisecond
	if want := []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 1 * ms, 2 * ms, 4 * ms}; !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v (doubling while reopening fails, reset by a stream that delivered)", waits, want)
	}
}
