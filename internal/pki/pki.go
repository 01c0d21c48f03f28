// Package pki generates the X.509 material edgemigrate makes itself: CAs and the
// certificates they sign, ECDSA P-256 keys, PEM encodings. It backs the development CA of
// tests and local fleets and the descheduler's self-signed identity (mtls.Generate);
// operators who bring their own certificates (cert-manager, a Secret) never use it.
package pki

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
	"time"
)

// KeyPair is a certificate with its key, kept parsed so that it can sign.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CATemplate is the template of a CA certificate named commonName.
func CATemplate(commonName string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// NewCertificate creates a key and a certificate from template, valid from a minute ago (to
// tolerate small clock skew between processes) for validity, signed by parent or, when
// parent is nil, by itself. It sets template's serial number and validity.
func NewCertificate(parent *KeyPair, template *x509.Certificate, validity time.Duration) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Minute)
	template.NotAfter = time.Now().Add(validity)

	signer, signerCert := crypto.Signer(key), template
	if parent != nil {
		signer, signerCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signerCert, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", template.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate %q: %w", template.Subject.CommonName, err)
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// EncodeCert returns cert as PEM.
func EncodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// EncodeKey returns key as PKCS #8 PEM.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// IssuePEM is NewCertificate returning the certificate and its key as PEM.
func IssuePEM(parent *KeyPair, template *x509.Certificate, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	kp, err := NewCertificate(parent, template, validity)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = EncodeKey(kp.Key)
	if err != nil {
		return nil, nil, err
	}
	return EncodeCert(kp.Cert), keyPEM, nil
}
