package geo

import (
	"math"
	"strings"
	"testing"
)

var (
	seoul  = Point{Lat: 37.5665, Lon: 126.9780}
	busan  = Point{Lat: 35.1796, Lon: 129.0756}
	daegu  = Point{Lat: 35.8880, Lon: 128.6110}
	halfC  = math.Pi * EarthRadiusM // half the circumference: antipodes
	degree = halfC / 180            // one degree of a great circle
)

func TestDistance(t *testing.T) {
	tests := []struct {
		name string
		a, b Point
		want float64
		tol  float64 // relative
	}{
		// Great-circle distances from the haversine formula on the mean sphere; Seoul–Busan
		// City Hall is about 325 km as the crow flies.
		{"Seoul-Busan", seoul, busan, 325e3, 0.005},
		{"Busan-Seoul symmetric", busan, seoul, 325e3, 0.005},
		{"same point", daegu, daegu, 0, 0},
		{"one degree along the equator", Point{0, 0}, Point{0, 1}, degree, 1e-12},
		{"one degree along a meridian", Point{10, 20}, Point{11, 20}, degree, 1e-12},
		{"across the antimeridian", Point{0, 179.5}, Point{0, -179.5}, degree, 1e-9},
		{"antipodes on the equator", Point{0, 0}, Point{0, 180}, halfC, 1e-12},
		{"antipodes off the equator", Point{35.888, 128.611}, Point{-35.888, 128.611 - 180}, halfC, 1e-12},
		{"pole to pole", Point{90, 0}, Point{-90, 0}, halfC, 1e-12},
		{"north pole, any longitude", Point{90, 0}, Point{90, 123}, 0, 0},
		{"pole to equator", Point{90, 0}, Point{0, 77}, halfC / 2, 1e-12},
		{"quarter of the equator", Point{0, -45}, Point{0, 45}, halfC / 2, 1e-12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Distance(tt.a, tt.b)
			if math.IsNaN(got) {
				t.Fatalf("Distance(%v, %v) is NaN", tt.a, tt.b)
			}
			if tt.want == 0 {
				if got > 1e-6 {
					t.Errorf("Distance(%v, %v) = %v m, want 0", tt.a, tt.b, got)
				}
				return
			}
			if rel := math.Abs(got-tt.want) / tt.want; rel > tt.tol {
				t.Errorf("Distance(%v, %v) = %.3f m, want %.3f m within %g (off by %g)", tt.a, tt.b, got, tt.want, tt.tol, rel)
			}
		})
	}
}

func TestPointValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Point
		wantErr string
	}{
		{"Daegu", daegu, ""},
		{"corners", Point{-90, 180}, ""},
		{"other corners", Point{90, -180}, ""},
		{"latitude too big", Point{90.0001, 0}, "latitude 90.0001 is out of range [-90, 90]"},
		{"latitude too small", Point{-91, 0}, "latitude -91 is out of range"},
		{"longitude too big", Point{0, 180.5}, "longitude 180.5 is out of range [-180, 180]"},
		{"longitude too small", Point{0, -181}, "longitude -181 is out of range"},
		{"NaN latitude", Point{math.NaN(), 0}, "latitude NaN is not a number"},
		{"infinite longitude", Point{0, math.Inf(-1)}, "longitude -Inf is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.p.Validate(), tt.wantErr)
		})
	}
}

func TestCoverage(t *testing.T) {
	// 10 km around Daegu with 500 m of hysteresis, probed along the meridian through the
	// centre, where a distance d is d/degree degrees of latitude.
	c := Coverage{Center: daegu, RadiusM: 10e3, HysteresisM: 500}
	at := func(metres float64) Point { return Point{Lat: daegu.Lat + metres/degree, Lon: daegu.Lon} }
	tests := []struct {
		name      string
		p         Point
		covers    bool
		left      bool
		wantDistM float64
		coverage  Coverage
	}{
		{name: "centre", p: daegu, covers: true, left: false, wantDistM: 0},
		{name: "well inside", p: at(5e3), covers: true, left: false, wantDistM: 5e3},
		{name: "just inside the radius", p: at(9999), covers: true, left: false, wantDistM: 9999},
		{name: "just outside the radius, within hysteresis", p: at(10001), covers: false, left: false, wantDistM: 10001},
		{name: "at the hysteresis edge", p: at(10499), covers: false, left: false, wantDistM: 10499},
		{name: "just beyond the hysteresis", p: at(10501), covers: false, left: true, wantDistM: 10501},
		{name: "Busan", p: busan, covers: false, left: true, wantDistM: Distance(daegu, busan)},
		{name: "south of the centre", p: at(-10501), covers: false, left: true, wantDistM: 10501},
		{name: "no hysteresis: just outside has left", p: at(10001), covers: false, left: true, wantDistM: 10001,
			coverage: Coverage{Center: daegu, RadiusM: 10e3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cov := c
			if tt.coverage != (Coverage{}) {
				cov = tt.coverage
			}
			if got := cov.Covers(tt.p); got != tt.covers {
				t.Errorf("Covers(%v) = %v, want %v (distance %.3f m)", tt.p, got, tt.covers, cov.Distance(tt.p))
			}
			if got := cov.Left(tt.p); got != tt.left {
				t.Errorf("Left(%v) = %v, want %v (distance %.3f m)", tt.p, got, tt.left, cov.Distance(tt.p))
			}
			if got := cov.Distance(tt.p); math.Abs(got-tt.wantDistM) > 1e-3 {
				t.Errorf("Distance(%v) = %.6f m, want %.6f m", tt.p, got, tt.wantDistM)
			}
		})
	}
}

