package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/pki"
)

// certValidity is long enough for any demo or test run and short enough that a leaked
// throw-away CA is worthless soon.
const certValidity = 7 * 24 * time.Hour

// FrontProxyClientName is the common name the API server accepts from the front proxy.
const FrontProxyClientName = "front-proxy-client"

// clusterPKI holds the file paths of one cluster's credentials, all generated in-process.
type clusterPKI struct {
	CACert, CAKey           string
	ServingCert, ServingKey string
	AdminCert, AdminKey     string
	SAPublic, SAPrivate     string
	// The front proxy (aggregation layer) has a CA of its own, as in kubeadm clusters.
	FrontProxyCA                              string
	FrontProxyClientCert, FrontProxyClientKey string

	caPEM, adminCertPEM, adminKeyPEM []byte
	ca                               *pki.KeyPair // signs the real nodes' client certificates
}

// newPKI writes into dir a CA, the API server's serving certificate (127.0.0.1, localhost
// and the in-cluster service names), an admin client certificate in system:masters, a
// service-account signing key pair, and the front proxy's CA and client certificate.
// extraIPs are more addresses of the API server (the real nodes' bridge).
func newPKI(dir, clusterName string, extraIPs ...net.IP) (*clusterPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating pki directory: %w", err)
	}
	p := &clusterPKI{
		CACert: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		ServingCert: filepath.Join(dir, "apiserver.crt"), ServingKey: filepath.Join(dir, "apiserver.key"),
		AdminCert: filepath.Join(dir, "admin.crt"), AdminKey: filepath.Join(dir, "admin.key"),
		SAPublic: filepath.Join(dir, "sa.pub"), SAPrivate: filepath.Join(dir, "sa.key"),
		FrontProxyCA:         filepath.Join(dir, "front-proxy-ca.crt"),
		FrontProxyClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKey:  filepath.Join(dir, "front-proxy-client.key"),
	}

	ca, err := newCert(nil, pki.CATemplate(clusterName+"-ca"))
	if err != nil {
		return nil, fmt.Errorf("generating cluster CA: %w", err)
	}
	serving, err := newCert(ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.ParseIP(serviceIP)}, extraIPs...),
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	})
	if err != nil {
		return nil, fmt.Errorf("generating API server serving certificate: %w", err)
	}
	admin, err := newCert(ca, clientTemplate("edgemigrate-admin", "system:masters"))
	if err != nil {
		return nil, fmt.Errorf("generating admin client certificate: %w", err)
	}
	frontProxyCA, err := newCert(nil, pki.CATemplate(clusterName+"-front-proxy-ca"))
	if err != nil {
		return nil, fmt.Errorf("generating front-proxy CA: %w", err)
	}
	frontProxyClient, err := newCert(frontProxyCA, clientTemplate(FrontProxyClientName))
	if err != nil {
		return nil, fmt.Errorf("generating front-proxy client certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating service-account key: %w", err)
	}

	p.ca = ca
	p.caPEM = pki.EncodeCert(ca.Cert)
	p.adminCertPEM = pki.EncodeCert(admin.Cert)
	files := map[string][]byte{
		p.CACert:               p.caPEM,
		p.ServingCert:          pki.EncodeCert(serving.Cert),
		p.AdminCert:            p.adminCertPEM,
		p.FrontProxyCA:         pki.EncodeCert(frontProxyCA.Cert),
		p.FrontProxyClientCert: pki.EncodeCert(frontProxyClient.Cert),
	}
	keys := map[string]crypto.Signer{p.CAKey: ca.Key, p.ServingKey: serving.Key, p.AdminKey: admin.Key, p.SAPrivate: saKey,
		p.FrontProxyClientKey: frontProxyClient.Key}
	for path, key := range keys {
		if files[path], err = pki.EncodeKey(key); err != nil {
			return nil, err
		}
	}
	if files[p.SAPublic], err = encodePublicKey(saKey.Public()); err != nil {
		return nil, err
	}
	p.adminKeyPEM = files[p.AdminKey]
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return p, nil
}

// newCert signs template with parent (itself when nil) for certValidity.
func newCert(parent *pki.KeyPair, template *x509.Certificate) (*pki.KeyPair, error) {
	return pki.NewCertificate(parent, template, certValidity)
}

func clientTemplate(commonName string, organizations ...string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: organizations},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func encodePublicKey(key crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// clientCredentials returns a PEM certificate and key for a client of the API server signed
// by the cluster's CA, e.g. a kubelet (system:node:<name> in system:nodes).
func (p *clusterPKI) clientCredentials(commonName string, organizations ...string) (certPEM, keyPEM []byte, err error) {
	certPEM, keyPEM, err = pki.IssuePEM(p.ca, clientTemplate(commonName, organizations...), certValidity)
	if err != nil {
		return nil, nil, fmt.Errorf("generating client certificate for %s: %w", commonName, err)
	}
	return certPEM, keyPEM, nil
}
