package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// FileSource serves the certificate and key in two PEM files and reloads them when their
// content changes. It polls rather than watching: a mounted Secret is updated by swapping a
// symlink, which file-change notifications on the files themselves miss.
type FileSource struct {
	certFile, keyFile string

	current atomic.Pointer[tls.Certificate]
	mu      sync.Mutex // serialises reloads; certPEM and keyPEM are what current came from
	certPEM []byte
	keyPEM  []byte
}

// NewFileSource loads certFile and keyFile; they must hold a valid pair now.
func NewFileSource(certFile, keyFile string) (*FileSource, error) {
	s := &FileSource{certFile: certFile, keyFile: keyFile}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// GetCertificate implements Source.
func (s *FileSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.current.Load(); c != nil {
		return c, nil
	}
	return nil, errNoCertificate
}

// Reload reads the files and, when they changed and hold a valid pair, serves it. It
// reports whether the served certificate changed. On error the previous pair stays: a
// half-written rotation must not take the webhook down.
func (s *FileSource) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	certPEM, err := os.ReadFile(s.certFile)
	if err != nil {
		return false, fmt.Errorf("reading serving certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(s.keyFile)
	if err != nil {
		return false, fmt.Errorf("reading serving key: %w", err)
	}
	if bytes.Equal(certPEM, s.certPEM) && bytes.Equal(keyPEM, s.keyPEM) {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("loading serving certificate %s and key %s: %w", s.certFile, s.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false, fmt.Errorf("parsing serving certificate %s: %w", s.certFile, err)
	}
	pair.Leaf = leaf
	s.current.Store(&pair)
	s.certPEM, s.keyPEM = certPEM, keyPEM
	klog.InfoS("Serving certificate loaded", "file", s.certFile, "serial", leaf.SerialNumber, "notAfter", leaf.NotAfter)
	return true, nil
}

// Run reloads every interval until ctx ends.
func (s *FileSource) Run(ctx context.Context, interval time.Duration) {
	logger := klog.FromContext(ctx)
	wait.UntilWithContext(ctx, func(context.Context) {
		if _, err := s.Reload(); err != nil {
			logger.Error(err, "Reloading serving certificate; still serving the previous one")
		}
	}, interval)
}
