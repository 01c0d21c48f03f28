package contract

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func registration(id string) chaincode.ClusterRegistration {
	return chaincode.ClusterRegistration{ID: id, Location: chaincode.Location{Lat: 37.5, Lon: 127.0}, CoverageRadiusM: 2000,
		Capacity: chaincode.Resources{CPUMilli: 8000, MemoryBytes: 32 << 30, GPUSlots: 1, GPUMemoryBytes: 0}}
}

func proposal(id string) chaincode.Proposal {
	return chaincode.Proposal{ID: id, Source: "edge-a", Workload: "Deployment/default/detector", BundleDigest: "sha256:" + strings.Repeat("ab", 32),
		Metadata: chaincode.WorkloadMetadata{SourceIP: "10.0.0.7", ContainerID: "containerd://abc", Image: "nvcr.io/detector:1",
			ImageSizeBytes: 4 << 30, CPUMilli: 2000, MemoryBytes: 4 << 30, GPUSlots: 1, GPUMemoryBytes: 2 << 30},
		Reason: chaincode.ReasonClientMobility, ClientLocation: &chaincode.Location{Lat: 37.51, Lon: 127.01}, Deadline: epoch.Add(time.Hour).Format(time.RFC3339)}
}

func bid(cluster string, score float64) chaincode.BidInput {
	return chaincode.BidInput{ClusterID: cluster, CanHost: true, CoversClient: true, Score: score}
}

var orgs = map[string]string{"edge-a": "OrgA", "edge-b": "OrgB", "edge-c": "OrgC"}

// withClusters registers edge-a, edge-b and edge-c, each by its own MSP.
func withClusters(t testing.TB) *chain {
	c := newChain(t)
	for _, id := range slices.Sorted(maps.Keys(orgs)) {
		c.mustInvoke(orgs[id], "RegisterCluster", toJSON(t, registration(id)))
	}
	return c
}

func withProposal(t testing.TB) *chain {
	c := withClusters(t)
	c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
	return c
}

func withDecision(t testing.TB) *chain {
	c := withProposal(t)
	c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 0.9)))
	c.mustInvoke("OrgC", "SubmitBid", "m1", toJSON(t, bid("edge-c", 0.5)))
	c.mustInvoke("OrgA", "Decide", "m1")
	return c
}

func withReady(t testing.TB) *chain {
	c := withDecision(t)
	c.mustInvoke("OrgB", "ReportReady", "m1", "edge-b")
	return c
}

func withCompleted(t testing.TB) *chain {
	c := withReady(t)
	c.mustInvoke("OrgA", "Complete", "m1")
	return c
}

func decodeMigration(t testing.TB, payload []byte) *chaincode.Migration {
	t.Helper()
	m := new(chaincode.Migration)
	if err := json.Unmarshal(payload, m); err != nil {
		t.Fatalf("decoding migration %s: %v", payload, err)
	}
	return m
}

// lastEvent checks that the last transaction emitted exactly one event and returns it.
func lastEvent(t testing.TB, c *chain) chaincode.Event {
	t.Helper()
	if len(c.last.events) != 1 {
		t.Fatalf("transaction %s emitted %d events, want 1", c.last.txID, len(c.last.events))
	}
	var ev chaincode.Event
	if err := json.Unmarshal(c.last.events[0].payload, &ev); err != nil {
		t.Fatalf("decoding event: %v", err)
	}
	if ev.Type != c.last.events[0].name {
		t.Fatalf("event name %q, payload type %q", c.last.events[0].name, ev.Type)
	}
	return ev
}

