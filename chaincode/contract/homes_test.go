package contract

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

// deadAfter is the dead-after window of the chains of these tests.
const deadAfter = 10 * time.Second

// origin is the service the tests move around.
const origin = "edge-a/default/6f1c0a52-1b7e-4d0e-9a51-3c2a9d1e7b40"

// newHomesChain is newAdmittedChain with a dead-after window of deadAfter, and edge-a,
// edge-b and edge-c registered.
func newHomesChain(t testing.TB) *chain {
	c := newChain(t)
	c.mustInvoke(adminMSP, "InitLedger", toJSON(t, chaincode.LedgerConfig{AdminMSP: adminMSP, DeadAfterSeconds: int64(deadAfter / time.Second)}))
	for _, id := range []string{"edge-a", "edge-b", "edge-c", "edge-d"} {
		c.mustInvoke(adminMSP, "AdmitCluster", toJSON(t, chaincode.AdmissionInput{ClusterID: id, MSPID: mspOf(id)}))
	}
	for _, id := range slices.Sorted(maps.Keys(orgs)) {
		c.mustInvoke(orgs[id], "RegisterCluster", toJSON(t, registration(id)))
	}
	return c
}

// homed is a proposal of the service of origin from source.
func homed(t testing.TB, id, source string) string {
	p := proposal(id)
	p.Source, p.Metadata.Origin, p.BidTimeoutMillis = source, origin, 1
	return toJSON(t, p)
}

// silence lets edge-b fall silent past the window while the others report.
func silence(t testing.TB, c *chain, silent string) {
	c.now = c.now.Add(deadAfter + chaincode.MaxClockSkew)
	for _, id := range slices.Sorted(maps.Keys(orgs)) {
		if id != silent {
			c.mustInvoke(orgs[id], "ReportCapacity", id, toJSON(t, registration(id).Capacity))
		}
	}
}

// withDeadB: edge-b is marked dead by OrgA.
func withDeadB(t testing.TB) *chain {
	c := newHomesChain(t)
	silence(t, c, "edge-b")
	c.mustInvoke("OrgA", "MarkClusterDead", "edge-b")
	return c
}

// withHome: origin moved from edge-a to edge-b (m1, completed).
func withHome(t testing.TB) *chain {
	c := newHomesChain(t)
	c.mustInvoke("OrgA", "ProposeMigration", homed(t, "m1", "edge-a"))
	c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 1)))
	c.mustInvoke("OrgA", "Decide", "m1")
	c.mustInvoke("OrgB", "ReportReady", "m1", "edge-b")
	c.mustInvoke("OrgA", "Complete", "m1")
	return c
}

// withHomeDead: as withHome, and edge-b was marked dead.
func withHomeDead(t testing.TB) *chain {
	c := withHome(t)
	silence(t, c, "edge-b")
	c.mustInvoke("OrgA", "MarkClusterDead", "edge-b")
	return c
}

// withRehomed: as withHomeDead, and edge-a took the service back.
func withRehomed(t testing.TB) *chain {
	c := withHomeDead(t)
	c.mustInvoke("OrgA", "RehomeService", origin)
	return c
}

// withSupersededReady: edge-b, home of origin, moved it on towards edge-c (Ready) when it
// was cut off; edge-a re-homed the service and edge-b came back.
func withSupersededReady(t testing.TB) *chain { return movedOnThenRehomed(t, "edge-c") }

// movedOnThenRehomed: edge-b, home of origin, moved it on towards dest (Ready) when it was
// cut off; edge-a re-homed the service and edge-b came back.
func movedOnThenRehomed(t testing.TB, dest string) *chain {
	c := withHome(t)
	c.mustInvoke("OrgB", "ProposeMigration", homed(t, "m2", "edge-b"))
	c.mustInvoke(orgs[dest], "SubmitBid", "m2", toJSON(t, bid(dest, 1)))
	c.mustInvoke("OrgB", "Decide", "m2")
	c.mustInvoke(orgs[dest], "ReportReady", "m2", dest)
	silence(t, c, "edge-b")
	c.mustInvoke("OrgA", "MarkClusterDead", "edge-b")
	c.mustInvoke("OrgA", "RehomeService", origin)
	c.mustInvoke("OrgB", "ReportCapacity", "edge-b", "{}")
	return c
}

