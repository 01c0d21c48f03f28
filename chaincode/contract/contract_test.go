package contract

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

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
		Capacity: chaincode.Resources{CPUMilli: 8000, MemoryBytes: 32 << 30, GPUSlots: 1, GPUMemoryBytes: 32 << 30}}
}

func proposal(id string) chaincode.Proposal {
	return chaincode.Proposal{ID: id, Source: "edge-a", Workload: "Deployment/default/detector", BundleDigest: "sha256:" + strings.Repeat("ab", 32),
		Metadata: chaincode.WorkloadMetadata{SourceIP: "10.0.0.7", ContainerID: "containerd://abc", Image: "nvcr.io/detector:1",
			ImageSizeBytes: 4 << 30, CPUMilli: 2000, MemoryBytes: 4 << 30, GPUSlots: 1, GPUMemoryBytes: 2 << 30},
		Reason: chaincode.ReasonClientMobility, ClientLocation: &chaincode.Location{Lat: 37.51, Lon: 127.01}, BidTimeoutMillis: chaincode.MaxBidTimeoutMillis}
}

func bid(cluster string, score float64) chaincode.BidInput {
	return chaincode.BidInput{ClusterID: cluster, CanHost: true, CoversClient: true, Score: score}
}

var orgs = map[string]string{"edge-a": "OrgA", "edge-b": "OrgB", "edge-c": "OrgC"}

// adminMSP is the ledger's admin in the tests.
const adminMSP = "OrgAdmin"

// far is a site 100 km north of the others: no client of the tests is within its reach.
var far = chaincode.Location{Lat: 38.4, Lon: 127.0}

// newAdmittedChain sets the ledger up with adminMSP, which admits edge-a, edge-b and edge-c
// for orgs and edge-d and edge-e for Orgedge-d and Orgedge-e.
func newAdmittedChain(t testing.TB) *chain {
	c := newChain(t)
	c.mustInvoke(adminMSP, "InitLedger", `{"adminMsp":"`+adminMSP+`"}`)
	for _, id := range []string{"edge-a", "edge-b", "edge-c", "edge-d", "edge-e"} {
		c.mustInvoke(adminMSP, "AdmitCluster", toJSON(t, chaincode.AdmissionInput{ClusterID: id, MSPID: mspOf(id)}))
	}
	return c
}

// mspOf is the MSP newAdmittedChain admits a cluster for.
func mspOf(id string) string {
	if msp, ok := orgs[id]; ok {
		return msp
	}
	return "Org" + id
}

