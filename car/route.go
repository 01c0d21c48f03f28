package car

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/edgemigrate/edgemigrate/geo"
)

// Route is a polyline the car drives along, from its first point to its last.
type Route []geo.Point

// ParseRoute reads "lat,lon;lat,lon;…", as given on command lines.
func ParseRoute(s string) (Route, error) {
	var r Route
	for part := range strings.SplitSeq(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		p, err := geo.ParsePoint(part)
		if err != nil {
			return nil, fmt.Errorf("parsing route: %w", err)
		}
		r = append(r, p)
	}
	if len(r) == 0 {
		return nil, errors.New(`parsing route: no point; want "lat,lon;lat,lon;…"`)
	}
	return r, nil
}

// Length is the route's length in metres.
func (r Route) Length() float64 {
	total := 0.0
	for i := 1; i < len(r); i++ {
		total += geo.Distance(r[i-1], r[i])
	}
	return total
}

// At is the point metres along the route, interpolated linearly within a leg (legs are
// short against the Earth's curvature); before the start it is the first point, beyond
// the end the last.
func (r Route) At(metres float64) geo.Point {
	if len(r) == 0 {
		return geo.Point{}
	}
	for i := 1; i < len(r); i++ {
		leg := geo.Distance(r[i-1], r[i])
		if metres <= leg {
			if leg == 0 || metres <= 0 {
				return r[i-1]
			}
			f := metres / leg
			a, b := r[i-1], r[i]
			return geo.Point{Lat: a.Lat + f*(b.Lat-a.Lat), Lon: a.Lon + f*(b.Lon-a.Lon)}
		}
		metres -= leg
	}
	return r[len(r)-1]
}

// Drive moves the car along route at speed m/s, calling MoveTo every reportEvery (and at
// the end), until it reaches the last point or ctx ends. A failed report is returned at
// once; ctx ending returns its cause.
func (c *Car) Drive(ctx context.Context, route Route, speed float64, reportEvery time.Duration) error {
	if len(route) == 0 {
		return fmt.Errorf("car %s: driving an empty route", c.opts.ID)
	}
	if math.IsNaN(speed) || math.IsInf(speed, 0) || speed <= 0 || reportEvery <= 0 {
		return fmt.Errorf("car %s: driving needs a positive speed (%v m/s) and report interval (%s)", c.opts.ID, speed, reportEvery)
	}
	length := route.Length()
	start := c.opts.Clock.Now()
	tick := c.opts.Clock.NewTicker(reportEvery)
	defer tick.Stop()
	for {
		along := speed * c.opts.Clock.Since(start).Seconds()
		if err := c.MoveTo(ctx, route.At(along)); err != nil {
			return err
		}
		if along >= length {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C():
		}
	}
}

// ParseCluster reads "id=URL@lat,lon,radiusM", as given on command lines, e.g.
// "edge-a=http://10.0.0.1:8443@35.888,128.611,1500".
func ParseCluster(s string) (Cluster, error) {
	const want = `want "id=URL@lat,lon,radiusM", e.g. "edge-a=http://10.0.0.1:8443@35.888,128.611,1500"`
	id, rest, ok := strings.Cut(s, "=")
	at := strings.LastIndex(rest, "@")
	if !ok || id == "" || at < 0 {
		return Cluster{}, fmt.Errorf("parsing cluster %q: %s", s, want)
	}
	gateway, where := rest[:at], rest[at+1:]
	i := strings.LastIndex(where, ",")
	if i < 0 {
		return Cluster{}, fmt.Errorf("parsing cluster %q: %s", s, want)
	}
	p, err := geo.ParsePoint(where[:i])
	if err != nil {
		return Cluster{}, fmt.Errorf("parsing cluster %q: %w", s, err)
	}
	radius, err := strconv.ParseFloat(strings.TrimSpace(where[i+1:]), 64)
	if err != nil {
		return Cluster{}, fmt.Errorf("parsing the radius of cluster %q: %s", s, want)
	}
	c := Cluster{ID: id, Gateway: gateway, Site: p, RadiusM: radius}
	if err := (geo.Coverage{Center: p, RadiusM: radius}).Validate(); err != nil {
		return Cluster{}, fmt.Errorf("parsing cluster %q: %w", s, err)
	}
	return c, nil
}
