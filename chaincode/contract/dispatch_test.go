package contract

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

// stubState is State over a fakeStub without the contractapi dispatcher.
type stubState struct {
	*fakeStub
	msp string
}

func (s stubState) TxID() string                    { return s.txID }
func (s stubState) TxTimestamp() (time.Time, error) { return s.ts, nil }
func (s stubState) CallerMSPID() (string, error)    { return s.msp, nil }
func (s stubState) RangeState(start, end string, fn func(string, []byte) error) error {
	return fabricState{}.rangeIterator(s.fakeStub.GetStateByRange(start, end))(fn)
}

// TestDispatchMatchesContract runs the same transactions through Fabric's dispatcher and
// through Dispatch (the embedded ledger's path): results, world state and events must be
// byte-for-byte the same.
func TestDispatchMatchesContract(t *testing.T) {
	fabric := newChain(t)
	world := map[string][]byte{}
	now, seq := epoch, 0
	m1 := proposal("m1")
	m1.Metadata.Origin = origin
	steps := []struct {
		msp, fn string
		args    []string
	}{
		{adminMSP, "InitLedger", []string{`{"adminMsp":"` + adminMSP + `"}`}},
		{adminMSP, "AdmitCluster", []string{`{"clusterId":"edge-a","mspId":"OrgA"}`}},
		{adminMSP, "AdmitCluster", []string{`{"clusterId":"edge-b","mspId":"OrgB"}`}},
		{adminMSP, "AdmitCluster", []string{`{"clusterId":"edge-c","mspId":"OrgC"}`}},
		{"OrgA", "RegisterCluster", []string{toJSON(t, registration("edge-a"))}},
		{"OrgB", "RegisterCluster", []string{toJSON(t, registration("edge-b"))}},
		{"OrgC", "RegisterCluster", []string{toJSON(t, registration("edge-c"))}},
		{"OrgC", "ReportCapacity", []string{"edge-c", `{"cpuMilli":100}`}},
		{"OrgA", "ProposeMigration", []string{toJSON(t, m1)}},
		{"OrgB", "SubmitBid", []string{"m1", toJSON(t, bid("edge-b", 1))}},
		{"OrgC", "SubmitBid", []string{"m1", toJSON(t, bid("edge-c", 2))}},
		{"OrgB", "GetMigration", []string{"m1"}},
		{"OrgB", "SubmitBid", []string{"m1", toJSON(t, bid("edge-c", 2))}}, // refused: OrgB does not own edge-c
		{"OrgB", "Decide", []string{"m1"}},
		{"OrgC", "ReportFailed", []string{"m1", "edge-c", "oom"}},
		{"OrgB", "ReportReady", []string{"m1", "edge-b"}},
		{"OrgA", "ListOpenMigrations", nil},
		{"OrgA", "Complete", []string{"m1"}},
		{"OrgC", "GetHome", []string{origin}},
		{"OrgA", "ListClusters", nil},
		{"OrgA", "Abort", []string{"m1", "late"}}, // refused: Completed
		{"OrgB", "AdmitCluster", []string{`{"clusterId":"edge-d","mspId":"OrgD"}`}},
		{"OrgC", "AdmitCluster", []string{`{"clusterId":"edge-d","mspId":"OrgD"}`}},
		{"OrgA", "ListAdmissions", nil},
		{"OrgA", "GetAdmission", []string{"edge-d"}},
		{"OrgA", "GetLedgerConfig", nil},
		{"OrgA", "ListFinishedMigrations", nil},
		{"OrgB", "CompactMigration", []string{"m1"}},    // refused: within the retention window
		{"OrgA", "MarkClusterDead", []string{"edge-b"}}, // refused: not silent long enough
		{"", "wait", []string{(chaincode.DefaultDeadAfter + chaincode.MaxClockSkew).String()}},
		{"OrgA", "ReportCapacity", []string{"edge-a", `{}`}},
		{"OrgC", "ReportCapacity", []string{"edge-c", `{}`}},
		{"OrgC", "MarkClusterDead", []string{"edge-b"}},
		{"OrgB", "RehomeService", []string{origin}}, // refused: not the source's MSP
		{"OrgA", "RehomeService", []string{origin}},
		{"OrgB", "ListHomes", nil},
		{"OrgB", "ReportCapacity", []string{"edge-b", `{}`}}, // revived
		{"OrgC", "RemoveCluster", []string{"edge-c", "leaving"}},
	}
	for _, s := range steps {
		if s.fn == "wait" {
			d, err := time.ParseDuration(s.args[0])
			if err != nil {
				t.Fatal(err)
			}
			now, fabric.now = now.Add(d), fabric.now.Add(d)
			continue
		}
		want, wantErr := fabric.invoke(s.msp, s.fn, s.args...)
		seq++
		now = now.Add(time.Second)
		stub := &fakeStub{world: world, writes: map[string][]byte{}, txID: fmt.Sprintf("tx%04d", seq), ts: now}
		got, gotErr := chaincode.Dispatch(stubState{stub, s.msp}, s.fn, s.args)
		if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Fatalf("%s: contract error %v, Dispatch error %v", s.fn, wantErr, gotErr)
		}
		if gotErr != nil {
			continue
		}
		if string(got) != string(want) {
			t.Errorf("%s: contract returned\n%s\nDispatch returned\n%s", s.fn, want, got)
		}
		if fmt.Sprint(stub.events) != fmt.Sprint(fabric.last.events) {
			t.Errorf("%s: events differ: %v and %v", s.fn, fabric.last.events, stub.events)
		}
		for k, v := range stub.writes {
			if v == nil {
				delete(world, k)
			} else {
				world[k] = v
			}
		}
	}
	if !maps.EqualFunc(world, fabric.world, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("world states differ:\n%q\n%q", world, fabric.world)
	}
	// The steps did what they say: edge-b died and m1's source took its service back.
	var h chaincode.Home
	if err := json.Unmarshal(world["home/"+origin], &h); err != nil || h.Cluster != "edge-a" || h.RehomedFrom != "edge-b" {
		t.Errorf("home of %s at the end: %+v (%v), want re-homed to edge-a from edge-b", origin, h, err)
	}
}

func TestDispatchRefusesBadCalls(t *testing.T) {
	st := stubState{&fakeStub{world: map[string][]byte{}, writes: map[string][]byte{}, ts: epoch}, "OrgA"}
	for _, tc := range []struct {
		fn   string
		args []string
	}{{"Steal", nil}, {"Decide", nil}, {"GetCluster", []string{"a", "b"}}} {
		if _, err := chaincode.Dispatch(st, tc.fn, tc.args); chaincode.CodeOf(err) != chaincode.CodeInvalid {
			t.Errorf("Dispatch(%s, %q) = %v, want an invalid-argument error", tc.fn, tc.args, err)
		}
	}
}