// withClusters registers edge-a, edge-b and edge-c, each by its own MSP.
func withClusters(t testing.TB) *chain {
	c := newAdmittedChain(t)
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
	c := newAdmittedChain(t)
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
		{"OrgB", "ReportCapacity", []string{"edge-b", `{"cpuMilli":4000,"memoryBytes":8589934592,"gpuSlots":1,"gpuMemoryBytes":8589934592}`}, chaincode.EventCapacityReported, "", ""},
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
	for _, fn := range []string{"ListClusters", "ListOpenMigrations", "ListAdmissions", "ListFinishedMigrations"} {
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
	// With nobody left the service stays home.
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
	noBidTimeout := proposal("m9")
	noBidTimeout.BidTimeoutMillis = 0
	longBidTimeout := proposal("m9")
	longBidTimeout.BidTimeoutMillis = chaincode.MaxBidTimeoutMillis + 1
	// oldDeadline is a proposal of before ledger-time deadlines, carrying its own clock's deadline.
	oldDeadline := strings.Replace(toJSON(t, proposal("m9")), `"bidTimeoutMillis":600000`, `"deadline":"2026-11-27T11:00:00Z"`, 1)
	badOrigin := proposal("m9")
	badOrigin.Metadata.Origin = "edge-a/default/uid\nforged"
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
	longReason := bid("edge-b", 1)
	longReason.Reason = strings.Repeat("x", chaincode.MaxTextLength+1)
	// withStaleBidder: edge-b and edge-c fell silent past the live window before m1 was proposed.
	withStaleBidder := func(t testing.TB) *chain {
		c := withClusters(t)
		c.now = c.now.Add(chaincode.LiveWindow + chaincode.MaxClockSkew)
		c.mustInvoke("OrgA", "ReportCapacity", "edge-a", "{}")
		c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
		return c
	}
	// withPastDeadline: m1's deadline has passed, edge-b bid and edge-c did not.
	withPastDeadline := func(t testing.TB) *chain {
		c := withClusters(t)
		p := proposal("m1")
		p.BidTimeoutMillis = 1
		c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, p))
		c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 1)))
		return c
	}

	cases := []refusal{
		// Access control.
		{"register another MSP's cluster", withClusters, "OrgB", "RegisterCluster", []string{toJSON(t, registration("edge-a"))}, chaincode.CodeForbidden, `admitted for MSP "OrgA"`},
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
		{"no bid timeout", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, noBidTimeout)}, chaincode.CodeInvalid, "bid timeout 0 ms is outside [1, 600000]"},
		{"bid timeout too long", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, longBidTimeout)}, chaincode.CodeInvalid, "bid timeout 600001 ms"},
		{"a deadline of the source's clock", withClusters, "OrgA", "ProposeMigration", []string{oldDeadline}, chaincode.CodeInvalid, `unknown field "deadline"`},
		{"origin with a control character", withClusters, "OrgA", "ProposeMigration", []string{toJSON(t, badOrigin)}, chaincode.CodeInvalid, "is not cluster/namespace/uid"},
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
		// Never zero copies: once Ready, the destination cannot hand the migration back.
		{"failed after ready", withReady, "OrgB", "ReportFailed", []string{"m1", "edge-b", "x"}, chaincode.CodeConflict, "after reporting it Ready"},
		// Claims the ledger checks.
		{"bid by a cluster not live", withStaleBidder, "OrgB", "SubmitBid", []string{"m1", toJSON(t, bid("edge-b", 1))}, chaincode.CodeConflict, `"edge-b" is not live`},
		{"bid reason too long", withProposal, "OrgB", "SubmitBid", []string{"m1", toJSON(t, longReason)}, chaincode.CodeInvalid, "bid reason"},
		// Time: only the source ends the bidding at its deadline.
		{"decide at the deadline by a bidder", withPastDeadline, "OrgB", "Decide", []string{"m1"}, chaincode.CodeNotYet, "waiting for bids from edge-c"},
		// Membership.
		{"register without admission", withClusters, "OrgZ", "RegisterCluster", []string{toJSON(t, registration("edge-z"))}, chaincode.CodeForbidden, `"edge-z" is not admitted`},
		{"admit by an outsider", withClusters, "OrgZ", "AdmitCluster", []string{`{"clusterId":"edge-z","mspId":"OrgZ"}`}, chaincode.CodeForbidden, "neither the ledger's admin nor a member"},
		{"admit an admitted id", withClusters, adminMSP, "AdmitCluster", []string{`{"clusterId":"edge-a","mspId":"OrgZ"}`}, chaincode.CodeConflict, `already admitted for MSP "OrgA"`},
		{"admit with a bad MSP id", withClusters, adminMSP, "AdmitCluster", []string{`{"clusterId":"edge-z","mspId":"Org Z"}`}, chaincode.CodeInvalid, "printable ASCII"},
		{"init again with another admin", withClusters, "OrgA", "InitLedger", []string{`{"adminMsp":"OrgA"}`}, chaincode.CodeConflict, `already set up with admin MSP "OrgAdmin"`},
		{"remove another MSP's cluster", withClusters, "OrgB", "RemoveCluster", []string{"edge-a", "x"}, chaincode.CodeForbidden, "may not remove"},
		// Bounded state.
		{"expire before the grace", withProposal, "OrgB", "ExpireMigration", []string{"m1"}, chaincode.CodeNotYet, "may be expired from"},
		{"expire by an outsider", withProposal, "OrgZ", "ExpireMigration", []string{"m1"}, chaincode.CodeForbidden, "may not expire"},
		{"expire when ready", withReady, "OrgB", "ExpireMigration", []string{"m1"}, chaincode.CodeConflict, "in state Ready"},
		{"compact an open migration", withReady, "OrgB", "CompactMigration", []string{"m1"}, chaincode.CodeConflict, "not final"},
		{"compact within the retention window", withCompleted, "OrgB", "CompactMigration", []string{"m1"}, chaincode.CodeNotYet, "may be compacted from"},
	}
	runRefusals(t, cases)
}

func newChainTB(t testing.TB) *chain { return newChain(t) }

// refusal is a transaction the contract must refuse: with its code and a substring of its
// error, writing nothing and emitting no event.
type refusal struct {
	name    string
	setup   func(testing.TB) *chain
	msp, fn string
	args    []string
	code    chaincode.Code
	want    string // a substring of the error
}

