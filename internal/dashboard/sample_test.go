package dashboard

import (
	"fmt"
	"time"
)

const gib = 1 << 30

// syntheticState is a demo moment: two clusters, a car that drove from edge-a's
// coverage into edge-b's, a completed mobility migration and an offload in progress.
// Each later tick moves the car east and advances the offload.
func syntheticState(start time.Time, tick int) State {
	now := start.Add(time.Duration(tick) * time.Second)
	var track []Point
	for i := 0; i <= 8+tick; i++ {
		track = append(track, Point{Lat: 36.3690 + 0.0004*float64(i%4), Lon: 127.3300 + 0.0045*float64(i)})
	}
	car := Car{ID: "car-1", Position: track[len(track)-1], Track: track, ServingCluster: "edge-b"}

	offload := Migration{
		ID: "mig-2", Reason: "InsufficientResources", Source: "edge-a", Destination: "edge-b",
		Phase: "Decided", Workload: "Deployment/demo/segmenter", Started: start.Add(-2 * time.Second),
		Steps: []Step{{"Proposed", 9 * time.Millisecond}, {"Decided", 41 * time.Millisecond}},
	}
	if tick > 0 {
		offload.Phase = "Completed"
		offload.Message = "segmenter runs on edge-b: edge-a has no unified memory left"
		offload.Steps = append(offload.Steps, Step{"DestinationReady", 352 * time.Millisecond}, Step{"Completed", 398 * time.Millisecond})
	}
	ledger := []LedgerEvent{
		{Time: start.Add(-9 * time.Second), Type: "ClusterRegistered", ClusterID: "edge-a"},
		{Time: start.Add(-9 * time.Second), Type: "ClusterRegistered", ClusterID: "edge-b"},
		{Time: start.Add(-6 * time.Second), Type: "MigrationProposed", MigrationID: "mig-1", ClusterID: "edge-a", State: "Proposed"},
		{Time: start.Add(-6 * time.Second), Type: "BidSubmitted", MigrationID: "mig-1", ClusterID: "edge-b"},
		{Time: start.Add(-6 * time.Second), Type: "MigrationDecided", MigrationID: "mig-1", State: "Decided", Destination: "edge-b"},
		{Time: start.Add(-5 * time.Second), Type: "MigrationReady", MigrationID: "mig-1", ClusterID: "edge-b", State: "Ready"},
		{Time: start.Add(-5 * time.Second), Type: "MigrationCompleted", MigrationID: "mig-1", ClusterID: "edge-a", State: "Completed"},
		{Time: start.Add(-2 * time.Second), Type: "MigrationProposed", MigrationID: "mig-2", ClusterID: "edge-a", State: "Proposed"},
		{Time: start.Add(-2 * time.Second), Type: "BidSubmitted", MigrationID: "mig-2", ClusterID: "edge-b"},
		{Time: start.Add(-2 * time.Second), Type: "MigrationDecided", MigrationID: "mig-2", State: "Decided", Destination: "edge-b"},
	}
	if tick > 0 {
		ledger = append(ledger,
			LedgerEvent{Time: now, Type: "MigrationReady", MigrationID: "mig-2", ClusterID: "edge-b", State: "Ready"},
			LedgerEvent{Time: now, Type: "MigrationCompleted", MigrationID: "mig-2", ClusterID: "edge-a", State: "Completed"})
	}
	log := []string{
		"Two edge clusters registered on the ledger: edge-a and edge-b.",
		"car-1 drives east and leaves edge-a's coverage.",
		"edge-a proposes migrating perception; edge-b bids and is picked.",
		"perception is ready on edge-b, then removed from edge-a: 421 ms.",
		"edge-a is full: segmenter cannot fit on any of its Jetson boards.",
	}
	if tick > 0 {
		log = append(log, fmt.Sprintf("segmenter offloaded to edge-b (tick %d).", tick))
	}
	// car-1's requests: served by edge-a, then edge-b; one failed at the switch.
	requests := Requests{Car: "car-1", Sent: 40 + tick, OK: 39 + tick, Failed: 1, WindowS: 10, RatePerS: 5, WindowFailed: 1,
		P50Ms: 3.2, P99Ms: 41, ByCluster: map[string]int{"edge-a": 25, "edge-b": 14 + tick}, FailedBy: map[string]int{"http 503": 1}}
	for i := 0; i < 30+tick; i++ {
		q := Request{Seq: 10 + i, Cluster: "edge-a", OK: true, Status: 200, LatencyMs: 3}
		switch {
		case i == 12:
			q = Request{Seq: 10 + i, Status: 503, LatencyMs: 1}
		case i > 12:
			q.Cluster = "edge-b"
		}
		requests.Recent = append(requests.Recent, q)
	}
	return State{
		Time:     now,
		Requests: []Requests{requests},
		Clusters: []Cluster{
			{
				ID: "edge-a", Center: Point{Lat: 36.3700, Lon: 127.3400}, RadiusM: 1500, Endpoint: "https://127.0.0.1:40101",
				Nodes: []Node{
					{Name: "jetson-a1", Model: "NVIDIA Jetson AGX Xavier", MemoryUsedBytes: 31 * gib, MemoryTotalBytes: 32 * gib, GPUSlotsUsed: 4, GPUSlots: 4},
					{Name: "jetson-a2", Model: "NVIDIA Jetson AGX Xavier", MemoryUsedBytes: 26 * gib, MemoryTotalBytes: 32 * gib, GPUSlotsUsed: 3, GPUSlots: 4},
				},
				Services: []Service{
					{Namespace: "demo", Name: "tracker", Kind: "Deployment", ClientID: "car-2", Node: "jetson-a1", Ready: true},
					{Namespace: "demo", Name: "mapper", Kind: "Deployment", ClientID: "car-3", Node: "jetson-a2", Ready: true},
				},
			},
			{
				ID: "edge-b", Center: Point{Lat: 36.3710, Lon: 127.3720}, RadiusM: 1500, Endpoint: "https://127.0.0.1:40102",
				Nodes: []Node{
					{Name: "jetson-b1", Model: "NVIDIA Jetson AGX Xavier", MemoryUsedBytes: 12 * gib, MemoryTotalBytes: 32 * gib, GPUSlotsUsed: 1, GPUSlots: 4},
					{Name: "jetson-b2", Model: "NVIDIA Jetson AGX Xavier", MemoryUsedBytes: 6 * gib, MemoryTotalBytes: 32 * gib, GPUSlotsUsed: 1, GPUSlots: 4},
				},
				Services: []Service{
					{Namespace: "demo", Name: "perception", Kind: "Deployment", ClientID: "car-1", Node: "jetson-b1", Ready: true, MigratedFrom: "edge-a"},
					{Namespace: "demo", Name: "segmenter", Kind: "Deployment", Node: "jetson-b2", Ready: tick > 0, MigratedFrom: "edge-a"},
				},
			},
		},
		Cars:   []Car{car},
		Ledger: ledger,
		Migrations: []Migration{
			{
				ID: "mig-1", Reason: "ClientMobility", Source: "edge-a", Destination: "edge-b", Phase: "Completed",
				Workload: "Deployment/demo/perception", Started: start.Add(-6 * time.Second),
				Steps: []Step{{"Proposed", 12 * time.Millisecond}, {"Decided", 40 * time.Millisecond},
					{"DestinationReady", 300 * time.Millisecond}, {"Completed", 421 * time.Millisecond}},
			},
			offload,
		},
		Log: log,
	}
}
