package localfleet

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

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
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	p, err := f.startProcess("ledger", f.opts.Binary, []string{
		"ledger", "--listen", addr, "--db", filepath.Join(f.Dir, "ledger.db"), "--no-sync",
		"--tls-cert-file", f.ledgerIdentity.CertFile, "--tls-key-file", f.ledgerIdentity.KeyFile, "--tls-ca-file", f.ledgerIdentity.CAFile,
	})
	if err != nil {
		return err
	}
	f.ledger = p
	f.LedgerURL = "https://" + addr
	return p.WaitReady(ctx, f.LedgerURL+"/readyz", f.opts.ReadyTimeout)
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
