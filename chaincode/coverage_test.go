package chaincode

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgemigrate/edgemigrate/geo"
)

func TestCosTable(t *testing.T) {
	for d, v := range cosTable {
		if want := math.Round(math.Cos(float64(d)*math.Pi/180) * (1 << cosShift)); float64(v) != want {
			t.Errorf("cosTable[%d] = %d, want %v", d, v, want)
		}
	}
	if mm := 2 * math.Pi * geo.EarthRadiusM / 360 * 1000; math.Abs(mm-mmPerDegree) > 1 {
		t.Errorf("mmPerDegree %d, want %v (geo.EarthRadiusM)", mmPerDegree, mm)
	}
}

// TestCoverageAgreesWithGeo: the contract's integer coverage and geo's haversine agree on
// every client farther than CoverageTolerance of the radius (plus CoverageToleranceM) from
// the border, for radii from 10 m to 100 km, at latitudes up to 80°, across the antimeridian.
func TestCoverageAgreesWithGeo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	checked := 0
	for range 200_000 {
		site := Location{Lat: rng.Float64()*160 - 80, Lon: rng.Float64()*360 - 180}
		radius := math.Round(10 + rng.Float64()*100_000)
		// A client around the border, in any direction.
		d := radius * (0.98 + rng.Float64()*0.04)
		bearing := rng.Float64() * 2 * math.Pi
		dLat := d * math.Cos(bearing) / (geo.EarthRadiusM * math.Pi / 180)
		dLon := d * math.Sin(bearing) / (geo.EarthRadiusM * math.Pi / 180 * math.Cos(site.Lat*math.Pi/180))
		client := Location{Lat: math.Max(-90, math.Min(90, site.Lat+dLat)), Lon: math.Remainder(site.Lon+dLon, 360)}
		g := geo.Distance(geo.Point{Lat: site.Lat, Lon: site.Lon}, geo.Point{Lat: client.Lat, Lon: client.Lon})
		if math.Abs(g-radius) <= CoverageTolerance*radius+CoverageToleranceM {
			continue // on the border: either answer is right
		}
		checked++
		if got, want := covers(site, radius, client), g <= radius; got != want {
			t.Fatalf("site %+v radius %v m, client %+v at %.3f m (geo): contract says covered=%v, geo %v", site, radius, client, g, got, want)
		}
	}
	if checked < 100_000 {
		t.Fatalf("only %d points away from the border were checked", checked)
	}
}

func TestCoverageEdges(t *testing.T) {
	origin := Location{Lat: 35, Lon: 128}
	north := func(m float64) Location {
		p := geo.North(geo.Point{Lat: origin.Lat, Lon: origin.Lon}, m)
		return Location{Lat: p.Lat, Lon: p.Lon}
	}
	cases := []struct {
		name   string
		site   Location
		radius float64
		client Location
		want   bool
	}{
		{"centre", origin, 0, origin, true},
		{"just inside", origin, 1000, north(999), true},
		{"just outside", origin, 1000, north(1001), false},
		{"across the antimeridian", Location{Lat: 0, Lon: 179.999}, 500, Location{Lat: 0, Lon: -179.999}, true},
		{"pole", Location{Lat: 90, Lon: 0}, 1000, Location{Lat: 89.995, Lon: 123}, true},
		{"half the Earth", Location{Lat: 90, Lon: 0}, MaxCoverageRadiusM, Location{Lat: -90, Lon: 0}, true},
		{"antipode beyond a large radius", Location{Lat: 0, Lon: 0}, 10_000_000, Location{Lat: 0, Lon: 180}, false},
	}
	for _, tc := range cases {
		if got := covers(tc.site, tc.radius, tc.client); got != tc.want {
			t.Errorf("%s: covers = %v, want %v", tc.name, got, tc.want)
		}
	}
}
