package mtls

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/pki"
)

// devValidity is long enough for any demo or test run; identities from a development CA
// are throw-away.
const devValidity = 7 * 24 * time.Hour

// CA issues cluster identities, for development and tests. Operators use their own CA
// (cert-manager, or any issuer writing the cluster identity Secret).
type CA struct{ kp *pki.KeyPair }

// NewCA generates a CA named name.
func NewCA(name string) (*CA, error) { return newCA(name, devValidity) }

func newCA(name string, validity time.Duration) (*CA, error) {
	kp, err := pki.NewCertificate(nil, pki.CATemplate(name), validity)
	if err != nil {
		return nil, fmt.Errorf("generating CA %s: %w", name, err)
	}
	return &CA{kp: kp}, nil
}

// PEM is the CA's certificate, for a peer's CA bundle.
func (ca *CA) PEM() []byte { return pki.EncodeCert(ca.kp.Cert) }

// Issue signs an identity for clusterID in mspID, serving and presenting as a client, valid
// for hosts (DNS names or IP addresses).
func (ca *CA) Issue(clusterID, mspID string, hosts ...string) (certPEM, keyPEM []byte, err error) {
	return ca.issue(devValidity, clusterID, mspID, hosts...)
}

// SelfSigned is a cluster identity with a CA of its own, in PEM; CAKeyPEM renews it.
type SelfSigned struct{ CertPEM, KeyPEM, CAPEM, CAKeyPEM []byte }

// Generate makes a CA of the cluster's own (valid caValidity) and an identity from it
// (valid validity): the chart's self-signed mode, where no operator CA exists. Peers trust
// the cluster by CAPEM.
func Generate(clusterID, mspID string, caValidity, validity time.Duration, hosts ...string) (*SelfSigned, error) {
	ca, err := newCA(clusterID+"-ca", caValidity)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.issue(validity, clusterID, mspID, hosts...)
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := pki.EncodeKey(ca.kp.Key)
	if err != nil {
		return nil, err
	}
	return &SelfSigned{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: ca.PEM(), CAKeyPEM: caKeyPEM}, nil
}

// IssueFrom issues a new identity from the CA of a Generate (its certificate and key).
func IssueFrom(caPEM, caKeyPEM []byte, validity time.Duration, clusterID, mspID string, hosts ...string) (certPEM, keyPEM []byte, err error) {
	pair, err := tls.X509KeyPair(caPEM, caKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the identity's CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the identity's CA: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, nil, errors.New("the identity's CA certificate is not a CA with a signing key")
	}
	return (&CA{kp: &pki.KeyPair{Cert: cert, Key: signer}}).issue(validity, clusterID, mspID, hosts...)
}

func (ca *CA) issue(validity time.Duration, clusterID, mspID string, hosts ...string) (certPEM, keyPEM []byte, err error) {
	if clusterID == "" || mspID == "" {
		return nil, nil, fmt.Errorf("an identity needs a cluster id and an MSP id, got %q and %q", clusterID, mspID)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: clusterID, Organization: []string{mspID}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	certPEM, keyPEM, err = pki.IssuePEM(ca.kp, tmpl, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing identity of %s: %w", clusterID, err)
	}
	return certPEM, keyPEM, nil
}

// NewIdentity writes an identity into dir (WriteIdentity) and loads it: a peer ready to
// dial and serve, for tests and development.
func (ca *CA) NewIdentity(dir, clusterID, mspID string, hosts ...string) (*Identity, error) {
	f, err := ca.WriteIdentity(dir, clusterID, mspID, hosts...)
	if err != nil {
		return nil, err
	}
	return Load(f)
}

// WriteIdentity issues an identity and writes tls.crt, tls.key and ca.crt (this CA) into
// dir, the layout of the cluster identity Secret. Each file is replaced atomically, so a
// second call rotates an identity that a running Identity reloads.
func (ca *CA) WriteIdentity(dir, clusterID, mspID string, hosts ...string) (Files, error) {
	certPEM, keyPEM, err := ca.Issue(clusterID, mspID, hosts...)
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("creating identity directory: %w", err)
	}
	f := Files{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), CAFile: filepath.Join(dir, "ca.crt")}
	// The key first: a reload between the two renames sees an old certificate with a new
	// key, fails, and keeps the previous pair until the next reload.
	for _, w := range []struct {
		path string
		data []byte
	}{{f.KeyFile, keyPEM}, {f.CertFile, certPEM}, {f.CAFile, ca.PEM()}} {
		if err := writeAtomic(w.path, w.data); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}
