package chaincode

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// checkParse is the property every Parse function must have: bad input is an invalid-argument
// error, never a panic; accepted input survives a round trip through JSON unchanged and
// still valid.
func checkParse[T any](t *testing.T, arg string, parse func(string) (T, error)) {
	v, err := parse(arg)
	if err != nil {
		if CodeOf(err) != CodeInvalid {
			t.Fatalf("error %q has code %q, want %q", err, CodeOf(err), CodeInvalid)
		}
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encoding accepted %T: %v", v, err)
	}
	again, err := parse(string(b))
	if err != nil {
		t.Fatalf("re-encoded %T %s was refused: %v", v, b, err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Fatalf("round trip changed %+v into %+v", v, again)
	}
}

func FuzzParseProposal(f *testing.F) {
	f.Add(`{"id":"m1","source":"edge-a","workload":"Deployment/default/detector","metadata":{"image":"detector:1"},"reason":"Manual","bidTimeoutMillis":2000}`)
	f.Fuzz(func(t *testing.T, arg string) { checkParse(t, arg, ParseProposal) })
}

func FuzzParseBid(f *testing.F) {
	f.Add(`{"clusterId":"edge-b","canHost":true,"coversClient":true,"score":0.5}`)
	f.Fuzz(func(t *testing.T, arg string) { checkParse(t, arg, ParseBid) })
}

func FuzzParseClusterRegistration(f *testing.F) {
	f.Add(`{"id":"edge-a","location":{"lat":37.5,"lon":127},"coverageRadiusM":2000,"capacity":{"cpuMilli":8000}}`)
	f.Fuzz(func(t *testing.T, arg string) { checkParse(t, arg, ParseClusterRegistration) })
}

func FuzzParseResources(f *testing.F) {
	f.Add(`{"cpuMilli":8000,"memoryBytes":34359738368,"gpuSlots":1,"gpuMemoryBytes":0}`)
	f.Fuzz(func(t *testing.T, arg string) { checkParse(t, arg, ParseResources) })
}

func FuzzParseLedgerConfig(f *testing.F) {
	f.Add(`{"adminMsp":"Org1MSP","deadAfterSeconds":30}`)
	f.Add(`{"adminMsp":"Org1MSP"}`)
	f.Fuzz(func(t *testing.T, arg string) { checkParse(t, arg, ParseLedgerConfig) })
}

// FuzzValidateOrigin: an origin names a state key, so whatever is accepted has the
// cluster/namespace/uid shape, is bounded and has no byte that could forge another key.
func FuzzValidateOrigin(f *testing.F) {
	f.Add("edge-a/default/6f1c0a52-1b7e-4d0e-9a51-3c2a9d1e7b40")
	f.Add("edge-a/default/uid/extra")
	f.Fuzz(func(t *testing.T, origin string) {
		err := ValidateOrigin(origin)
		if err != nil {
			if CodeOf(err) != CodeInvalid {
				t.Fatalf("error %q has code %q, want %q", err, CodeOf(err), CodeInvalid)
			}
			return
		}
		if len(origin) > MaxOriginLength || strings.Count(origin, "/") != 2 || strings.ContainsFunc(origin, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Fatalf("accepted origin %q", origin)
		}
		if _, err := GetHome(&memState{world: map[string][]byte{}}, origin); CodeOf(err) != CodeNotFound {
			t.Fatalf("GetHome(%q) on an empty ledger: %v, want not found", origin, err)
		}
	})
}