func TestHomesRefusals(t *testing.T) {
	cases := []refusal{
		// MarkClusterDead.
		{"mark before the window", newHomesChain, "OrgA", "MarkClusterDead", []string{"edge-b"}, chaincode.CodeNotYet, "may be marked dead from"},
		{"mark by an outsider", func(t testing.TB) *chain { c := newHomesChain(t); silence(t, c, "edge-b"); return c }, "OrgZ", "MarkClusterDead", []string{"edge-b"}, chaincode.CodeForbidden, "may not mark clusters dead"},
		{"mark one's only cluster", func(t testing.TB) *chain { c := newHomesChain(t); silence(t, c, "edge-b"); return c }, "OrgB", "MarkClusterDead", []string{"edge-b"}, chaincode.CodeForbidden, `other than "edge-b"`},
		{"mark by a dead cluster's MSP", withDeadB, "OrgB", "MarkClusterDead", []string{"edge-c"}, chaincode.CodeForbidden, "not dead"},
		{"mark twice", withDeadB, "OrgC", "MarkClusterDead", []string{"edge-b"}, chaincode.CodeConflict, "already dead"},
		{"mark an unknown cluster", newHomesChain, "OrgA", "MarkClusterDead", []string{"edge-z"}, chaincode.CodeConflict, "not registered"},
		{"mark a bad id", newHomesChain, "OrgA", "MarkClusterDead", []string{"Edge B"}, chaincode.CodeInvalid, "not a DNS label"},
		// Dead is not live.
		{"bid by a dead cluster", func(t testing.TB) *chain {
			c := withDeadB(t)
			c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
			return c
		}, "OrgB", "SubmitBid", []string{"m1", toJSON(t, bid("edge-b", 1))}, chaincode.CodeConflict, "marked dead"},
		// RehomeService.
		{"re-home by another than the source", withHomeDead, "OrgC", "RehomeService", []string{origin}, chaincode.CodeForbidden, "may not re-home"},
		{"re-home from a live cluster", withHome, "OrgA", "RehomeService", []string{origin}, chaincode.CodeConflict, "which is not dead"},
		{"re-home twice", withRehomed, "OrgA", "RehomeService", []string{origin}, chaincode.CodeConflict, "re-homed to edge-a already"},
		{"re-home an unknown origin", withHome, "OrgA", "RehomeService", []string{"edge-a/default/other"}, chaincode.CodeNotFound, "no home"},
		{"re-home a bad origin", withHome, "OrgA", "RehomeService", []string{"edge-a/default"}, chaincode.CodeInvalid, "not cluster/namespace/uid"},
		{"re-home an origin with a control character", withHome, "OrgA", "RehomeService", []string{origin + "\x00"}, chaincode.CodeInvalid, "not cluster/namespace/uid"},
		{"re-home an origin too long", withHome, "OrgA", "RehomeService", []string{"edge-a/default/" + strings.Repeat("u", chaincode.MaxOriginLength)}, chaincode.CodeInvalid, "1 to 256 bytes"},
		{"get an unknown home", withHome, "OrgA", "GetHome", []string{"edge-a/default/other"}, chaincode.CodeNotFound, "no home"},
		// A superseded copy never moves on.
		{"propose from a superseded copy", func(t testing.TB) *chain {
			c := withRehomed(t)
			c.mustInvoke("OrgB", "ReportCapacity", "edge-b", "{}")
			return c
		}, "OrgB", "ProposeMigration", []string{homed(t, "m9", "edge-b")}, chaincode.CodeConflict, "homed at edge-a, not edge-b"},
		{"propose from the old source while homed elsewhere", withHome, "OrgA", "ProposeMigration", []string{homed(t, "m9", "edge-a")}, chaincode.CodeConflict, "homed at edge-b, not edge-a"},
		{"complete from a superseded copy", withSupersededReady, "OrgB", "Complete", []string{"m2"}, chaincode.CodeConflict, "homed at edge-a, not edge-b"},
		// The window.
		{"dead-after negative", newChainTB, adminMSP, "InitLedger", []string{`{"adminMsp":"OrgAdmin","deadAfterSeconds":-1}`}, chaincode.CodeInvalid, "dead-after -1 s is outside [1, 86400]"},
		{"dead-after over a day", newChainTB, adminMSP, "InitLedger", []string{`{"adminMsp":"OrgAdmin","deadAfterSeconds":86401}`}, chaincode.CodeInvalid, "dead-after 86401 s"},
		{"init again with another window", newHomesChain, adminMSP, "InitLedger", []string{`{"adminMsp":"OrgAdmin"}`}, chaincode.CodeConflict, "dead-after 10 s"},
	}
	runRefusals(t, cases)
}

