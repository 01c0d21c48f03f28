package demo

import (
	"math"

	"github.com/edgemigrate/edgemigrate/geo"
)

// stop is a point of the car's route where it waits for its service to follow it.
type stop struct {
	// Cluster is the id of the site the car stops at.
	Cluster string
	At      geo.Point
}

// tour is the car's route through every site and back: edge-a, edge-b, …, the last, …,
// edge-a. Each stop after the first is a move into another cluster's coverage.
func tour(ids []string, points []geo.Point) []stop {
	var route []stop
	for i := range ids {
		route = append(route, stop{ids[i], points[i]})
	}
	for i := len(ids) - 2; i >= 0; i-- {
		route = append(route, stop{ids[i], points[i]})
	}
	return route
}

// legPoints returns the positions from a (excluded) to b (included) in equal steps of at
// most stepM metres, on the straight line between them (short distances: the sphere's
// curvature does not matter).
func legPoints(a, b geo.Point, stepM float64) []geo.Point {
	n := int(math.Ceil(geo.Distance(a, b) / stepM))
	if n < 1 {
		n = 1
	}
	points := make([]geo.Point, 0, n)
	for i := 1; i <= n; i++ {
		f := float64(i) / float64(n)
		points = append(points, geo.Point{Lat: a.Lat + f*(b.Lat-a.Lat), Lon: a.Lon + f*(b.Lon-a.Lon)})
	}
	return points
}