func runRefusals(t *testing.T, cases []refusal) {
	t.Helper()
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

func TestDecideEligibility(t *testing.T) {
	// Each cluster's claims are checked against what the ledger holds: a far site covers no
	// client whatever its bid says, and free capacity below the demand cannot host.
	short := chaincode.Resources{CPUMilli: 8000, MemoryBytes: 32 << 30, GPUSlots: 1, GPUMemoryBytes: 1 << 30}
	cases := []struct {
		name      string
		reason    string
		far       []string                       // clusters re-registered at the far site
		free      map[string]chaincode.Resources // capacity reports before the proposal
		replicas  int32
		bids      []chaincode.BidInput
		wantState string
		wantDest  string
	}{
		{"highest score", chaincode.ReasonClientMobility, nil, nil, 0, []chaincode.BidInput{bid("edge-b", 0.2), bid("edge-c", 0.7)}, chaincode.StateDecided, "edge-c"},
		{"tie to the lowest id", chaincode.ReasonClientMobility, nil, nil, 0, []chaincode.BidInput{bid("edge-c", 0.5), bid("edge-b", 0.5)}, chaincode.StateDecided, "edge-b"},
		{"cannot host", chaincode.ReasonClientMobility, nil, nil, 0, []chaincode.BidInput{{ClusterID: "edge-b", CoversClient: true, Score: 9}, bid("edge-c", 0.1)}, chaincode.StateDecided, "edge-c"},
		{"mobility needs coverage", chaincode.ReasonClientMobility, []string{"edge-b"}, nil, 0, []chaincode.BidInput{bid("edge-b", 9), bid("edge-c", 0.1)}, chaincode.StateDecided, "edge-c"},
		{"coverage is the ledger's, not the bid's", chaincode.ReasonClientMobility, nil, nil, 0, []chaincode.BidInput{{ClusterID: "edge-b", CanHost: true, Score: 9}, bid("edge-c", 0.1)}, chaincode.StateDecided, "edge-b"},
		{"offload ignores coverage", chaincode.ReasonInsufficientResources, []string{"edge-b"}, nil, 0, []chaincode.BidInput{bid("edge-b", 9), bid("edge-c", 0.1)}, chaincode.StateDecided, "edge-b"},
		{"scores clamped to 100", chaincode.ReasonManual, nil, nil, 0, []chaincode.BidInput{bid("edge-b", 100), bid("edge-c", 1e308)}, chaincode.StateDecided, "edge-b"},
		{"negative scores clamped to 0", chaincode.ReasonManual, nil, nil, 0, []chaincode.BidInput{bid("edge-b", -3), bid("edge-c", -1)}, chaincode.StateDecided, "edge-b"},
		{"reported capacity below the demand", chaincode.ReasonManual, nil, map[string]chaincode.Resources{"edge-c": short}, 0, []chaincode.BidInput{bid("edge-b", 1), bid("edge-c", 99)}, chaincode.StateDecided, "edge-b"},
		{"capacity for every replica", chaincode.ReasonManual, nil, map[string]chaincode.Resources{"edge-b": {CPUMilli: 6000, MemoryBytes: 32 << 30, GPUSlots: 4, GPUMemoryBytes: 32 << 30}, "edge-c": {CPUMilli: 5999, MemoryBytes: 32 << 30, GPUSlots: 4, GPUMemoryBytes: 32 << 30}}, 3, []chaincode.BidInput{bid("edge-b", 1), bid("edge-c", 99)}, chaincode.StateDecided, "edge-b"},
		{"nobody can host", chaincode.ReasonClientMobility, []string{"edge-c"}, nil, 0, []chaincode.BidInput{{ClusterID: "edge-b", Score: 1}, {ClusterID: "edge-c", CanHost: true, CoversClient: true, Score: 1}}, chaincode.StateRejected, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := withClusters(t)
			for _, id := range tc.far {
				r := registration(id)
				r.Location = far
				c.mustInvoke(orgs[id], "RegisterCluster", toJSON(t, r))
			}
			for id, free := range tc.free {
				c.mustInvoke(orgs[id], "ReportCapacity", id, toJSON(t, free))
			}
			p := proposal("m1")
			p.Reason = tc.reason
			p.Metadata.Replicas = tc.replicas
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
		// Proposed at c.now+1s: the deadline is the fourth transaction's time.
		p.BidTimeoutMillis = 3000
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
	t.Run("only the source decides at the deadline", func(t *testing.T) {
		c := withClusters(t)
		p := proposal("m1")
		p.BidTimeoutMillis = 1
		c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, p))
		c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 1)))
		// edge-b's MSP stamps its Decide past the deadline: edge-c still has not bid.
		c.now = c.now.Add(chaincode.LiveWindow / 2)
		if _, err := c.invoke("OrgB", "Decide", "m1"); chaincode.CodeOf(err) != chaincode.CodeNotYet || !strings.Contains(err.Error(), "edge-c") {
			t.Fatalf("Decide by a bidder before every live cluster bid: %v, want %q naming edge-c", err, chaincode.CodeNotYet)
		}
		c.mustInvoke("OrgC", "SubmitBid", "m1", toJSON(t, bid("edge-c", 0)))
		// Once every cluster live at the proposal bid, any member may decide.
		if m := decodeMigration(t, c.mustInvoke("OrgB", "Decide", "m1")); m.Decision.Destination != "edge-b" {
			t.Errorf("decided %+v", m.Decision)
		}
	})
	t.Run("silent cluster is not live", func(t *testing.T) {
		c := withClusters(t)
		c.now = c.now.Add(chaincode.LiveWindow + chaincode.MaxClockSkew)
		// edge-a and edge-b report; edge-c stays silent past the live window.
		c.mustInvoke("OrgA", "ReportCapacity", "edge-a", "{}")
		c.mustInvoke("OrgB", "ReportCapacity", "edge-b", toJSON(t, registration("edge-b").Capacity))
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
		c := newAdmittedChain(t)
		c.mustInvoke("OrgA", "RegisterCluster", toJSON(t, registration("edge-a")))
		for _, id := range ids {
			c.mustInvoke(mspOf(id), "RegisterCluster", toJSON(t, registration(id)))
		}
		c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
		for _, id := range order {
			c.mustInvoke(mspOf(id), "SubmitBid", "m1", toJSON(t, bid(id, scores[id])))
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

// TestBidsRecordTheLedgersChecks: the recorded bid carries the clamped score, the coverage
// the ledger computed and, when the reported capacity is short, canHost false and why.
func TestBidsRecordTheLedgersChecks(t *testing.T) {
	c := withClusters(t)
	r := registration("edge-c")
	r.Location = far
	c.mustInvoke("OrgC", "RegisterCluster", toJSON(t, r))
	c.mustInvoke("OrgB", "ReportCapacity", "edge-b", `{"cpuMilli":8000,"memoryBytes":1073741824,"gpuSlots":1,"gpuMemoryBytes":34359738368}`)
	c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
	c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, chaincode.BidInput{ClusterID: "edge-b", CanHost: true, Score: 1e308}))
	c.mustInvoke("OrgC", "SubmitBid", "m1", toJSON(t, chaincode.BidInput{ClusterID: "edge-c", CanHost: true, CoversClient: true, Score: -5}))
	m := decodeMigration(t, c.mustInvoke("OrgA", "GetMigration", "m1"))
	b, cc := m.Bids[0], m.Bids[1]
	if b.Score != 100 || !b.CoversClient || b.CanHost || !strings.Contains(b.Reason, "memoryBytes 1073741824 free, 1 replicas need 4294967296") {
		t.Errorf("edge-b's bid recorded as %+v, want score 100, covering, not hosting for memory", b)
	}
	if cc.Score != 0 || cc.CoversClient || !cc.CanHost {
		t.Errorf("edge-c's bid recorded as %+v, want score 0, not covering (its site is far), hosting", cc)
	}
}

// TestMembership: a majority of member MSPs admits, a minority only votes; removal frees
// the id and stops the cluster; each step is its event.
func TestMembership(t *testing.T) {
	c := withClusters(t) // members OrgA, OrgB, OrgC
	admit := toJSON(t, chaincode.AdmissionInput{ClusterID: "edge-z", MSPID: "OrgZ"})
	a := decodeAdmission(t, c.mustInvoke("OrgA", "AdmitCluster", admit))
	if a.Admitted || lastEvent(t, c).Type != chaincode.EventAdmissionVoted {
		t.Fatalf("one vote of three admitted: %+v", a)
	}
	// The same member voting again does not count twice.
	c.mustInvoke("OrgA", "AdmitCluster", admit)
	if _, err := c.invoke("OrgZ", "RegisterCluster", toJSON(t, registration("edge-z"))); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Fatalf("registering before a majority: %v", err)
	}
	// A vote for another MSP does not count for OrgZ, and does not block it: OrgB changes
	// its mind, and its second vote replaces the first.
	if a = decodeAdmission(t, c.mustInvoke("OrgB", "AdmitCluster", toJSON(t, chaincode.AdmissionInput{ClusterID: "edge-z", MSPID: "OrgB"}))); a.Admitted {
		t.Fatalf("votes for two MSPs admitted: %+v", a)
	}
	a = decodeAdmission(t, c.mustInvoke("OrgB", "AdmitCluster", admit))
	if ev := lastEvent(t, c); !a.Admitted || a.AdmittedBy != "majority" || ev.Type != chaincode.EventClusterAdmitted || ev.ClusterID != "edge-z" {
		t.Fatalf("two votes of three: %+v, event %+v", a, ev)
	}
	c.mustInvoke("OrgZ", "RegisterCluster", toJSON(t, registration("edge-z")))

	c.mustInvoke(adminMSP, "RemoveCluster", "edge-z", "left the fleet")
	if ev := lastEvent(t, c); ev.Type != chaincode.EventClusterRemoved || ev.ClusterID != "edge-z" {
		t.Errorf("removal event %+v", ev)
	}
	if _, err := c.invoke("OrgZ", "ReportCapacity", "edge-z", "{}"); chaincode.CodeOf(err) != chaincode.CodeNotFound {
		t.Errorf("a removed cluster reports: %v, want not found", err)
	}
	if _, err := c.invoke("OrgZ", "RegisterCluster", toJSON(t, registration("edge-z"))); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Errorf("a removed cluster registers again: %v, want forbidden", err)
	}
	// The admin may now grant the id to someone else; a cluster may leave by itself.
	c.mustInvoke(adminMSP, "AdmitCluster", toJSON(t, chaincode.AdmissionInput{ClusterID: "edge-z", MSPID: "OrgY"}))
	c.mustInvoke("OrgY", "RegisterCluster", toJSON(t, registration("edge-z")))
	c.mustInvoke("OrgY", "RemoveCluster", "edge-z", "")
}