// deadScenario builds open migrations from edge-a in every state edge-b's death touches,
// then lets edge-b fall silent and marks it dead, returning the chain and the payload of
// every transaction's events.
func deadScenario(t testing.TB) (*chain, [][]stubEvent) {
	c := newHomesChain(t)
	var events [][]stubEvent
	run := func(msp, fn string, args ...string) {
		t.Helper()
		c.mustInvoke(msp, fn, args...)
		events = append(events, c.last.events)
	}
	propose := func(id string, window int64) {
		p := proposal(id)
		p.BidTimeoutMillis = window
		run("OrgA", "ProposeMigration", toJSON(t, p))
	}
	// p1: Proposed, edge-b bid. p2: Proposed, only edge-c bid, bids open for long.
	propose("p1", 1)
	run("OrgB", "SubmitBid", "p1", toJSON(t, bid("edge-b", 0.9)))
	propose("p2", chaincode.MaxBidTimeoutMillis)
	run("OrgC", "SubmitBid", "p2", toJSON(t, bid("edge-c", 0.5)))
	// d1: Decided to edge-b, edge-c next. d2: Decided to edge-b alone. d3: Decided to edge-c.
	for _, d := range []struct {
		id     string
		scores map[string]float64
	}{{"d1", map[string]float64{"edge-b": 0.9, "edge-c": 0.5}}, {"d2", map[string]float64{"edge-b": 0.9}}, {"d3", map[string]float64{"edge-b": 0.1, "edge-c": 0.5}}} {
		propose(d.id, 1)
		for _, id := range slices.Sorted(maps.Keys(d.scores)) {
			run(orgs[id], "SubmitBid", d.id, toJSON(t, bid(id, d.scores[id])))
		}
		run("OrgA", "Decide", d.id)
	}
	// r1: Ready at edge-b.
	propose("r1", 1)
	run("OrgB", "SubmitBid", "r1", toJSON(t, bid("edge-b", 1)))
	run("OrgA", "Decide", "r1")
	run("OrgB", "ReportReady", "r1", "edge-b")
	silence(t, c, "edge-b")
	run("OrgC", "MarkClusterDead", "edge-b")
	return c, events
}

