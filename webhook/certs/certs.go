// Package certs provides the webhook's serving certificates: from files reloaded when they
// change (cert-manager or any other issuer rotating a mounted Secret), or self-signed,
// generated at start-up and renewed before expiry. Either way the server asks for the
// current certificate on every handshake, so rotation needs no restart.
package certs

import (
	"crypto/tls"
	"errors"
)

// Source hands out the current serving certificate.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// TLSConfig returns a server configuration serving src's certificate, TLS 1.2 or later.
func TLSConfig(src Source) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: src.GetCertificate}
}

var errNoCertificate = errors.New("no serving certificate loaded yet")
