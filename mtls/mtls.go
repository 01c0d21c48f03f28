// Package mtls is a cluster's identity on the wire: one X.509 certificate whose Subject
// CommonName is the cluster id and whose first Organization is its MSP id (the ledger
// identity), with server and client key usage and the public endpoint's hosts as SANs.
// Peers are verified against a CA bundle file that may hold several operators' CAs.
// Certificate, key and bundle are reloaded from their files, so a rotated Secret needs no
// restart. Identity is taken only from a chain crypto/tls verified, never from what a peer
// merely presents.
package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/webhook/certs"
)

// ReloadInterval is how often servers and clients reread their identity files: a mounted
// Secret changes within the kubelet's sync period (a minute by default) anyway.
const ReloadInterval = 30 * time.Second

// Files name the PEM files of an identity: its certificate, its key and the CA bundle its
// peers are verified against.
type Files struct{ CertFile, KeyFile, CAFile string }

// Peer is who is at the other end of a connection, read from its verified leaf certificate.
type Peer struct{ ClusterID, MSPID string }

// PeerOf returns the peer of a connection whose certificate chain crypto/tls verified. It
// is false when there is no verified chain (no certificate, or one nobody checked) or the
// leaf lacks a CommonName or Organization.
func PeerOf(cs *tls.ConnectionState) (Peer, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Peer{}, false
	}
	return peerOfCert(cs.VerifiedChains[0][0])
}

// PeerOfRequest returns the verified peer of an HTTPS request.
func PeerOfRequest(r *http.Request) (Peer, bool) { return PeerOf(r.TLS) }

func peerOfCert(leaf *x509.Certificate) (Peer, bool) {
	if leaf == nil || leaf.Subject.CommonName == "" || len(leaf.Subject.Organization) == 0 || leaf.Subject.Organization[0] == "" {
		return Peer{}, false
	}
	return Peer{ClusterID: leaf.Subject.CommonName, MSPID: leaf.Subject.Organization[0]}, true
}

// Identity is a cluster's certificate and key with the CA bundle it trusts, reloaded from
// Files by Run. Configurations it returns read the current material on every handshake.
type Identity struct {
	files Files
	cert  *certs.FileSource

	mu    sync.Mutex // serialises reloads of the bundle
	caPEM []byte
	roots atomic.Pointer[x509.CertPool]
}

// Load reads f; all three files must hold valid material now.
func Load(f Files) (*Identity, error) {
	if f.CertFile == "" || f.KeyFile == "" || f.CAFile == "" {
		return nil, errors.New("cluster identity needs a certificate, a key and a CA bundle file")
	}
	src, err := certs.NewFileSource(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading cluster identity: %w", err)
	}
	i := &Identity{files: f, cert: src}
	if err := i.reloadCA(); err != nil {
		return nil, err
	}
	if _, ok := i.Self(); !ok {
		return nil, fmt.Errorf("cluster identity %s: the certificate needs a CommonName (cluster id) and an Organization (MSP id)", f.CertFile)
	}
	return i, nil
}

// Self is the identity's own cluster and MSP id.
func (i *Identity) Self() (Peer, bool) {
	c, err := i.cert.GetCertificate(nil)
	if err != nil {
		return Peer{}, false
	}
	return peerOfCert(c.Leaf)
}

// Reload rereads the files. On error the previous material stays in use: a half-written
// rotation must not take the endpoint down.
func (i *Identity) Reload() error {
	_, certErr := i.cert.Reload()
	return errors.Join(certErr, i.reloadCA())
}

func (i *Identity) reloadCA() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	data, err := os.ReadFile(i.files.CAFile)
	if err != nil {
		return fmt.Errorf("reading CA bundle: %w", err)
	}
	if i.roots.Load() != nil && string(data) == string(i.caPEM) {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("CA bundle %s holds no PEM certificate", i.files.CAFile)
	}
	i.roots.Store(pool)
	i.caPEM = data
	return nil
}

// Run reloads every interval until ctx ends.
func (i *Identity) Run(ctx context.Context, interval time.Duration) {
	logger := klog.FromContext(ctx)
	wait.UntilWithContext(ctx, func(context.Context) {
		if err := i.Reload(); err != nil {
			logger.Error(err, "Reloading cluster identity; still using the previous one")
		}
	}, interval)
}

// ServerConfig serves the identity and verifies client certificates against the bundle as
// auth says: tls.VerifyClientCertIfGiven on the public endpoint (cars have no certificate),
// tls.RequireAndVerifyClientCert on the ledger server.
func (i *Identity) ServerConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// A fresh configuration per handshake picks up a rotated bundle.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: i.cert.GetCertificate,
				ClientAuth:     auth,
				ClientCAs:      i.roots.Load(),
			}, nil
		},
	}
}

// ClientConfig presents the identity and verifies servers against the bundle as it is now;
// HTTPClient takes a new one per connection.
func (i *Identity) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    i.roots.Load(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return i.cert.GetCertificate(nil)
		},
	}
}

// HTTPClient is a client presenting the identity, trusting the bundle as it is when each
// connection is made.
func (i *Identity) HTTPClient(timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = nil
	// A controller's calls come in bursts: keep their connections rather than pay a
	// handshake for each.
	transport.MaxIdleConnsPerHost = 32
	transport.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := &tls.Dialer{Config: i.ClientConfig()}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: timeout, Transport: transport}
}

// AnonymousClient verifies servers by the CA bundle caPEM and presents no certificate, as
// a car does.
func AnonymousClient(caPEM []byte, timeout time.Duration) (*http.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("CA bundle holds no PEM certificate")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return &http.Client{Timeout: timeout, Transport: transport}, nil
}

// RequireTLS is nil for an https URL or an http URL whose host is loopback; plain HTTP
// carries identities and tokens in clear, so it is for development on one machine only.
func RequireTLS(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parsing URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s: plain HTTP is allowed only to a loopback address (development); use https", rawURL)
	default:
		return fmt.Errorf("%s: scheme must be https (or http to a loopback address)", rawURL)
	}
}

// IsLoopback reports whether host (a name or an address, without port) is this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