func TestTransitions(t *testing.T) {
	c := newChain(t)
	type step struct {
		msp, fn   string
		args      []string
		wantEvent string
		wantState string // migration state after the step; "" for cluster transactions
		wantDest  string
	}
	steps := []step{
		{"OrgA", "RegisterCluster", []string{toJSON(t, registration("edge-a"))}, chaincode.EventClusterRegistered, "", ""},
		{"OrgB", "RegisterCluster", []string{toJSON(t, registration("edge-b"))}, chaincode.EventClusterRegistered, "", ""},
		{"OrgC", "RegisterCluster", []string{toJSON(t, registration("edge-c"))}, chaincode.EventClusterRegistered, "", ""},
		// Registering again by the same MSP updates the cluster.
		{"OrgC", "RegisterCluster", []string{toJSON(t, registration("edge-c"))}, chaincode.EventClusterRegistered, "", ""},
		{"OrgB", "ReportCapacity", []string{"edge-b", `{"cpuMilli":4000,"memoryBytes":1000,"gpuSlots":1,"gpuMemoryBytes":0}`}, chaincode.EventCapacityReported, "", ""},
		{"OrgA", "ProposeMigration", []string{toJSON(t, proposal("m1"))}, chaincode.EventMigrationProposed, chaincode.StateProposed, ""},
		{"OrgB", "SubmitBid", []string{"m1", toJSON(t, bid("edge-b", 0.4))}, chaincode.EventBidSubmitted, chaincode.StateProposed, ""},
		// A second bid from the same cluster replaces its first.
		{"OrgB", "SubmitBid", []string{"m1", toJSON(t, bid("edge-b", 0.9))}, chaincode.EventBidSubmitted, chaincode.StateProposed, ""},
		{"OrgC", "SubmitBid", []string{"m1", toJSON(t, bid("edge-c", 0.5))}, chaincode.EventBidSubmitted, chaincode.StateProposed, ""},
		{"OrgC", "Decide", []string{"m1"}, chaincode.EventMigrationDecided, chaincode.StateDecided, "edge-b"},
		{"OrgB", "ReportFailed", []string{"m1", "edge-b", "image pull failed"}, chaincode.EventDestinationFailed, chaincode.StateDecided, "edge-c"},
		{"OrgC", "ReportReady", []string{"m1", "edge-c"}, chaincode.EventMigrationReady, chaincode.StateReady, "edge-c"},
		{"OrgA", "Complete", []string{"m1"}, chaincode.EventMigrationCompleted, chaincode.StateCompleted, "edge-c"},
	}
	for _, s := range steps {
		payload, err := c.invoke(s.msp, s.fn, s.args...)
		if err != nil {
			t.Fatalf("%s as %s: %v", s.fn, s.msp, err)
		}
		ev := lastEvent(t, c)
		if ev.Type != s.wantEvent || ev.State != s.wantState || ev.Destination != s.wantDest || ev.MSPID != s.msp || ev.TxID != c.last.txID {
			t.Errorf("%s: event %+v, want type %s state %q destination %q by %s in %s", s.fn, ev, s.wantEvent, s.wantState, s.wantDest, s.msp, c.last.txID)
		}
		if s.wantState != "" && s.fn != "SubmitBid" {
			m := decodeMigration(t, payload)
			if m.State != s.wantState {
				t.Errorf("%s: state %s, want %s", s.fn, m.State, s.wantState)
			}
		}
	}

	m := decodeMigration(t, c.mustInvoke("OrgC", "GetMigration", "m1"))
	if got, want := len(m.History), 5; got != want {
		t.Errorf("history has %d entries, want %d: %+v", got, want, m.History)
	}
	if !slices.Equal(m.Excluded, []string{"edge-b"}) || len(m.Bids) != 2 || m.Bids[0].Score != 0.9 {
		t.Errorf("excluded %v, bids %+v", m.Excluded, m.Bids)
	}
	if m.BundleDigest != proposal("m1").BundleDigest || !reflect.DeepEqual(m.Metadata, proposal("m1").Metadata) {
		t.Errorf("digest or metadata changed: %+v", m)
	}
	var open []*chaincode.Migration
	if err := json.Unmarshal(c.mustInvoke("OrgA", "ListOpenMigrations"), &open); err != nil || len(open) != 0 {
		t.Errorf("open migrations after completion: %v (%v)", open, err)
	}
	var clusters []*chaincode.Cluster
	if err := json.Unmarshal(c.mustInvoke("OrgA", "ListClusters"), &clusters); err != nil {
		t.Fatal(err)
	}
	if len(clusters) != 3 || clusters[0].ID != "edge-a" || clusters[1].MSPID != "OrgB" || clusters[1].Free.CPUMilli != 4000 {
		t.Errorf("clusters: %+v", clusters)
	}
	if clusters[2].RegisteredAt == clusters[2].LastReportAt {
		t.Errorf("re-registration reset edge-c's registration time: %+v", clusters[2])
	}
}

