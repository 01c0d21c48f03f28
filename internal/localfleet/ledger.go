package localfleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger/remote"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

// identities is the ledger server's token file: one identity per cluster, acting as the
// cluster's MSP, and the observer's.
func (f *Fleet) identities() []remote.Identity {
	ids := []remote.Identity{{Token: f.ObserverToken, MSPID: ObserverMSPID}}
	for _, e := range f.Edges {
		ids = append(ids, remote.Identity{Token: e.LedgerToken, MSPID: e.MSPID})
	}
	return ids
}

// startLedger writes the identities and each cluster's token file, then starts the shared
// ledger server and waits until it is ready.
func (f *Fleet) startLedger(ctx context.Context) error {
	f.ObserverToken = rand.Text()
	data, err := json.MarshalIndent(f.identities(), "", "  ")
	if err != nil {
		return fmt.Errorf("encoding ledger identities: %w", err)
	}
	// JSON is YAML too; the server reads JSON.
	idPath := filepath.Join(f.Dir, "identities.yaml")
	if err := os.WriteFile(idPath, data, 0o600); err != nil {
		return fmt.Errorf("writing ledger identities: %w", err)
	}
	for _, e := range f.Edges {
		if err := os.WriteFile(e.tokenFile(), []byte(e.LedgerToken), 0o600); err != nil {
			return fmt.Errorf("writing ledger token of %s: %w", e.ID, err)
		}
	}
	ports, err := localcluster.FreePorts(1)
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	p, err := f.startProcess("ledger", f.opts.Binary, []string{
		"ledger", "--listen", addr, "--db", filepath.Join(f.Dir, "ledger.db"), "--identities", idPath, "--no-sync",
	})
	if err != nil {
		return err
	}
	f.ledger = p
	f.LedgerURL = "http://" + addr
	if err := p.WaitReady(ctx, f.LedgerURL+"/readyz", f.opts.ReadyTimeout); err != nil {
		return err
	}
	return f.admitEdges(ctx)
}

// admitEdges sets the ledger up with the observer as its admin MSP, the fleet's operator,
// and admits every edge cluster for its MSP, so that each can register.
func (f *Fleet) admitEdges(ctx context.Context) error {
	l, err := f.Ledger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := l.InitLedger(ctx, chaincode.LedgerConfig{AdminMSP: ObserverMSPID}); err != nil {
		return fmt.Errorf("setting up the fleet's ledger: %w", err)
	}
	for _, e := range f.Edges {
		if _, err := l.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: e.ID, MSPID: e.MSPID}); err != nil {
			return fmt.Errorf("admitting %s: %w", e.ID, err)
		}
	}
	return nil
}