func decodeAdmission(t testing.TB, payload []byte) *chaincode.Admission {
	t.Helper()
	a := new(chaincode.Admission)
	if err := json.Unmarshal(payload, a); err != nil {
		t.Fatalf("decoding admission %s: %v", payload, err)
	}
	return a
}

// TestExpiryAndCompactionKeepOpenMigrations: an overdue proposal expires, a finished
// migration is compacted with its bids after the retention window, and the open one is
// untouched throughout.
func TestExpiryAndCompactionKeepOpenMigrations(t *testing.T) {
	c := withReady(t) // m1 Ready: open
	p := proposal("m2")
	p.BidTimeoutMillis = 1
	c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, p))
	c.mustInvoke("OrgB", "SubmitBid", "m2", toJSON(t, bid("edge-b", 1)))
	c.now = c.now.Add(chaincode.ExpiryGrace + chaincode.MaxClockSkew)
	m := decodeMigration(t, c.mustInvoke("OrgC", "ExpireMigration", "m2"))
	if ev := lastEvent(t, c); m.State != chaincode.StateAborted || ev.Type != chaincode.EventMigrationExpired || !strings.HasPrefix(m.StateReason, "expired") {
		t.Fatalf("expired: %s %q, event %+v", m.State, m.StateReason, ev)
	}
	if _, ok := c.world["bid/m2/edge-b"]; !ok {
		t.Fatal("m2's bid key is missing before compaction")
	}
	c.now = c.now.Add(chaincode.RetentionWindow + chaincode.MaxClockSkew)
	c.mustInvoke("OrgB", "CompactMigration", "m2")
	if ev := lastEvent(t, c); ev.Type != chaincode.EventMigrationCompacted || ev.MigrationID != "m2" {
		t.Errorf("compaction event %+v", ev)
	}
	for k := range c.world {
		if strings.Contains(k, "m2") {
			t.Errorf("key %s left after compaction", k)
		}
	}
	if _, err := c.invoke("OrgA", "GetMigration", "m2"); chaincode.CodeOf(err) != chaincode.CodeNotFound {
		t.Errorf("compacted migration: %v", err)
	}
	var open []*chaincode.Migration
	if err := json.Unmarshal(c.mustInvoke("OrgA", "ListOpenMigrations"), &open); err != nil || len(open) != 1 || open[0].ID != "m1" || open[0].State != chaincode.StateReady {
		t.Errorf("open migrations after expiry and compaction: %+v (%v), want m1 Ready", open, err)
	}
	if _, err := c.invoke("OrgB", "ExpireMigration", "m1"); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("expiring a Ready migration: %v, want a conflict", err)
	}
}
