package localfleet

import (
	"fmt"

	"github.com/edgemigrate/edgemigrate/geo"
)

const (
	// SiteSpacingM and SiteRadiusM place default sites so that neighbours' coverage
	// overlaps by 400 m: a client driving along the line is always covered by someone, and
	// briefly by two.
	SiteSpacingM = 2000.0
	SiteRadiusM  = 1200.0
)

// origin is the first default site (Daegu, where the BloSM testbed stood).
var origin = geo.Point{Lat: 35.8880, Lon: 128.6110}

// DefaultSites returns n sites named edge-a, edge-b, … on a north-south line SiteSpacingM
// apart, each covering SiteRadiusM.
func DefaultSites(n int) []Site {
	sites := make([]Site, n)
	for i := range sites {
		sites[i] = Site{
			ID:      SiteID(i),
			Lat:     geo.North(origin, float64(i)*SiteSpacingM).Lat,
			Lon:     origin.Lon,
			RadiusM: SiteRadiusM,
		}
	}
	return sites
}

// SiteID is the default id of the i-th cluster: edge-a … edge-z, then edge-26, ….
func SiteID(i int) string {
	if i < 26 {
		return "edge-" + string(rune('a'+i))
	}
	return fmt.Sprintf("edge-%d", i)
}

// Point is the site's position.
func (s Site) Point() geo.Point { return geo.Point{Lat: s.Lat, Lon: s.Lon} }