func TestCoverageExactBoundary(t *testing.T) {
	// The radius and the hysteresis edge are inclusive: a point exactly there stays.
	p := Point{0, 1}
	d := Distance(Point{0, 0}, p)
	c := Coverage{Center: Point{0, 0}, RadiusM: d, HysteresisM: 0}
	if !c.Covers(p) || c.Left(p) {
		t.Errorf("point at exactly the radius: Covers=%v Left=%v, want true false", c.Covers(p), c.Left(p))
	}
	c = Coverage{Center: Point{0, 0}, RadiusM: d / 2, HysteresisM: d - d/2}
	if c.Covers(p) || c.Left(p) {
		t.Errorf("point at exactly radius+hysteresis: Covers=%v Left=%v, want false false", c.Covers(p), c.Left(p))
	}
}

func TestCoverageValidate(t *testing.T) {
	tests := []struct {
		name    string
		c       Coverage
		wantErr string
	}{
		{"valid", Coverage{Center: daegu, RadiusM: 1000, HysteresisM: 100}, ""},
		{"no hysteresis", Coverage{Center: daegu, RadiusM: 1000}, ""},
		{"bad centre", Coverage{Center: Point{100, 0}, RadiusM: 1000}, "coverage centre: latitude 100 is out of range"},
		{"zero radius", Coverage{Center: daegu}, "coverage radius 0 m must be a positive number"},
		{"negative radius", Coverage{Center: daegu, RadiusM: -1}, "coverage radius -1 m"},
		{"NaN radius", Coverage{Center: daegu, RadiusM: math.NaN()}, "coverage radius NaN m"},
		{"infinite radius", Coverage{Center: daegu, RadiusM: math.Inf(1)}, "coverage radius +Inf m"},
		{"negative hysteresis", Coverage{Center: daegu, RadiusM: 1, HysteresisM: -1}, "coverage hysteresis -1 m must be zero or a positive number"},
		{"NaN hysteresis", Coverage{Center: daegu, RadiusM: 1, HysteresisM: math.NaN()}, "coverage hysteresis NaN m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErr(t, tt.c.Validate(), tt.wantErr) })
	}
}

func TestParsePoint(t *testing.T) {
	tests := []struct {
		in      string
		want    Point
		wantErr string
	}{
		{in: "35.8880,128.6110", want: daegu},
		{in: " 35.888 , 128.611 ", want: daegu},
		{in: "-90,-180", want: Point{-90, -180}},
		{in: "0,0", want: Point{0, 0}},
		{in: "1e1,2e1", want: Point{10, 20}},
		{in: "", wantErr: `parsing point "": want "lat,lon"`},
		{in: "35.888", wantErr: `parsing point "35.888": want "lat,lon"`},
		{in: "1,2,3", wantErr: `parsing point "1,2,3"`},
		{in: "north,128", wantErr: `parsing latitude of "north,128"`},
		{in: "35,east", wantErr: `parsing longitude of "35,east"`},
		{in: "35,", wantErr: `parsing longitude of "35,"`},
		{in: "91,0", wantErr: `parsing point "91,0": latitude 91 is out of range`},
		{in: "0,-180.1", wantErr: "longitude -180.1 is out of range"},
		{in: "NaN,0", wantErr: "latitude NaN is not a number"},
		{in: "0,Inf", wantErr: "longitude +Inf is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePoint(tt.in)
			checkErr(t, err, tt.wantErr)
			if tt.wantErr == "" && got != tt.want {
				t.Errorf("ParsePoint(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParsePoint: whatever the input, ParsePoint either refuses it or returns a valid point
// that its String form parses back to exactly.
func FuzzParsePoint(f *testing.F) {
	for _, s := range []string{"35.8880,128.6110", "-90,180", " 1 , 2 ", "1,2,3", "NaN,0", "0x1p-2,1e2", "", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePoint(s)
		if err != nil {
			if p != (Point{}) {
				t.Fatalf("ParsePoint(%q) failed but returned %v", s, p)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePoint(%q) = %v, which is invalid: %v", s, p, err)
		}
		back, err := ParsePoint(p.String())
		if err != nil || back != p {
			t.Fatalf("ParsePoint(%q) = %v; its String %q parses to %v, %v", s, p, p.String(), back, err)
		}
		if d := Distance(p, back); d != 0 {
			t.Fatalf("distance from %v to itself is %v", p, d)
		}
	})
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestNorth(t *testing.T) {
	p := Point{Lat: 35.888, Lon: 128.611}
	for _, m := range []float64{0, 1, 2000, -1500, 100_000} {
		q := North(p, m)
		if q.Lon != p.Lon || math.Abs(Distance(p, q)-math.Abs(m)) > 1e-6*math.Max(1, math.Abs(m)) || (m > 0) != (q.Lat > p.Lat) {
			t.Errorf("North(%v, %v) = %v, %v m away", p, m, q, Distance(p, q))
		}
	}
}