func TestMarkClusterDead(t *testing.T) {
	c, _ := deadScenario(t)
	ev := lastEvent(t, c)
	if ev.Type != chaincode.EventClusterDead || ev.ClusterID != "edge-b" || ev.MSPID != "OrgC" {
		t.Errorf("event %+v, want ClusterDead of edge-b by OrgC", ev)
	}
	var cl chaincode.Cluster
	if err := json.Unmarshal(c.mustInvoke("OrgA", "GetCluster", "edge-b"), &cl); err != nil || !cl.Dead || cl.DeadSince != ev.Time {
		t.Errorf("edge-b after MarkClusterDead: %+v (%v), want dead since %s", cl, err, ev.Time)
	}
	get := func(id string) *chaincode.Migration {
		return decodeMigration(t, c.mustInvoke("OrgA", "GetMigration", id))
	}
	last := func(m *chaincode.Migration) chaincode.HistoryEntry { return m.History[len(m.History)-1] }
	for _, want := range []struct {
		id, state, dest, lastEvent string
		excluded                   []string
	}{
		{"p1", chaincode.StateProposed, "", chaincode.EventClusterDead, []string{"edge-b"}},
		{"p2", chaincode.StateProposed, "", chaincode.EventClusterDead, []string{"edge-b"}},
		{"d1", chaincode.StateDecided, "edge-c", chaincode.EventDestinationFailed, []string{"edge-b"}},
		{"d2", chaincode.StateRejected, "", chaincode.EventDestinationFailed, []string{"edge-b"}},
		{"d3", chaincode.StateDecided, "edge-c", chaincode.EventClusterDead, []string{"edge-b"}},
		{"r1", chaincode.StateReady, "edge-b", chaincode.EventMigrationReady, nil},
	} {
		m := get(want.id)
		dest := ""
		if m.Decision != nil {
			dest = m.Decision.Destination
		}
		if m.State != want.state || dest != want.dest || last(m).Event != want.lastEvent || !slices.Equal(m.Excluded, want.excluded) {
			t.Errorf("%s: %s to %q, last %s, excluded %v; want %s to %q, last %s, excluded %v",
				want.id, m.State, dest, last(m).Event, m.Excluded, want.state, want.dest, want.lastEvent, want.excluded)
		}
		if want.lastEvent != chaincode.EventMigrationReady && (last(m).TxID != ev.TxID || last(m).Note != "edge-b: marked dead") {
			t.Errorf("%s: last history entry %+v, want the MarkClusterDead transaction's", want.id, last(m))
		}
	}
	if _, open := c.world["open/d2"]; open || c.world["closed/d2"] == nil {
		t.Error("d2, rejected, is still indexed as open")
	}
	// The dead cluster is not waited for: only edge-c is live, and it bid on p2.
	if m := decodeMigration(t, c.mustInvoke("OrgC", "Decide", "p2")); m.Decision == nil || m.Decision.Destination != "edge-c" {
		t.Errorf("p2 decided %+v, want edge-c without waiting for dead edge-b", m.Decision)
	}
	// p1's only bid is the dead cluster's, excluded: nobody can host.
	if m := decodeMigration(t, c.mustInvoke("OrgA", "Decide", "p1")); m.State != chaincode.StateRejected {
		t.Errorf("p1 decided %s %+v, want Rejected (edge-b excluded)", m.State, m.Decision)
	}
	// A Ready migration is its source's: it aborts, its copy still serving.
	if m := decodeMigration(t, c.mustInvoke("OrgA", "Abort", "r1", "destination dead")); m.State != chaincode.StateAborted {
		t.Errorf("r1 after Abort: %s", m.State)
	}
}

// TestMarkClusterDeadIsDeterministic: the same transactions give byte-identical world
// states and events, whatever map order or run.
func TestMarkClusterDeadIsDeterministic(t *testing.T) {
	c1, ev1 := deadScenario(t)
	for range 3 {
		c2, ev2 := deadScenario(t)
		if !maps.EqualFunc(c1.world, c2.world, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatal("two runs of the same transactions left different world states")
		}
		if fmt.Sprint(ev1) != fmt.Sprint(ev2) {
			t.Fatalf("two runs of the same transactions emitted different events:\n%v\n%v", ev1, ev2)
		}
	}
}

func TestRevival(t *testing.T) {
	for _, tc := range []struct {
		fn   string
		args func(t testing.TB) []string
	}{
		{"ReportCapacity", func(t testing.TB) []string { return []string{"edge-b", "{}"} }},
		{"RegisterCluster", func(t testing.TB) []string { return []string{toJSON(t, registration("edge-b"))} }},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			c := withDeadB(t)
			var cl chaincode.Cluster
			if err := json.Unmarshal(c.mustInvoke("OrgB", tc.fn, tc.args(t)...), &cl); err != nil || cl.Dead || cl.DeadSince != "" {
				t.Errorf("after %s: %+v (%v), want alive", tc.fn, cl, err)
			}
			if ev := lastEvent(t, c); ev.Type != chaincode.EventClusterRevived || ev.ClusterID != "edge-b" {
				t.Errorf("event %+v, want ClusterRevived of edge-b", ev)
			}
			// Once revived, a report is a report again, and the cluster bids.
			c.mustInvoke("OrgB", "ReportCapacity", "edge-b", "{}")
			if ev := lastEvent(t, c); ev.Type != chaincode.EventCapacityReported {
				t.Errorf("second report: event %s, want %s", ev.Type, chaincode.EventCapacityReported)
			}
			c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, proposal("m1")))
			c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 1)))
		})
	}
}

