package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// benchLedger opens a ledger on disk with a source cluster and two bidders.
func benchLedger(b *testing.B, opts Options) (src, bidders ledger.Ledger) {
	opts.AdminMSP = "Org1MSP"
	s, err := Open(filepath.Join(b.TempDir(), "ledger.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	src, bidders = s.Client("Org1MSP"), s.Client("Org2MSP")
	reg := func(l ledger.Ledger, id string) {
		msp := map[ledger.Ledger]string{src: "Org1MSP", bidders: "Org2MSP"}[l]
		if _, err := src.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: id, MSPID: msp}); err != nil {
			b.Fatal(err)
		}
		if _, err := l.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: id, Capacity: chaincode.Resources{CPUMilli: 8000, MemoryBytes: 32 << 30, GPUMemoryBytes: 32 << 30}}); err != nil {
			b.Fatal(err)
		}
	}
	reg(src, "edge-a")
	reg(bidders, "edge-b")
	reg(bidders, "edge-c")
	return src, bidders
}

func benchProposal(id string) chaincode.Proposal {
	return chaincode.Proposal{ID: id, Source: "edge-a", Workload: "Deployment/edge/detector",
		Metadata: chaincode.WorkloadMetadata{Image: "detector:1", CPUMilli: 2000, MemoryBytes: 4 << 30, GPUMemoryBytes: 2 << 30},
		Reason:   chaincode.ReasonInsufficientResources, BidTimeoutMillis: chaincode.MaxBidTimeoutMillis}
}

// durability runs a benchmark with a disk sync at every commit (the default) and without.
func durability(b *testing.B, bench func(b *testing.B, opts Options)) {
	b.Run("sync", func(b *testing.B) { bench(b, Options{}) })
	b.Run("nosync", func(b *testing.B) { bench(b, Options{NoSync: true}) })
}

// BenchmarkProposeToDecide measures one migration's way through the ledger: propose, a bid
// from each of two clusters at once (as their deschedulers would), decide. It reports the
// latency percentiles of the whole sequence.
func BenchmarkProposeToDecide(b *testing.B) { durability(b, benchProposeToDecide) }

func benchProposeToDecide(b *testing.B, opts Options) {
	src, bidders := benchLedger(b, opts)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		id := fmt.Sprintf("m%d", i)
		if _, err := src.ProposeMigration(ctx, benchProposal(id)); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for j, c := range []string{"edge-b", "edge-c"} {
			wg.Go(func() {
				if _, err := bidders.SubmitBid(ctx, id, chaincode.BidInput{ClusterID: c, CanHost: true, Score: float64(j)}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		m, err := src.Decide(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if m.Decision.Destination != "edge-c" {
			b.Fatalf("decided %+v", m.Decision)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkTransactions measures committed transactions per second with many concurrent
// clients, as when every cluster's descheduler reports and bids at once.
func BenchmarkTransactions(b *testing.B) { durability(b, benchTransactions) }

func benchTransactions(b *testing.B, opts Options) {
	_, bidders := benchLedger(b, opts)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := bidders.ReportCapacity(ctx, "edge-b", chaincode.Resources{CPUMilli: i}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "tx/s")
}