// TestEmptyLedger checks that empty lists pass contractapi's return-value schema as [].
func TestEmptyLedger(t *testing.T) {
	c := newChain(t)
	for _, fn := range []string{"ListClusters", "ListOpenMigrations"} {
		if got := string(c.mustInvoke("OrgA", fn)); got != "[]" {
			t.Errorf("%s on an empty ledger = %s, want []", fn, got)
		}
	}
}

func TestListOpenMigrations(t *testing.T) {
	c := withDecision(t)
	c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m0")))
	c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m2")))
	c.mustInvoke("OrgA", "Abort", "m2", "client left")
	var open []*chaincode.Migration
	if err := json.Unmarshal(c.mustInvoke("OrgB", "ListOpenMigrations"), &open); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range open {
		ids = append(ids, m.ID+"="+m.State)
	}
	if want := []string{"m0=Proposed", "m1=Decided"}; !slices.Equal(ids, want) {
		t.Errorf("open migrations %v, want %v", ids, want)
	}
}

func TestAbortFromEveryOpenState(t *testing.T) {
	for name, setup := range map[string]func(testing.TB) *chain{"Proposed": withProposal, "Decided": withDecision, "Ready": withReady} {
		t.Run(name, func(t *testing.T) {
			c := setup(t)
			m := decodeMigration(t, c.mustInvoke("OrgA", "Abort", "m1", "operator asked"))
			if m.State != chaincode.StateAborted || m.StateReason != "operator asked" {
				t.Errorf("after abort: state %s reason %q", m.State, m.StateReason)
			}
			if ev := lastEvent(t, c); ev.Type != chaincode.EventMigrationAborted || ev.State != chaincode.StateAborted {
				t.Errorf("event %+v", ev)
			}
		})
	}
}

func TestReportFailedUntilRejected(t *testing.T) {
	c := withDecision(t)
	m := decodeMigration(t, c.mustInvoke("OrgB", "ReportFailed", "m1", "edge-b", "no room after all"))
	if m.State != chaincode.StateDecided || m.Decision.Destination != "edge-c" {
		t.Fatalf("after edge-b failed: %s to %+v", m.State, m.Decision)
	}
	c.mustInvoke("OrgC", "ReportReady", "m1", "edge-c")
	// A destination may fail even after it was ready; with nobody left the service stays home.
	m = decodeMigration(t, c.mustInvoke("OrgC", "ReportFailed", "m1", "edge-c", "node lost"))
	if m.State != chaincode.StateRejected || m.Decision != nil || !strings.Contains(m.StateReason, "none of 2 bids") {
		t.Fatalf("after edge-c failed: %s %+v %q", m.State, m.Decision, m.StateReason)
	}
	if ev := lastEvent(t, c); ev.Type != chaincode.EventDestinationFailed || ev.State != chaincode.StateRejected || ev.Destination != "" {
		t.Errorf("event %+v", ev)
	}
}

