package demo

import (
	"fmt"
	"testing"

	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
)

func TestTour(t *testing.T) {
	for _, tc := range []struct {
		clusters int
		want     string
	}{
		{2, "[edge-a edge-b edge-a]"},
		{3, "[edge-a edge-b edge-c edge-b edge-a]"},
	} {
		t.Run(fmt.Sprint(tc.clusters), func(t *testing.T) {
			var ids []string
			var points []geo.Point
			for _, s := range localfleet.DefaultSites(tc.clusters) {
				ids, points = append(ids, s.ID), append(points, s.Point())
			}
			var got []string
			for _, s := range tour(ids, points) {
				got = append(got, s.Cluster)
			}
			if fmt.Sprint(got) != tc.want {
				t.Errorf("tour %v, want %s", got, tc.want)
			}
		})
	}
}

func TestLegPoints(t *testing.T) {
	sites := localfleet.DefaultSites(2)
	a, b := sites[0].Point(), sites[1].Point()
	for _, tc := range []struct {
		name  string
		from  geo.Point
		to    geo.Point
		stepM float64
		n     int
	}{
		{"2 km in 150 m steps", a, b, 150, 14},
		{"back", b, a, 150, 14},
		{"one step when already there", a, a, 150, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			points := legPoints(tc.from, tc.to, tc.stepM)
			if len(points) != tc.n {
				t.Fatalf("%d points, want %d", len(points), tc.n)
			}
			if last := points[len(points)-1]; geo.Distance(last, tc.to) > 0.01 {
				t.Errorf("the leg ends %.2f m from its end", geo.Distance(last, tc.to))
			}
			prev := tc.from
			for _, p := range points {
				if d := geo.Distance(prev, p); d > tc.stepM+0.01 {
					t.Errorf("a step of %.1f m, more than %.0f", d, tc.stepM)
				}
				prev = p
			}
		})
	}
}
