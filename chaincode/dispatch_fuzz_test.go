package chaincode

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// memState is State over a map, with Fabric's rules: reads see the state before the
// transaction, writes wait in a write set.
type memState struct {
	world  map[string][]byte
	writes map[string][]byte // nil value: delete
	msp    string
	ts     time.Time
	events int
}

func (s *memState) GetState(key string) ([]byte, error) { return bytes.Clone(s.world[key]), nil }
func (s *memState) PutState(key string, value []byte) error {
	s.writes[key] = bytes.Clone(value)
	return nil
}
func (s *memState) DelState(key string) error { s.writes[key] = nil; return nil }
func (s *memState) RangeState(start, end string, fn func(string, []byte) error) error {
	for _, k := range slices.Sorted(maps.Keys(s.world)) {
		if k >= start && k < end {
			if err := fn(k, bytes.Clone(s.world[k])); err != nil {
				return err
			}
		}
	}
	return nil
}
func (s *memState) TxID() string                    { return "tx" }
func (s *memState) TxTimestamp() (time.Time, error) { return s.ts, nil }
func (s *memState) CallerMSPID() (string, error)    { return s.msp, nil }
func (s *memState) SetEvent(string, []byte) error   { s.events++; return nil }
func (s *memState) commit()                         { commitWrites(s.world, s.writes) }
func commitWrites(world, writes map[string][]byte) {
	for k, v := range writes {
		if v == nil {
			delete(world, k)
		} else {
			world[k] = v
		}
	}
}

var functions = slices.Sorted(maps.Keys(arity))

// FuzzDispatch calls any function with any arguments, as any of three MSPs, on a ledger with
// clusters, a proposed and a decided migration. Whatever it is given, the contract must not
// panic, a refusal must write and emit nothing, and a transaction must emit one event.
func FuzzDispatch(f *testing.F) {
	f.Add(uint8(0), uint8(0), "m1", `{"clusterId":"edge-b","canHost":true,"score":1}`, "")
	f.Fuzz(func(t *testing.T, fnIndex, mspIndex uint8, a0, a1, a2 string) {
		world := fuzzWorld(t)
		fn := functions[int(fnIndex)%len(functions)]
		args := []string{a0, a1, a2}[:arity[fn]]
		st := &memState{world: world, writes: map[string][]byte{}, msp: []string{"OrgA", "OrgB", "OrgZ", "OrgAdmin"}[mspIndex%4], ts: epochForFuzz.Add(time.Minute)}
		_, err := Dispatch(st, fn, args)
		if err != nil {
			if len(st.writes) != 0 || st.events != 0 {
				t.Fatalf("%s(%q) refused (%v) but wrote %d keys and %d events", fn, args, err, len(st.writes), st.events)
			}
			if CodeOf(err) == "" {
				t.Fatalf("%s(%q): error without a code: %v", fn, args, err)
			}
			return
		}
		query := slices.Contains(Queries, fn)
		if query && (len(st.writes) != 0 || st.events != 0) || !query && st.events != 1 {
			t.Fatalf("%s(%q) wrote %d keys and emitted %d events", fn, args, len(st.writes), st.events)
		}
	})
}

var epochForFuzz = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// fuzzWorld builds, admitted by OrgAdmin (dead-after 1 s), edge-a (OrgA), edge-b and edge-c
// (OrgB), migration m1 from edge-a Proposed with a bid from edge-b, m2 Decided to edge-b,
// and m3 of origin edge-a/default/u1 Completed to edge-c, which OrgA then marked dead: the
// fuzzer may re-home that service, revive edge-c, or mark edge-b dead.
func fuzzWorld(t *testing.T) map[string][]byte {
	world := map[string][]byte{}
	at := epochForFuzz
	run := func(msp, fn string, args ...string) {
		st := &memState{world: world, writes: map[string][]byte{}, msp: msp, ts: at}
		if _, err := Dispatch(st, fn, args); err != nil {
			t.Fatalf("building the world: %s: %v", fn, err)
		}
		st.commit()
	}
	run("OrgAdmin", "InitLedger", `{"adminMsp":"OrgAdmin","deadAfterSeconds":1}`)
	for _, c := range []struct{ msp, id string }{{"OrgA", "edge-a"}, {"OrgB", "edge-b"}, {"OrgB", "edge-c"}} {
		run("OrgAdmin", "AdmitCluster", `{"clusterId":"`+c.id+`","mspId":"`+c.msp+`"}`)
		run(c.msp, "RegisterCluster", `{"id":"`+c.id+`","location":{"lat":1,"lon":2},"coverageRadiusM":100}`)
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		run("OrgA", "ProposeMigration", strings.ReplaceAll(`{"id":"M","source":"edge-a","workload":"Deployment/default/x","metadata":{"image":"x","origin":"edge-a/default/u1"},"reason":"Manual","bidTimeoutMillis":1}`, `"M"`, `"`+m+`"`))
		run("OrgB", "SubmitBid", m, `{"clusterId":"edge-b","canHost":true,"score":1}`)
	}
	at = at.Add(time.Millisecond)
	run("OrgB", "SubmitBid", "m3", `{"clusterId":"edge-c","canHost":true,"score":2}`)
	run("OrgA", "Decide", "m2")
	run("OrgA", "Decide", "m3")
	run("OrgB", "ReportReady", "m3", "edge-c")
	run("OrgA", "Complete", "m3")
	at = at.Add(MaxClockSkew + 2*time.Second)
	run("OrgA", "ReportCapacity", "edge-a", `{}`)
	run("OrgB", "ReportCapacity", "edge-b", `{}`)
	run("OrgA", "MarkClusterDead", "edge-c")
	return world
}
