package locator

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// FuzzDecodeLocation feeds arbitrary bodies to the location decoder: it must never panic;
// what it accepts must be a single valid JSON object whose coordinates are in range, and
// that decodes the same way through encoding/json; what it refuses carries the shape of a
// valid body or the coordinate at fault. The seed corpus is in testdata/fuzz/FuzzDecodeLocation;
// run with: go test -run '^$' -fuzz FuzzDecodeLocation ./locator/
func FuzzDecodeLocation(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeLocation(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, errLocationShape) && !strings.HasPrefix(err.Error(), "invalid location: ") {
				t.Fatalf("refusal %q neither shows the expected shape nor names the bad coordinate", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted %q as %v, which is invalid: %v", data, p, err)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var ref map[string]any
		if err := json.Unmarshal(data, &ref); err != nil {
			t.Fatalf("accepted %q, which is not a JSON object: %v", data, err)
		}
		if len(ref) > 2 {
			t.Fatalf("accepted %q with fields other than lat and lon", data)
		}
		var plain struct{ Lat, Lon float64 }
		if err := json.Unmarshal(data, &plain); err != nil || plain.Lat != p.Lat || plain.Lon != p.Lon {
			t.Fatalf("accepted %q as %v, encoding/json reads %+v (%v)", data, p, plain, err)
		}
		if math.IsNaN(p.Lat) || math.IsNaN(p.Lon) {
			t.Fatalf("accepted NaN from %q", data)
		}
	})
}
