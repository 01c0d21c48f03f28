package localfleet

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// issueIdentities makes the fleet's CA and an identity for each cluster (its public
// endpoint's and its ledger client's), for the ledger server and for the observer.
func (f *Fleet) issueIdentities() error {
	ca, err := mtls.NewCA("edgemigrate-fleet-ca")
	if err != nil {
		return err
	}
	f.CA = ca
	issue := func(name, msp string) (mtls.Files, error) {
		files, err := ca.WriteIdentity(filepath.Join(f.Dir, "pki", name), name, msp, "127.0.0.1", "localhost")
		if err != nil {
			return mtls.Files{}, fmt.Errorf("issuing the identity of %s: %w", name, err)
		}
		return files, nil
	}
	for _, e := range f.Edges {
		if e.Identity, err = issue(e.ID, e.MSPID); err != nil {
			return err
		}
	}
	if f.ledgerIdentity, err = issue("ledger", "LedgerMSP"); err != nil {
		return err
	}
	f.ObserverIdentity, err = issue("observer", ObserverMSPID)
	if err != nil {
		return err
	}
	f.CAFile = f.ledgerIdentity.CAFile
	return nil
}

// startLedger starts the shared ledger server and waits until it is ready.
func (f *Fleet) startLedger(ctx context.Context) error {
	ports, err := localcluster.FreePorts(1)
	if err != nil {
		return err
	}
	f.LedgerURL = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	if err := f.StartLedger(ctx); err != nil {
		return err
	}
	return f.admitEdges(ctx)
}

// ledgerArgs are the ledger server's flags: its address, database file and identity stay
// the same across restarts.
func (f *Fleet) ledgerArgs() []string {
	args := []string{
		"ledger", "serve", "--listen", hostPort(f.LedgerURL), "--db", filepath.Join(f.Dir, "ledger.db"), "--no-sync",
		"--tls-cert-file", f.ledgerIdentity.CertFile, "--tls-key-file", f.ledgerIdentity.KeyFile, "--tls-ca-file", f.ledgerIdentity.CAFile,
	}
	if f.opts.LedgerDeadAfter != 0 {
		// Written with the admin when the file is created; admitEdges's InitLedger asks for
		// the same configuration, which the ledger accepts again.
		args = append(args, "--admin-msp", ObserverMSPID, "--dead-after", f.opts.LedgerDeadAfter.String())
	}
	return args
}

// admitEdges sets the ledger up with the observer as its admin MSP, the fleet's operator,
// and admits every edge cluster for its MSP, so that each can register.
func (f *Fleet) admitEdges(ctx context.Context) error {
	l, err := f.Ledger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg := chaincode.LedgerConfig{AdminMSP: ObserverMSPID, DeadAfterSeconds: int64(f.opts.LedgerDeadAfter / time.Second)}
	if _, err := l.InitLedger(ctx, cfg); err != nil {
		return fmt.Errorf("setting up the fleet's ledger: %w", err)
	}
	for _, e := range f.Edges {
		if _, err := l.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: e.ID, MSPID: e.MSPID}); err != nil {
			return fmt.Errorf("admitting %s: %w", e.ID, err)
		}
	}
	return nil
}

// CarClient is an HTTP client as a car has: it trusts the fleet's CA and presents no
// certificate. Redirects are not followed when noRedirect is set.
func (f *Fleet) CarClient(timeout time.Duration, noRedirect bool) *http.Client {
	c, err := mtls.AnonymousClient(f.CA.PEM(), timeout)
	if err != nil {
		panic(fmt.Sprintf("the fleet CA's own certificate: %v", err))
	}
	if noRedirect {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}
