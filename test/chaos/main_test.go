// Package chaos is the chaos run of edgemigrate: a fleet of three clusters, each with every
// edgemigrate part, two descheduler replicas behind the edge's public endpoint and one real
// node (kubelet, containerd and kube-proxy) beside its kwok nodes, moves cars' services
// (mobility: cars driving between the sites; offload: a service that finds its cluster's
// GPU taken) while every car sends requests through the gateways, and a seeded plan
// (internal/chaos) SIGKILLs, at random moments, a descheduler replica (leader or standby),
// an extender, a webhook, the shared ledger server or one cluster's kube-apiserver, each
// restarted after a bounded random delay. When the faults stop and the fleet has settled,
// every service must have exactly one serving copy, every migration must have ended, and no
// car request may have failed outside the own outage of a cluster it went through.
//
// `make test` runs a short, seeded run (CHAOS_MIGRATIONS=10, seed 17); `make chaos` runs
// 50 migrations with a random seed (CHAOS_SEED=<n> replays one). Like test/realmigration
// it needs root, Debian's containerd, runc, CNI plugins and iptables, and the images of
// `make images`; without them it skips, saying so, unless EDGEMIGRATE_REQUIRE_REAL_NODES=1.
package chaos

import (
	"fmt"
	"testing"

	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

var shared fleettest.Shared

// clusters is the fleet's size.
const clusters = 3

// The cars: mobility cars drive between the sites, each followed by its own service;
// offload cars stand at edge-a and reach their service, offloaded elsewhere, through
// edge-a's gateway. The Secret holds the tokens of the most any run uses.
const (
	maxMobilityCars = 4
	maxOffloads     = 2
)

func mobilityCar(i int) string { return fmt.Sprintf("car-%d", i+1) }
func offloadCar(i int) string  { return fmt.Sprintf("off-%d", i+1) }

// tokens are the client tokens in every cluster's Secret.
var tokens = func() map[string]string {
	m := map[string]string{}
	for i := range maxMobilityCars {
		m[mobilityCar(i)] = "chaos-token-of-" + mobilityCar(i)
	}
	for i := range maxOffloads {
		m[offloadCar(i)] = "chaos-token-of-" + offloadCar(i)
	}
	return m
}()

// deschedulerArgs are test/realmigration's, with a shorter migration timeout: a migration
// a fault has stranded ends (Aborted) within the settling wait.
var deschedulerArgs = []string{"--destination-ready-timeout=30s", "--migration-timeout=60s", "--resync-interval=2s",
	"--offload-after=2s", "--drain-timeout=10s"}

func TestMain(m *testing.M) {
	fleettest.Main(m, fleetOptions(localfleet.Options{
		Clusters:        clusters,
		RealNodes:       1,
		ClientTokens:    tokens,
		DeschedulerArgs: deschedulerArgs,
	}), &shared)
}
