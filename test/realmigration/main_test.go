// Package realmigration runs a migration on processes, not API objects: a fleet of two edge
// clusters, each with every edgemigrate part and one real node (kubelet, containerd and
// kube-proxy) beside its kwok nodes, moves a car's service from one real node to the
// other. They need root and Debian's containerd, runc, CNI plugins and iptables, and the
// images of `make images`; without them they skip, saying so, unless
// EDGEMIGRATE_REQUIRE_REAL_NODES=1.
package realmigration

import (
	"testing"

	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

var shared fleettest.Shared

const car, carToken = "car-1", "token-of-car-1"

func TestMain(m *testing.M) {
	fleettest.Main(m, localfleet.Options{
		Clusters:     2,
		RealNodes:    1,
		ClientTokens: map[string]string{car: carToken},
		// A real pod takes a second or so to be Ready; the destination is given 30s.
		DeschedulerArgs: []string{"--destination-ready-timeout=30s", "--migration-timeout=2m", "--resync-interval=2s"},
	}, &shared)
}
