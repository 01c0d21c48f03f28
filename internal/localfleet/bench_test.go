package localfleet_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

// BenchmarkE2EFleetStart starts and stops fleets of 2 and 3 clusters, without and with the
// descheduler, and reports the start time and the resident memory of all their processes
// once ready (-v lists it by program).
//
//	go test -run '^$' -bench E2EFleetStart -benchtime 1x ./localfleet/
func BenchmarkE2EFleetStart(b *testing.B) {
	if testing.Short() {
		b.Skip("SKIP: starts real Kubernetes clusters; not run with -short")
	}
	bin := fleettest.Binary(b)
	for _, tc := range []struct {
		clusters    int
		descheduler bool
	}{{2, false}, {3, false}, {2, true}, {3, true}} {
		b.Run(fmt.Sprintf("clusters=%d/descheduler=%v", tc.clusters, tc.descheduler), func(b *testing.B) {
			var rss int64
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				f, err := localfleet.Start(ctx, localfleet.Options{Clusters: tc.clusters, Binary: bin, NoDescheduler: !tc.descheduler})
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rss = 0
				byProgram := map[string]int64{}
				for _, pid := range f.PIDs() {
					kb := vmRSS(b, pid)
					rss += kb
					comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
					byProgram[strings.TrimSpace(string(comm))] += kb
				}
				for _, prog := range slices.Sorted(maps.Keys(byProgram)) {
					b.Logf("%-24s %6.0f MiB", prog, float64(byProgram[prog])/(1<<20))
				}
				f.Stop()
				b.StartTimer()
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/start")
			b.ReportMetric(float64(rss)/(1<<20), "MiB-rss")
		})
	}
}

// vmRSS is a process's resident set in bytes, from /proc.
func vmRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("process %d of a running fleet: %v", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("parsing VmRSS of %d: %v", pid, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("process %d has no VmRSS", pid)
	return 0
}