func TestRefusals(t *testing.T) {
	big := proposal("m9")
	big.Metadata.ContainerID = strings.Repeat("x", chaincode.MaxArgBytes+1)
	badDigest := proposal("m9")
	badDigest.BundleDigest = "md5:1234"
	noLocation := proposal("m9")
	noLocation.ClientLocation = nil
	badIP := proposal("m9")
	badIP.Metadata.SourceIP = "10.0.0.300"
	negImage := proposal("m9")
	negImage.Metadata.ImageSizeBytes = -1
	negGPU := proposal("m9")
	negGPU.Metadata.GPUMemoryBytes = -1
	badReason := proposal("m9")
	badReason.Reason = "Boredom"
	badDeadline := proposal("m9")
	badDeadline.Deadline = "tomorrow"
	badWorkload := proposal("m9")
	badWorkload.Workload = "detector"
	badClientLat := proposal("m9")
	badClientLat.ClientLocation = &chaincode.Location{Lat: 91}
	otherSource := proposal("m9")
	otherSource.Source = "edge-b"
	unknownSource := proposal("m9")
	unknownSource.Source = "edge-z"
	badLat := registration("edge-d")
	badLat.Location.Lat = -90.5
	badLon := registration("edge-d")
	badLon.Location.Lon = 180.1
	badRadius := registration("edge-d")
	badRadius.CoverageRadiusM = -1
	negCapacity := registration("edge-d")
	negCapacity.Capacity.MemoryBytes = -1
	longID := registration(strings.Repeat("a", 64))

	cases := []struct {
		name    string
		setup   func(testing.TB) *chain
		msp, fn string
		args    []string
		code    chaincode.Code
		want    string // a substring of the error
	}{
		// Access control.
		{"register another MSP's cluster", withClusters, "OrgB", "RegisterCluster", []string{toJSON(t, registration("edge-a"))}, chaincode.CodeForbidden, `registered by MSP "OrgA"`},
		{"capacity for another MSP's cluster", withClusters, "OrgB", "ReportCapacity", []string{"edge-a", `{"cpuMilli":1}`}, chaincode.CodeForbidden, `belongs to MSP "OrgA"`},
		{"propose for another MSP's source", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, otherSource)}, chaincode.CodeForbidden, "may not propose"},
		{"bid for another MSP's cluster", withProposal, "OrgB", "SubmitBid", []string{"m1", toJSON(t, bid("edge-c", 1))}, chaincode.CodeForbidden, "may not bid"},
		{"decide by an MSP without a cluster", withProposal, "OrgZ", "Decide", []string{"m1"}, chaincode.CodeForbidden, "no registered cluster"},
		{"ready by another MSP", withDecision, "OrgC", "ReportReady", []string{"m1", "edge-b"}, chaincode.CodeForbidden, "may not report ready"},
		{"ready by a cluster that is not the destination", withDecision, "OrgC", "ReportReady", []string{"m1", "edge-c"}, chaincode.CodeForbidden, "not the destination"},
		{"failed by another MSP", withDecision, "OrgA", "ReportFailed", []string{"m1", "edge-b", "x"}, chaincode.CodeForbidden, "may not report failure"},
		{"failed by a cluster that is not the destination", withDecision, "OrgC", "ReportFailed", []string{"m1", "edge-c", "x"}, chaincode.CodeForbidden, "not the destination"},
		{"complete by the destination", withReady, "OrgB", "Complete", []string{"m1"}, chaincode.CodeForbidden, "may not complete"},
		{"abort by a bidder", withDecision, "OrgC", "Abort", []string{"m1", "x"}, chaincode.CodeForbidden, "may not abort"},
		// Validation.
		{"cluster id too long", newChainTB, "OrgA", "RegisterCluster", []string{toJSON(t, longID)}, chaincode.CodeInvalid, "not a DNS label"},
		{"cluster id upper case", newChainTB, "OrgA", "RegisterCluster", []string{toJSON(t, registration("Edge-A"))}, chaincode.CodeInvalid, "not a DNS label"},
		{"latitude out of range", newChainTB, "OrgA", "RegisterCluster", []string{toJSON(t, badLat)}, chaincode.CodeInvalid, "latitude -90.5"},
		{"longitude out of range", newChainTB, "OrgA", "RegisterCluster", []string{toJSON(t, badLon)}, chaincode.CodeInvalid, "longitude 180.1"},
		{"negative radius", newChainTB, "OrgA", "RegisterCluster", []string{toJSON(t, badRadius)}, chaincode.CodeInvalid, "coverage radius"},
		{"endpoint not a URL", newChainTB, "OrgA", "RegisterCluster", []string{`{"id":"edge-d","endpoint":"10.0.0.5:8090"}`}, chaincode.CodeInvalid, "not an http(s) URL"},
		{"endpoint with credentials", newChainTB, "OrgA", "RegisterCluster", []string{`{"id":"edge-d","endpoint":"http://u:p@10.0.0.5"}`}, chaincode.CodeInvalid, "not an http(s) URL"},
		{"negative capacity", newChainTB, "OrgA", "RegisterCluster", []string{toJSON(t, negCapacity)}, chaincode.CodeInvalid, "memoryBytes is negative"},
		{"unknown field", newChainTB, "OrgA", "RegisterCluster", []string{`{"id":"edge-d","colour":"red"}`}, chaincode.CodeInvalid, "unknown field"},
		{"trailing data", newChainTB, "OrgA", "RegisterCluster", []string{toJSON(t, registration("edge-d")) + "{}"}, chaincode.CodeInvalid, "after the JSON value"},
		{"not JSON", newChainTB, "OrgA", "RegisterCluster", []string{"edge-d"}, chaincode.CodeInvalid, "decoding cluster registration"},
		{"number too large", newChainTB, "OrgA", "RegisterCluster", []string{`{"id":"edge-d","coverageRadiusM":1e999}`}, chaincode.CodeInvalid, "decoding"},
		{"negative free memory", withClusters, "OrgA", "ReportCapacity", []string{"edge-a", `{"memoryBytes":-5}`}, chaincode.CodeInvalid, "memoryBytes is negative"},
		{"capacity for unknown cluster", withClusters, "OrgA", "ReportCapacity", []string{"edge-z", `{}`}, chaincode.CodeNotFound, `cluster "edge-z" does not exist`},
		{"argument too large", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, big)}, chaincode.CodeInvalid, "bytes, more than"},
		{"bad bundle digest", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, badDigest)}, chaincode.CodeInvalid, "bundle digest"},
		{"mobility without client location", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, noLocation)}, chaincode.CodeInvalid, "needs a client location"},
		{"client latitude", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, badClientLat)}, chaincode.CodeInvalid, "client latitude"},
		{"bad source IP", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, badIP)}, chaincode.CodeInvalid, "not an IP address"},
		{"negative image size", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, negImage)}, chaincode.CodeInvalid, "image size is negative"},
		{"negative GPU memory", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, negGPU)}, chaincode.CodeInvalid, "gpuMemoryBytes is negative"},
		{"unknown reason", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, badReason)}, chaincode.CodeInvalid, `reason "Boredom"`},
		{"bad deadline", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, badDeadline)}, chaincode.CodeInvalid, "not an RFC 3339 time"},
		{"bad workload reference", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, badWorkload)}, chaincode.CodeInvalid, "not kind/namespace/name"},
		{"unknown source", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, unknownSource)}, chaincode.CodeNotFound, `cluster "edge-z"`},
		{"bad migration id", withProposal, "OrgB", "SubmitBid", []string{"M_1", toJSON(t, bid("edge-b", 1))}, chaincode.CodeInvalid, "migration id"},
		{"bid score too large", withProposal, "OrgB", "SubmitBid", []string{"m1", `{"clusterId":"edge-b","canHost":true,"score":1e400}`}, chaincode.CodeInvalid, "decoding bid"},
		{"source bids", withProposal, "OrgA", "SubmitBid", []string{"m1", toJSON(t, bid("edge-a", 1))}, chaincode.CodeInvalid, "is the source"},
		{"bid on unknown migration", withProposal, "OrgB", "SubmitBid", []string{"m7", toJSON(t, bid("edge-b", 1))}, chaincode.CodeNotFound, `migration "m7"`},
		{"failure reason too long", withDecision, "OrgB", "ReportFailed", []string{"m1", "edge-b", strings.Repeat("x", chaincode.MaxTextLength+1)}, chaincode.CodeInvalid, "failure reason"},
		{"abort reason too long", withDecision, "OrgA", "Abort", []string{"m1", strings.Repeat("x", chaincode.MaxTextLength+1)}, chaincode.CodeInvalid, "abort reason"},
		{"get unknown migration", withClusters, "OrgA", "GetMigration", []string{"m7"}, chaincode.CodeNotFound, `migration "m7" does not exist`},
		// States: the error names the current state.
		{"duplicate proposal", withProposal, "OrgA", "ProposeMigration", []string{toJSON(t, proposal("m1"))}, chaincode.CodeConflict, `"m1" already exists`},
		{"bid after decision", withDecision, "OrgC", "SubmitBid", []string{"m1", toJSON(t, bid("edge-c", 1))}, chaincode.CodeConflict, "in state Decided"},
		{"decide twice", withDecision, "OrgA", "Decide", []string{"m1"}, chaincode.CodeConflict, "in state Decided"},
		{"decide before every live cluster bid", withProposal, "OrgA", "Decide", []string{"m1"}, chaincode.CodeNotYet, "waiting for bids from edge-b, edge-c"},
		{"ready before decision", withProposal, "OrgB", "ReportReady", []string{"m1", "edge-b"}, chaincode.CodeConflict, "in state Proposed"},
		{"ready twice", withReady, "OrgB", "ReportReady", []string{"m1", "edge-b"}, chaincode.CodeConflict, "in state Ready"},
		{"complete before ready", withDecision, "OrgA", "Complete", []string{"m1"}, chaincode.CodeConflict, "in state Decided"},
		{"abort after completion", withCompleted, "OrgA", "Abort", []string{"m1", "x"}, chaincode.CodeConflict, "in state Completed"},
		{"failed after completion", withCompleted, "OrgB", "ReportFailed", []string{"m1", "edge-b", "x"}, chaincode.CodeConflict, "in state Completed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.setup(t)
			before := maps.Clone(c.world)
			_, err := c.invoke(tc.msp, tc.fn, tc.args...)
			if err == nil {
				t.Fatalf("%s as %s succeeded, want %s error", tc.fn, tc.msp, tc.code)
			}
			if got := chaincode.CodeOf(err); got != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (code %q), want code %q containing %q", err, got, tc.code, tc.want)
			}
			if len(c.last.writes) != 0 || len(c.last.events) != 0 {
				t.Errorf("refused transaction wrote %d keys and %d events", len(c.last.writes), len(c.last.events))
			}
			if !maps.EqualFunc(before, c.world, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Error("world state changed")
			}
		})
	}
}