func TestHomes(t *testing.T) {
	c := withHome(t)
	completed := lastEvent(t, c)
	var h chaincode.Home
	if err := json.Unmarshal(c.mustInvoke("OrgC", "GetHome", origin), &h); err != nil {
		t.Fatal(err)
	}
	if want := (chaincode.Home{Origin: origin, Cluster: "edge-b", MigrationID: "m1", Source: "edge-a", Since: completed.Time}); h != want {
		t.Errorf("home after m1 completed: %+v, want %+v", h, want)
	}
	// Without an origin there is no home to keep.
	c.mustInvoke("OrgB", "ProposeMigration", toJSON(t, func() chaincode.Proposal {
		p := proposal("n1")
		p.Source, p.BidTimeoutMillis = "edge-b", 1
		return p
	}()))
	c.mustInvoke("OrgC", "SubmitBid", "n1", toJSON(t, bid("edge-c", 1)))
	c.mustInvoke("OrgB", "Decide", "n1")
	c.mustInvoke("OrgC", "ReportReady", "n1", "edge-c")
	c.mustInvoke("OrgB", "Complete", "n1")
	if got := string(c.mustInvoke("OrgA", "ListHomes")); got != "["+toJSON(t, h)+"]" {
		t.Errorf("homes %s, want only %s's", got, origin)
	}
	// The home moves on with the service: from edge-b to edge-c.
	c.mustInvoke("OrgB", "ProposeMigration", homed(t, "m2", "edge-b"))
	c.mustInvoke("OrgC", "SubmitBid", "m2", toJSON(t, bid("edge-c", 1)))
	c.mustInvoke("OrgB", "Decide", "m2")
	c.mustInvoke("OrgC", "ReportReady", "m2", "edge-c")
	c.mustInvoke("OrgB", "Complete", "m2")
	if err := json.Unmarshal(c.mustInvoke("OrgC", "GetHome", origin), &h); err != nil || h.Cluster != "edge-c" || h.Source != "edge-b" || h.MigrationID != "m2" {
		t.Errorf("home after m2: %+v (%v), want edge-c from edge-b by m2", h, err)
	}

	// edge-c dies: edge-b, m2's source, takes the service back.
	silence(t, c, "edge-c")
	c.mustInvoke("OrgA", "MarkClusterDead", "edge-c")
	h = chaincode.Home{}
	if err := json.Unmarshal(c.mustInvoke("OrgB", "RehomeService", origin), &h); err != nil {
		t.Fatal(err)
	}
	ev := lastEvent(t, c)
	if want := (chaincode.Home{Origin: origin, Cluster: "edge-b", RehomedFrom: "edge-c", Since: ev.Time}); h != want {
		t.Errorf("re-homed: %+v, want %+v", h, want)
	}
	if ev.Type != chaincode.EventServiceRehomed || ev.ClusterID != "edge-b" || ev.Origin != origin || ev.MigrationID != "m2" {
		t.Errorf("event %+v, want ServiceRehomed to edge-b of %s, put on edge-c by m2", ev, origin)
	}
	// edge-c comes back superseded; edge-b's copy moves on.
	c.mustInvoke("OrgC", "ReportCapacity", "edge-c", "{}")
	if _, err := c.invoke("OrgC", "ProposeMigration", homed(t, "m3", "edge-c")); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("edge-c proposing the superseded copy: %v, want a conflict", err)
	}
	c.mustInvoke("OrgB", "ProposeMigration", homed(t, "m3", "edge-b"))
}

// TestSupersededSourceAborts: a Ready migration from a source cut off and re-homed cannot
// complete (the service serves elsewhere now) and its source aborts it, its copy standing down.
func TestSupersededSourceAborts(t *testing.T) {
	c := withSupersededReady(t)
	if m := decodeMigration(t, c.mustInvoke("OrgB", "Abort", "m2", "superseded")); m.State != chaincode.StateAborted {
		t.Errorf("m2 after Abort: %s", m.State)
	}
	var h chaincode.Home
	if err := json.Unmarshal(c.mustInvoke("OrgC", "GetHome", origin), &h); err != nil || h.Cluster != "edge-a" {
		t.Errorf("home %+v (%v), want edge-a", h, err)
	}
}

