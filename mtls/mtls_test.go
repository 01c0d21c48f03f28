package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/pki"
)

func testCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func loadIdentity(t *testing.T, ca *CA, dir, cluster, msp string) *Identity {
	t.Helper()
	f, err := ca.WriteIdentity(dir, cluster, msp, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	id, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// serve serves id with auth on loopback; the handler answers with the verified peer.
func serve(t *testing.T, id *Identity, auth tls.ClientAuthType) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := PeerOfRequest(r); ok {
			fmt.Fprintf(w, "%s/%s", p.ClusterID, p.MSPID)
			return
		}
		fmt.Fprint(w, "anonymous")
	}))
	srv.TLS = id.ServerConfig(auth)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// anonymous trusts ca but presents no certificate, as a car does.
func anonymous(ca *CA) *http.Client {
	c, err := AnonymousClient(ca.PEM(), 5*time.Second)
	if err != nil {
		panic(err) // a CA's own PEM
	}
	return c
}

func TestPeerFromVerifiedChainOnly(t *testing.T) {
	fleet, other := testCA(t, "fleet-ca"), testCA(t, "other-ca")
	server := loadIdentity(t, fleet, t.TempDir(), "edge-0", "Edge0MSP")
	member := loadIdentity(t, fleet, t.TempDir(), "edge-1", "Edge1MSP")
	// A stranger with its own CA claims a member's name; its bundle trusts the fleet so
	// that only the server's check can refuse it.
	strangerDir := t.TempDir()
	f, err := other.WriteIdentity(strangerDir, "edge-1", "Edge1MSP", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.CAFile, fleet.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	stranger, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		auth    tls.ClientAuthType
		client  *http.Client
		want    string
		refused bool
	}{
		{"member on the ledger", tls.RequireAndVerifyClientCert, member.HTTPClient(5 * time.Second), "edge-1/Edge1MSP", false},
		{"member on the public endpoint", tls.VerifyClientCertIfGiven, member.HTTPClient(5 * time.Second), "edge-1/Edge1MSP", false},
		{"car on the public endpoint", tls.VerifyClientCertIfGiven, anonymous(fleet), "anonymous", false},
		{"car on the ledger", tls.RequireAndVerifyClientCert, anonymous(fleet), "", true},
		{"other CA on the ledger", tls.RequireAndVerifyClientCert, stranger.HTTPClient(5 * time.Second), "", true},
		{"other CA on the public endpoint", tls.VerifyClientCertIfGiven, stranger.HTTPClient(5 * time.Second), "", true},
		// Presented but never verified: no identity.
		{"unverified certificate", tls.RequestClientCert, stranger.HTTPClient(5 * time.Second), "anonymous", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := get(tc.client, serve(t, server, tc.auth))
			if tc.refused {
				if err == nil {
					t.Fatalf("served %q, want the handshake refused", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestClientRefusesServerOfAnotherCA(t *testing.T) {
	fleet, other := testCA(t, "fleet-ca"), testCA(t, "other-ca")
	impostor := loadIdentity(t, other, t.TempDir(), "edge-0", "Edge0MSP")
	member := loadIdentity(t, fleet, t.TempDir(), "edge-1", "Edge1MSP")
	if got, err := get(member.HTTPClient(5*time.Second), serve(t, impostor, tls.VerifyClientCertIfGiven)); err == nil {
		t.Fatalf("client trusted a server of another CA: %q", got)
	}
}

func TestPeerOfWithoutVerifiedChain(t *testing.T) {
	ca := testCA(t, "fleet-ca")
	certPEM, _, err := ca.Issue("edge-0", "Edge0MSP")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cs   *tls.ConnectionState
		want Peer
		ok   bool
	}{
		{"no TLS", nil, Peer{}, false},
		{"presented only", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, Peer{}, false},
		{"verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}, Peer{"edge-0", "Edge0MSP"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := PeerOf(tc.cs)
			if got != tc.want || ok != tc.ok {
				t.Errorf("PeerOf = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func servedSerial(t *testing.T, url string, c *http.Client) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	return resp.TLS.PeerCertificates[0].SerialNumber.String()
}

func TestRotationWithoutRestart(t *testing.T) {
	ca := testCA(t, "fleet-ca")
	dir := t.TempDir()
	server := loadIdentity(t, ca, dir, "edge-0", "Edge0MSP")
	url := serve(t, server, tls.RequireAndVerifyClientCert)
	member := loadIdentity(t, ca, t.TempDir(), "edge-1", "Edge1MSP")
	client := member.HTTPClient(5 * time.Second)
	first := servedSerial(t, url, client)

	// A new certificate from the same CA.
	if _, err := ca.WriteIdentity(dir, "edge-0", "Edge0MSP", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if second := servedSerial(t, url, client); second == first {
		t.Fatal("the rotated certificate is not served")
	}

	// A new CA: until the server's bundle holds it, its members are refused; then accepted.
	secondCA := testCA(t, "fleet-ca-2")
	newcomer := loadIdentity(t, secondCA, t.TempDir(), "edge-2", "Edge2MSP")
	roots := newcomer.ClientConfig().RootCAs
	roots.AppendCertsFromPEM(ca.PEM()) // the newcomer trusts the old server certificate
	newClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, GetClientCertificate: newcomer.ClientConfig().GetClientCertificate}}}
	if _, err := get(newClient, url); err == nil {
		t.Fatal("a member of a CA not yet in the bundle was served")
	}
	bundle := append(ca.PEM(), secondCA.PEM()...)
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, err := get(newClient, url); err != nil || got != "edge-2/Edge2MSP" {
		t.Fatalf("after the bundle rotation: %q (%v)", got, err)
	}

	// A half-written rotation keeps the last good material.
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not a bundle"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err == nil {
		t.Fatal("reload of broken files succeeded")
	}
	if got, err := get(member.HTTPClient(5*time.Second), url); err != nil || got != "edge-1/Edge1MSP" {
		t.Fatalf("after a broken rotation: %q (%v)", got, err)
	}
}

func TestLoadErrors(t *testing.T) {
	ca := testCA(t, "fleet-ca")
	dir := t.TempDir()
	good, err := ca.WriteIdentity(dir, "edge-0", "Edge0MSP")
	if err != nil {
		t.Fatal(err)
	}
	noOrg := filepath.Join(dir, "noorg.crt")
	writeNoOrg(t, ca, noOrg)
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    Files
		want string
	}{
		{"no CA file", Files{CertFile: good.CertFile, KeyFile: good.KeyFile}, "needs a certificate, a key and a CA bundle"},
		{"missing certificate", Files{CertFile: filepath.Join(dir, "missing"), KeyFile: good.KeyFile, CAFile: good.CAFile}, "loading cluster identity"},
		{"empty bundle", Files{CertFile: good.CertFile, KeyFile: good.KeyFile, CAFile: empty}, "holds no PEM certificate"},
		{"no organization", Files{CertFile: noOrg, KeyFile: noOrg + ".key", CAFile: good.CAFile}, "needs a CommonName (cluster id) and an Organization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, _, err := ca.Issue("", "Edge0MSP"); err == nil {
		t.Error("an identity without cluster id was issued")
	}
}

// writeNoOrg writes a certificate of ca with a CommonName and no Organization.
func writeNoOrg(t *testing.T, ca *CA, path string) {
	t.Helper()
	kp, err := pki.NewCertificate(ca.kp, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "edge-0"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pki.EncodeCert(kp.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".key", keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRequireTLS(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://ledger.edge.example:8443", true},
		{"https://10.0.0.5", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.8.9.10", true},
		{"http://[::1]:80", true},
		{"http://localhost:9000/v1", true},
		{"http://10.0.0.5:8080", false},
		{"http://ledger.edge.example", false},
		{"http://localhost.evil.example", false},
		{"ftp://127.0.0.1", false},
		{"://bad", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			if err := RequireTLS(tc.url); (err == nil) != tc.ok {
				t.Errorf("RequireTLS(%q) = %v, want ok %v", tc.url, err, tc.ok)
			}
		})
	}
	if !IsLoopback("127.0.0.1") || IsLoopback("192.0.2.1") || IsLoopback(net.IPv4zero.String()) {
		t.Error("IsLoopback")
	}
}

func TestGenerateAndIssueFrom(t *testing.T) {
	gen, err := Generate("edge-a", "EdgeAMSP", time.Hour, time.Minute, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(gen.CAPEM)
	certPEM, _, err := IssueFrom(gen.CAPEM, gen.CAKeyPEM, time.Minute, "edge-a", "EdgeAMSP", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{"generated": gen.CertPEM, "reissued": certPEM} {
		block, _ := pem.Decode(p)
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s certificate does not verify with the generated CA: %v", name, err)
		}
		if p, ok := peerOfCert(leaf); !ok || p != (Peer{"edge-a", "EdgeAMSP"}) {
			t.Errorf("%s certificate names %+v", name, p)
		}
	}
	// A leaf is no CA; garbage is no key.
	if _, _, err := IssueFrom(gen.CertPEM, gen.KeyPEM, time.Minute, "edge-b", "EdgeBMSP"); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("issuing from a leaf: %v, want refused", err)
	}
	if _, _, err := IssueFrom(gen.CAPEM, []byte("no key"), time.Minute, "edge-b", "EdgeBMSP"); err == nil || !strings.Contains(err.Error(), "loading the identity's CA") {
		t.Errorf("issuing without the CA key: %v, want refused", err)
	}
}