func newChainTB(t testing.TB) *chain { return newChain(t) }

func TestDecideEligibility(t *testing.T) {
	cases := []struct {
		name      string
		reason    string
		bids      []chaincode.BidInput
		wantState string
		wantDest  string
	}{
		{"highest score", chaincode.ReasonClientMobility, []chaincode.BidInput{bid("edge-b", 0.2), bid("edge-c", 0.7)}, chaincode.StateDecided, "edge-c"},
		{"tie to the lowest id", chaincode.ReasonClientMobility, []chaincode.BidInput{bid("edge-c", 0.5), bid("edge-b", 0.5)}, chaincode.StateDecided, "edge-b"},
		{"cannot host", chaincode.ReasonClientMobility, []chaincode.BidInput{{ClusterID: "edge-b", CoversClient: true, Score: 9}, bid("edge-c", 0.1)}, chaincode.StateDecided, "edge-c"},
		{"mobility needs coverage", chaincode.ReasonClientMobility, []chaincode.BidInput{{ClusterID: "edge-b", CanHost: true, Score: 9}, bid("edge-c", 0.1)}, chaincode.StateDecided, "edge-c"},
		{"offload ignores coverage", chaincode.ReasonInsufficientResources, []chaincode.BidInput{{ClusterID: "edge-b", CanHost: true, Score: 9}, bid("edge-c", 0.1)}, chaincode.StateDecided, "edge-b"},
		{"negative scores", chaincode.ReasonManual, []chaincode.BidInput{bid("edge-b", -3), bid("edge-c", -1)}, chaincode.StateDecided, "edge-c"},
		{"nobody can host", chaincode.ReasonClientMobility, []chaincode.BidInput{{ClusterID: "edge-b", Score: 1}, {ClusterID: "edge-c", CanHost: true, Score: 1}}, chaincode.StateRejected, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := withClusters(t)
			p := proposal("m1")
			p.Reason = tc.reason
			c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, p))
			for _, b := range tc.bids {
				c.mustInvoke(orgs[b.ClusterID], "SubmitBid", "m1", toJSON(t, b))
			}
			m := decodeMigration(t, c.mustInvoke("OrgB", "Decide", "m1"))
			dest := ""
			if m.Decision != nil {
				dest = m.Decision.Destination
			}
			if m.State != tc.wantState || dest != tc.wantDest {
				t.Errorf("decided %s to %q, want %s to %q", m.State, dest, tc.wantState, tc.wantDest)
			}
		})
	}
}