// TestDeadlineInLedgerTime: the deadline is the proposal's timestamp plus its window, and
// only the source decides at it, before every live cluster bid.
func TestDeadlineInLedgerTime(t *testing.T) {
	c := withClusters(t)
	p := proposal("m1")
	p.BidTimeoutMillis = 2500
	m := decodeMigration(t, c.mustInvoke("OrgA", "ProposeMigration", toJSON(t, p)))
	if want := c.now.Add(2500 * time.Millisecond).Format(time.RFC3339Nano); m.Deadline != want || m.History[0].Time != c.now.Format(time.RFC3339Nano) {
		t.Errorf("deadline %s (proposed %s), want %s", m.Deadline, m.History[0].Time, want)
	}
	c.mustInvoke("OrgB", "SubmitBid", "m1", toJSON(t, bid("edge-b", 1)))
	if _, err := c.invoke("OrgA", "Decide", "m1"); chaincode.CodeOf(err) != chaincode.CodeNotYet {
		t.Fatalf("Decide 2 s after the proposal: %v, want not yet", err)
	}
	if m := decodeMigration(t, c.mustInvoke("OrgA", "Decide", "m1")); m.Decision == nil || m.Decision.Destination != "edge-b" {
		t.Errorf("Decide 3 s after the proposal: %+v", m.Decision)
	}
}

// TestMetadataMatchesDispatch: the contract's metadata (what Fabric clients see) has one
// transaction for every function Dispatch knows, and marks exactly the queries as evaluate.
func TestMetadataMatchesDispatch(t *testing.T) {
	c := newChain(t)
	var md struct {
		Contracts map[string]struct {
			Transactions []struct {
				Name string   `json:"name"`
				Tag  []string `json:"tag"`
			} `json:"transactions"`
		} `json:"contracts"`
	}
	if err := json.Unmarshal(c.mustInvoke("OrgA", "org.hyperledger.fabric:GetMetadata"), &md); err != nil {
		t.Fatal(err)
	}
	var names, evaluate []string
	for _, tx := range md.Contracts[chaincode.ContractName].Transactions {
		names = append(names, tx.Name)
		if slices.Contains(tx.Tag, "evaluate") || slices.Contains(tx.Tag, "EVALUATE") {
			evaluate = append(evaluate, tx.Name)
		}
	}
	slices.Sort(names)
	slices.Sort(evaluate)
	if want := chaincode.Functions(); !slices.Equal(names, want) {
		t.Errorf("contract transactions %v, Dispatch functions %v", names, want)
	}
	if want := slices.Sorted(slices.Values(chaincode.Queries)); !slices.Equal(evaluate, want) {
		t.Errorf("evaluate transactions %v, queries %v", evaluate, want)
	}
}

// TestRehomeFromRemovedCluster: a home whose cluster left the ledger counts as dead.
func TestRehomeFromRemovedCluster(t *testing.T) {
	c := withHome(t)
	c.mustInvoke(adminMSP, "RemoveCluster", "edge-b", "decommissioned")
	var h chaincode.Home
	if err := json.Unmarshal(c.mustInvoke("OrgA", "RehomeService", origin), &h); err != nil || h.Cluster != "edge-a" || h.RehomedFrom != "edge-b" {
		t.Errorf("re-homed %+v (%v), want edge-a from edge-b", h, err)
	}
}

// TestCompleteWhenTheDestinationTookItBack: edge-b moves the service on to edge-a and is
// cut off once edge-a is Ready; edge-a, the source of the earlier move, takes the service
// back. edge-b's completion is accepted, since the copy that serves is this migration's
// destination's; the home stays at edge-a, by this migration.
func TestCompleteWhenTheDestinationTookItBack(t *testing.T) {
	c := movedOnThenRehomed(t, "edge-a")
	c.mustInvoke("OrgB", "Complete", "m2")
	var h chaincode.Home
	if err := json.Unmarshal(c.mustInvoke("OrgC", "GetHome", origin), &h); err != nil || h.Cluster != "edge-a" || h.MigrationID != "m2" || h.Source != "edge-b" {
		t.Errorf("home after m2: %+v (%v), want edge-a by m2 from edge-b", h, err)
	}
}
