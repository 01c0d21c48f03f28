// Package geo is the coverage geometry of edge clusters: points on the Earth, great-circle
// distances and the circular coverage area of a cluster. It does no I/O.
package geo

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// EarthRadiusM is the Earth's mean radius (IUGG) in metres.
const EarthRadiusM = 6371008.8

// Point is a WGS84 position in decimal degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// String formats p as ParsePoint reads it.
func (p Point) String() string {
	return strconv.FormatFloat(p.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(p.Lon, 'f', -1, 64)
}

// Validate reports whether p is a position on the Earth.
func (p Point) Validate() error {
	if err := checkDegrees("latitude", p.Lat, 90); err != nil {
		return err
	}
	return checkDegrees("longitude", p.Lon, 180)
}

func checkDegrees(what string, v, limit float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s %v is not a number", what, v)
	}
	if v < -limit || v > limit {
		return fmt.Errorf("%s %v is out of range [-%v, %v]", what, v, limit, limit)
	}
	return nil
}

// Distance is the great-circle (haversine) distance between a and b in metres, on a sphere
// of radius EarthRadiusM: within 0.5% of the ellipsoidal distance, far below GPS and
// coverage-radius uncertainty.
func Distance(a, b Point) float64 {
	lat1, lat2 := radians(a.Lat), radians(b.Lat)
	dLat, dLon := lat2-lat1, radians(b.Lon-a.Lon)
	sinLat, sinLon := math.Sin(dLat/2), math.Sin(dLon/2)
	h := sinLat*sinLat + math.Cos(lat1)*math.Cos(lat2)*sinLon*sinLon
	// Rounding can push h just outside [0, 1] near the antipodes.
	h = math.Min(math.Max(h, 0), 1)
	return 2 * EarthRadiusM * math.Atan2(math.Sqrt(h), math.Sqrt(1-h))
}

func radians(deg float64) float64 { return deg * math.Pi / 180 }

// Coverage is the area an edge cluster serves: a circle on the Earth. A client inside
// RadiusM is covered; it has left only beyond RadiusM+HysteresisM, so a car driving along
// the border does not trigger a migration at every position report.
type Coverage struct {
	Center      Point   `json:"center"`
	RadiusM     float64 `json:"radiusM"`
	HysteresisM float64 `json:"hysteresisM,omitempty"`
}

// Validate reports whether c is a usable coverage area.
func (c Coverage) Validate() error {
	if err := c.Center.Validate(); err != nil {
		return fmt.Errorf("coverage centre: %w", err)
	}
	if math.IsNaN(c.RadiusM) || math.IsInf(c.RadiusM, 0) || c.RadiusM <= 0 {
		return fmt.Errorf("coverage radius %v m must be a positive number", c.RadiusM)
	}
	if math.IsNaN(c.HysteresisM) || math.IsInf(c.HysteresisM, 0) || c.HysteresisM < 0 {
		return fmt.Errorf("coverage hysteresis %v m must be zero or a positive number", c.HysteresisM)
	}
	return nil
}

// Distance is the distance in metres from the centre of c to p.
func (c Coverage) Distance(p Point) float64 { return Distance(c.Center, p) }

// Covers reports whether p is within the radius of c. The ledger decides coverage for
// bids itself, in integer arithmetic (chaincode's covers); the two agree except within
// chaincode.CoverageTolerance (and CoverageToleranceM) of the border (chaincode's TestCoverageAgreesWithGeo).
func (c Coverage) Covers(p Point) bool { return c.Distance(p) <= c.RadiusM }

// Left reports whether p is beyond the radius of c plus its hysteresis. Between the two, a
// client is neither covered nor gone: the cluster keeps serving it.
func (c Coverage) Left(p Point) bool { return c.Distance(p) > c.RadiusM+c.HysteresisM }

var errPointFormat = errors.New(`want "lat,lon" in decimal degrees, e.g. "35.8880,128.6110"`)

// North returns the point metres north of p along its meridian (south when negative), on
// the sphere Distance measures on.
func North(p Point, metres float64) Point {
	return Point{Lat: p.Lat + metres/(EarthRadiusM*math.Pi/180), Lon: p.Lon}
}

// ParsePoint reads "lat,lon" in decimal degrees, as given on command lines; spaces around
// either number are ignored.
func ParsePoint(s string) (Point, error) {
	latS, lonS, ok := strings.Cut(s, ",")
	if !ok || strings.Contains(lonS, ",") {
		return Point{}, fmt.Errorf("parsing point %q: %w", s, errPointFormat)
	}
	lat, err := strconv.ParseFloat(strings.TrimSpace(latS), 64)
	if err != nil {
		return Point{}, fmt.Errorf("parsing latitude of %q: %w", s, errPointFormat)
	}
	lon, err := strconv.ParseFloat(strings.TrimSpace(lonS), 64)
	if err != nil {
		return Point{}, fmt.Errorf("parsing longitude of %q: %w", s, errPointFormat)
	}
	p := Point{Lat: lat, Lon: lon}
	if err := p.Validate(); err != nil {
		return Point{}, fmt.Errorf("parsing point %q: %w", s, err)
	}
	return p, nil
}
