package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// SelfSignedOptions configure a SelfSigned source.
type SelfSignedOptions struct {
	// Hosts are the serving certificate's DNS names and IP addresses, for example
	// edgemigrate-webhook.edgemigrate-system.svc and 127.0.0.1.
	Hosts []string
	// CALifetime and CertLifetime default to one year and 30 days.
	CALifetime, CertLifetime time.Duration
	// Publish makes clients trust a CA bundle (PEM): the webhook writes it into its
	// MutatingWebhookConfiguration. It is called before any certificate signed by a new CA
	// is served, so the API server never meets a certificate it cannot verify.
	Publish func(ctx context.Context, caBundle []byte) error
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// SelfSigned generates its own CA and serving certificate and renews the serving
// certificate when two thirds of its lifetime have passed (the CA too, when it would
// expire before the new certificate). It keeps nothing on disk: a restart makes a new CA
// and publishes it. Run one replica in this mode; replicas would overwrite each other's CA.
type SelfSigned struct {
	opts SelfSignedOptions

	current atomic.Pointer[tls.Certificate]
	mu      sync.Mutex // guards the CA fields and renewals
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	oldCA   *x509.Certificate // still trusted until it expires
}

// NewSelfSigned generates a CA and serving certificate and publishes the CA.
func NewSelfSigned(ctx context.Context, opts SelfSignedOptions) (*SelfSigned, error) {
	if len(opts.Hosts) == 0 {
		return nil, errors.New("self-signed serving certificate needs at least one host name or IP address")
	}
	if opts.CALifetime == 0 {
		opts.CALifetime = 365 * 24 * time.Hour
	}
	if opts.CertLifetime == 0 {
		opts.CertLifetime = 30 * 24 * time.Hour
	}
	if opts.CertLifetime > opts.CALifetime {
		return nil, fmt.Errorf("certificate lifetime %s exceeds CA lifetime %s", opts.CertLifetime, opts.CALifetime)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &SelfSigned{opts: opts}
	if err := s.renew(ctx, opts.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// GetCertificate implements Source.
func (s *SelfSigned) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.current.Load(); c != nil {
		return c, nil
	}
	return nil, errNoCertificate
}

// CABundle returns the PEM bundle clients should trust: the current CA and the previous
// one while it is still valid.
func (s *SelfSigned) CABundle() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle(s.opts.Now())
}

func (s *SelfSigned) bundle(now time.Time) []byte {
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ca.Raw})
	if s.oldCA != nil && now.Before(s.oldCA.NotAfter) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.oldCA.Raw})...)
	}
	return out
}

// RenewAt is when the serving certificate is due for renewal.
func (s *SelfSigned) RenewAt() time.Time {
	leaf := s.current.Load().Leaf
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
}

// Run renews the certificate when due until ctx ends. A failed renewal is retried after a
// minute; the current certificate is served meanwhile.
func (s *SelfSigned) Run(ctx context.Context) {
	for {
		wait := s.RenewAt().Sub(s.opts.Now())
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if err := s.RenewIfDue(ctx, s.opts.Now()); err != nil {
			klog.ErrorS(err, "Renewing self-signed serving certificate; retrying in a minute")
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}

// RenewIfDue renews the serving certificate if now is past RenewAt.
func (s *SelfSigned) RenewIfDue(ctx context.Context, now time.Time) error {
	if now.Before(s.RenewAt()) {
		return nil
	}
	return s.renew(ctx, now)
}

// renew issues a serving certificate, first replacing the CA when it would expire before
// the certificate does, and publishing the new bundle.
func (s *SelfSigned) renew(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	notAfter := now.Add(s.opts.CertLifetime)
	if s.ca == nil || !s.ca.NotAfter.After(notAfter) {
		ca, key, err := newCA(now, s.opts.CALifetime)
		if err != nil {
			return err
		}
		oldCA, oldKey, olderCA := s.ca, s.caKey, s.oldCA
		s.ca, s.caKey, s.oldCA = ca, key, oldCA
		if err := s.opts.Publish(ctx, s.bundle(now)); err != nil {
			// Keep serving the old pair, signed by the CA clients still trust.
			s.ca, s.caKey, s.oldCA = oldCA, oldKey, olderCA
			return fmt.Errorf("publishing the new CA: %w", err)
		}
	}
	pair, err := newServingCert(s.ca, s.caKey, s.opts.Hosts, now, notAfter)
	if err != nil {
		return err
	}
	s.current.Store(pair)
	klog.InfoS("Self-signed serving certificate issued", "hosts", s.opts.Hosts, "notAfter", pair.Leaf.NotAfter, "caNotAfter", s.ca.NotAfter)
	return nil
}

func newCA(now time.Time, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "edgemigrate-webhook-ca"},
		NotBefore:             now.Add(-time.Minute), // tolerate small clock skew
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return ca, key, nil
}

func newServingCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now, notAfter time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating serving key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing serving certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return serial, nil
}
