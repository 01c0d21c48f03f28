package dashboard

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is everything the page shows: one snapshot of the demo, published whole.
type State struct {
	Time       time.Time     `json:"time"`
	Clusters   []Cluster     `json:"clusters"`
	Cars       []Car         `json:"cars"`
	Ledger     []LedgerEvent `json:"ledger"`     // newest last, capped (Options.HistoryLimit)
	Migrations []Migration   `json:"migrations"` // newest last
	Log        []string      `json:"log"`        // demo narration lines, newest last, capped
	// Requests are each car's requests to its service, when the demo sends them.
	Requests []Requests `json:"requests"`
}

// Point is a WGS84 position in degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Cluster is one edge cluster and the area its radio covers.
type Cluster struct {
	ID       string    `json:"id"`
	Center   Point     `json:"center"`
	RadiusM  float64   `json:"radiusM"`
	Endpoint string    `json:"endpoint"`
	Nodes    []Node    `json:"nodes"`
	Services []Service `json:"services"`
}

// Node is one Jetson board. Memory is unified: CPU and GPU allocations share it.
type Node struct {
	Name             string `json:"name"`
	Model            string `json:"model"`
	MemoryUsedBytes  int64  `json:"memoryUsedBytes"`
	MemoryTotalBytes int64  `json:"memoryTotalBytes"`
	GPUSlotsUsed     int64  `json:"gpuSlotsUsed"`
	GPUSlots         int64  `json:"gpuSlots"`
}

// Service is one inference workload running (or starting) in a cluster.
type Service struct {
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	ClientID     string `json:"clientId"`
	Node         string `json:"node"`
	Ready        bool   `json:"ready"`
	MigratedFrom string `json:"migratedFrom"`
}

// Car is a connected client moving across the clusters' coverage areas.
type Car struct {
	ID             string  `json:"id"`
	Position       Point   `json:"position"`
	Track          []Point `json:"track"`
	ServingCluster string  `json:"servingCluster"`
}

// LedgerEvent is one event read from the migration ledger (proposal, bid, decision...).
type LedgerEvent struct {
	Time        time.Time `json:"time"`
	Type        string    `json:"type"`
	MigrationID string    `json:"migrationId"`
	ClusterID   string    `json:"clusterId"`
	State       string    `json:"state"`
	Destination string    `json:"destination"`
}

// Migration is one service migration as the timeline shows it.
type Migration struct {
	ID          string    `json:"id"`
	Reason      string    `json:"reason"`
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Phase       string    `json:"phase"`
	Workload    string    `json:"workload"`
	Message     string    `json:"message"`
	Started     time.Time `json:"started"`
	// Steps are the phases reached, each with the time since Started, in order.
	Steps []Step `json:"steps"`
}

// Step is a phase a migration reached At after it started.
type Step struct {
	Phase string
	At    time.Duration
}

type stepJSON struct {
	Phase string  `json:"phase"`
	AtMs  float64 `json:"atMs"`
}

// MarshalJSON writes At as fractional milliseconds ("atMs"), which the page uses as is.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepJSON{Phase: s.Phase, AtMs: float64(s.At) / float64(time.Millisecond)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Step) UnmarshalJSON(data []byte) error {
	var v stepJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("decoding migration step: %w", err)
	}
	s.Phase = v.Phase
	s.At = time.Duration(v.AtMs * float64(time.Millisecond))
	return nil
}

// Requests are one car's requests to its inference service: totals, the last WindowS
// seconds (rate, failures, latency) and the most recent requests one by one.
type Requests struct {
	Car      string `json:"car"`
	Sent     int    `json:"sent"`
	OK       int    `json:"ok"`
	Failed   int    `json:"failed"`
	InFlight int    `json:"inFlight"`
	// ByCluster counts the successes by the cluster that answered; FailedBy the failures
	// by reason.
	ByCluster map[string]int `json:"byCluster"`
	FailedBy  map[string]int `json:"failedBy"`
	// The rolling window.
	WindowS      float64 `json:"windowS"`
	RatePerS     float64 `json:"ratePerS"`
	WindowFailed int     `json:"windowFailed"`
	P50Ms        float64 `json:"p50Ms"`
	P99Ms        float64 `json:"p99Ms"`
	// Recent are the latest requests, oldest first, capped by the publisher.
	Recent []Request `json:"recent"`
}

// Request is one request as the strip of recent requests draws it.
type Request struct {
	Seq       int     `json:"seq"`
	Cluster   string  `json:"cluster"` // that answered; "" when none did
	OK        bool    `json:"ok"`
	Status    int     `json:"status"`
	LatencyMs float64 `json:"latencyMs"`
}
