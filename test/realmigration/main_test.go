// Package realmigration runs migrations on processes, not API objects: a fleet of two edge
// clusters, each with every edgemigrate part and one real node (kubelet, containerd and
// kube-proxy) beside its kwok nodes, moves cars' services between the real nodes while a
// car (package car) sends them requests through the clusters' gateways. They need root and
// Debian's containerd, runc, CNI plugins and iptables, and the images of `make images`;
// without them they skip, saying so, unless EDGEMIGRATE_REQUIRE_REAL_NODES=1.
package realmigration

import (
	"fmt"
	"testing"

	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

var shared fleettest.Shared

// Each test and the benchmark drive a car of their own: a client's location and the
// cluster serving it are fleet-wide state.
const (
	carMobility = "car-1"
	carOffload  = "car-2"
	carDrain    = "car-3"
	carCrash    = "car-4"
	carToken    = "car-5"
	carBench    = "car-6"
)

// tokens are the client tokens in every cluster's Secret.
var tokens = func() map[string]string {
	m := map[string]string{}
	for i := 1; i <= 6; i++ {
		m[fmt.Sprintf("car-%d", i)] = fmt.Sprintf("token-of-car-%d", i)
	}
	return m
}()

// drainTimeout bounds the source's wait for its in-flight requests; the drain test's slow
// request (slowFor) stays well within it.
const drainTimeout = "30s"

func TestMain(m *testing.M) {
	fleettest.Main(m, localfleet.Options{
		Clusters:     2,
		RealNodes:    1,
		ClientTokens: tokens,
		// A real pod takes a second or so to be Ready; the destination is given 30s.
		DeschedulerArgs: []string{"--destination-ready-timeout=30s", "--migration-timeout=2m", "--resync-interval=2s",
			"--offload-after=2s", "--drain-timeout=" + drainTimeout},
	}, &shared)
}
