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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is long enough for any demo or test run and short enough that a leaked
// throw-away CA is worthless soon.
const certValidity = 7 * 24 * time.Hour

// FrontProxyClientName is the common name the API server accepts from the front proxy.
const FrontProxyClientName = "front-proxy-client"

// pki holds the file paths of one cluster's credentials, all generated in-process.
type pki struct {
	CACert, CAKey           string
	ServingCert, ServingKey string
	AdminCert, AdminKey     string
	SAPublic, SAPrivate     string
	// The front proxy (aggregation layer) has a CA of its own, as in kubeadm clusters.
	FrontProxyCA                              string
	FrontProxyClientCert, FrontProxyClientKey string

	caPEM, adminCertPEM, adminKeyPEM []byte
	ca                               *keyPair // signs the real nodes' client certificates
}

// keyPair is a certificate with its key, kept parsed so that it can sign.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// newPKI writes into dir a CA, the API server's serving certificate (127.0.0.1, localhost
// and the in-cluster service names), an admin client certificate in system:masters, a
// service-account signing key pair, and the front proxy's CA and client certificate.
// extraIPs are more addresses of the API server (the real nodes' bridge).
func newPKI(dir, clusterName string, extraIPs ...net.IP) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating pki directory: %w", err)
	}
	p := &pki{
		CACert: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		ServingCert: filepath.Join(dir, "apiserver.crt"), ServingKey: filepath.Join(dir, "apiserver.key"),
		AdminCert: filepath.Join(dir, "admin.crt"), AdminKey: filepath.Join(dir, "admin.key"),
		SAPublic: filepath.Join(dir, "sa.pub"), SAPrivate: filepath.Join(dir, "sa.key"),
		FrontProxyCA:         filepath.Join(dir, "front-proxy-ca.crt"),
		FrontProxyClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKey:  filepath.Join(dir, "front-proxy-client.key"),
	}

	ca, err := newCertificate(nil, caTemplate(clusterName+"-ca"))
	if err != nil {
		return nil, fmt.Errorf("generating cluster CA: %w", err)
	}
	serving, err := newCertificate(ca, &x509.Certificate{
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
	admin, err := newCertificate(ca, clientTemplate("edgemigrate-admin", "system:masters"))
	if err != nil {
		return nil, fmt.Errorf("generating admin client certificate: %w", err)
	}
	frontProxyCA, err := newCertificate(nil, caTemplate(clusterName+"-front-proxy-ca"))
	if err != nil {
		return nil, fmt.Errorf("generating front-proxy CA: %w", err)
	}
	frontProxyClient, err := newCertificate(frontProxyCA, clientTemplate(FrontProxyClientName))
	if err != nil {
		return nil, fmt.Errorf("generating front-proxy client certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating service-account key: %w", err)
	}

	p.ca = ca
	p.caPEM = encodeCert(ca.cert)
	p.adminCertPEM = encodeCert(admin.cert)
	files := map[string][]byte{
		p.CACert:               p.caPEM,
		p.ServingCert:          encodeCert(serving.cert),
		p.AdminCert:            p.adminCertPEM,
		p.FrontProxyCA:         encodeCert(frontProxyCA.cert),
		p.FrontProxyClientCert: encodeCert(frontProxyClient.cert),
	}
	keys := map[string]crypto.Signer{p.CAKey: ca.key, p.ServingKey: serving.key, p.AdminKey: admin.key, p.SAPrivate: saKey,
		p.FrontProxyClientKey: frontProxyClient.key}
	for path, key := range keys {
		if files[path], err = encodeKey(key); err != nil {
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

func caTemplate(commonName string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func clientTemplate(commonName string, organizations ...string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: organizations},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// newCertificate creates a key and a certificate from template, signed by parent or, when
// parent is nil, by itself.
func newCertificate(parent *keyPair, template *x509.Certificate) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Minute) // tolerate small clock skew between processes
	template.NotAfter = time.Now().Add(certValidity)

	signer, signerCert := crypto.Signer(key), template
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signerCert, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", template.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate %q: %w", template.Subject.CommonName, err)
	}
	return &keyPair{cert: cert, key: key}, nil
}

func encodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
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
func (p *pki) clientCredentials(commonName string, organizations ...string) (certPEM, keyPEM []byte, err error) {
	kp, err := newCertificate(p.ca, clientTemplate(commonName, organizations...))
	if err != nil {
		return nil, nil, fmt.Errorf("generating client certificate for %s: %w", commonName, err)
	}
	keyPEM, err = encodeKey(kp.key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(kp.cert), keyPEM, nil
}
