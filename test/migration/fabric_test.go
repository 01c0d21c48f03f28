package migration

import (
	"context"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/ledger/fabric"
	"github.com/edgemigrate/edgemigrate/ledger/fabric/fabrictest"
)

// TestE2EMobilityFabric is the mobility scenario with the clusters bidding on a real
// Hyperledger Fabric network (one organisation per cluster) instead of the embedded ledger.
func TestE2EMobilityFabric(t *testing.T) {
	shared.Require(t) // skips under -short and without tools, as the other scenarios
	n := fabrictest.Up(t, "the mobility scenario on Fabric")
	admitOnFabric(t, n, "edge-a", "edge-b")
	f := fleettest.Start(t, localfleet.Options{
		Clusters: 2, ClientTokens: tokens,
		LedgerArgs: func(i int) []string {
			o := n.Orgs[i]
			return []string{"--ledger-backend=fabric", "--fabric-peer=" + o.PeerEndpoint, "--fabric-tls-ca=" + o.TLSCACert,
				"--fabric-server-name=" + o.ServerName, "--fabric-msp-id=" + o.MSPID, "--fabric-cert=" + o.Cert,
				"--fabric-key=" + o.Key, "--fabric-channel=" + n.Channel, "--fabric-chaincode=" + n.Chaincode}
		},
		MSPIDs:          func(i int) string { return n.Orgs[i].MSPID },
		DeschedulerArgs: []string{"--resync-interval=2s"},
	})
	s := newScenarioOn(t, f)
	s.drive("car-1", s.at(0))
	s.create("edge-a", s.service("detector", "car-1", 1, "4Gi"))
	s.runsOnlyIn("edge-a", "detector", 1)
	trigger := time.Now()
	s.drive("car-1", s.at(2000))
	m := s.migration("edge-a", "detector", v1alpha1.PhaseCompleted)
	t.Logf("trigger → completed on Fabric: %v", time.Since(trigger).Round(time.Millisecond))
	if m.Status.Destination != "edge-b" {
		t.Errorf("destination %s, want edge-b", m.Status.Destination)
	}
	s.runsOnlyIn("edge-b", "detector", 1)
	s.scaledAway("edge-a", "detector", "edge-b")
	s.locatorSays("edge-a", "car-1", "edge-b")
	s.drive("car-1", s.at(0))
	s.migration("edge-b", "detector", v1alpha1.PhaseCompleted)
	s.runsOnlyIn("edge-a", "detector", 1)
}

// admitOnFabric has the network's admin organisation (the first: network.sh's init
// transaction names it) admit cluster i for organisation i, as an operator does before the
// clusters' deschedulers register.
func admitOnFabric(t *testing.T, n *fabrictest.Network, clusters ...string) {
	t.Helper()
	admin := n.Orgs[0]
	l, err := fabric.Dial(fabric.Config{PeerEndpoint: admin.PeerEndpoint, TLSCACertPath: admin.TLSCACert, ServerNameOverride: admin.ServerName,
		MSPID: admin.MSPID, CertPath: admin.Cert, KeyPath: admin.Key, Channel: n.Channel, Chaincode: n.Chaincode})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, id := range clusters {
		if _, err := l.AdmitCluster(context.Background(), chaincode.AdmissionInput{ClusterID: id, MSPID: n.Orgs[i].MSPID}); err != nil {
			t.Fatalf("admitting %s for %s: %v", id, n.Orgs[i].MSPID, err)
		}
	}
}