func TestDecideWaitsForLiveClustersOrDeadline(t *testing.T) {
	t.Run("deadline passed", func(t *testing.T) {
		c := withClusters(t)
		p := proposal("m1")
		p.Deadline = c.now.Add(4 * time.Second).Format(time.RFC3339Nano)
		c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, p))
		c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 1)))
		if _, err := c.invoke("OrgA", "Decide", "m1"); chaincode.CodeOf(err) != chaincode.CodeNotYet {
			t.Fatalf("Decide before the deadline: %v, want %q", err, chaincode.CodeNotYet)
		}
		// The next transaction is stamped at the deadline.
		m := decodeMigration(t, c.mustInvoke("OrgA", "Decide", "m1"))
		if m.State != chaincode.StateDecided || m.Decision.Destination != "edge-b" {
			t.Errorf("decided %s %+v", m.State, m.Decision)
		}
	})
	t.Run("silent cluster is not live", func(t *testing.T) {
		c := withClusters(t)
		c.now = c.now.Add(chaincode.LiveWindow)
		// edge-a and edge-b report; edge-c stays silent past the live window.
		c.mustInvoke("OrgA", "ReportCapacity", "edge-a", "{}")
		c.mustInvoke("OrgB", "ReportCapacity", "edge-b", "{}")
		c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
		c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 1)))
		m := decodeMigration(t, c.mustInvoke("OrgA", "Decide", "m1"))
		if m.State != chaincode.StateDecided || m.Decision.Destination != "edge-b" {
			t.Errorf("decided %s %+v", m.State, m.Decision)
		}
	})
}

// TestDecideIsDeterministic submits the same bids in every order: the decision, and the
// decided state apart from transaction ids and times, must not depend on the order.
func TestDecideIsDeterministic(t *testing.T) {
	ids := []string{"edge-b", "edge-c", "edge-d", "edge-e"}
	scores := map[string]float64{"edge-b": 0.5, "edge-c": 0.8, "edge-d": 0.8, "edge-e": 0.3}
	var want *chaincode.Decision
	var wantBids []string
	for _, order := range permutations(ids) {
		c := newChain(t)
		c.mustInvoke("OrgA", "RegisterCluster", toJSON(t, registration("edge-a")))
		for _, id := range ids {
			c.mustInvoke("Org"+id, "RegisterCluster", toJSON(t, registration(id)))
		}
		c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
		for _, id := range order {
			c.mustInvoke("Org"+id, "SubmitBid", "m1", toJSON(t, bid(id, scores[id])))
		}
		m := decodeMigration(t, c.mustInvoke("OrgA", "Decide", "m1"))
		var bids []string
		for _, b := range m.Bids {
			bids = append(bids, toJSON(t, chaincode.BidInput{ClusterID: b.ClusterID, CanHost: b.CanHost, CoversClient: b.CoversClient, Score: b.Score}))
		}
		got := *m.Decision
		got.TxID, got.DecidedAt = "", ""
		if want == nil {
			want, wantBids = &got, bids
			continue
		}
		if got != *want || !slices.Equal(bids, wantBids) {
			t.Errorf("order %v: decision %+v bids %v, want %+v %v", order, got, bids, *want, wantBids)
		}
	}
	if want.Destination != "edge-c" {
		t.Errorf("destination %s, want edge-c (ties at 0.8 go to the lowest id)", want.Destination)
	}
}

func permutations(s []string) [][]string {
	if len(s) <= 1 {
		return [][]string{slices.Clone(s)}
	}
	var out [][]string
	for i := range s {
		rest := slices.Concat(s[:i], s[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]string{s[i]}, p...))
		}
	}
	return out
}
