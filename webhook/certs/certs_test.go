package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair issues a serving certificate for 127.0.0.1 from ca and writes it to dir.
func writePair(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string, serial string) {
	t.Helper()
	now := time.Now()
	pair, err := newServingCert(ca, caKey, []string{"127.0.0.1"}, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(pair.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	// Write-then-rename, as the kubelet's atomic Secret update does.
	for path, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, pair.Leaf.SerialNumber.String()
}

// serveTLS serves src on 127.0.0.1 and returns its address.
func serveTLS(t *testing.T, src Source) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), TLSConfig: TLSConfig(src)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// servedSerial connects trusting roots and returns the serial of the certificate served.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) (string, error) {
	return servedSerialAt(t, addr, roots, time.Now())
}

// servedSerialAt verifies as a client whose clock reads at.
func servedSerialAt(t *testing.T, addr string, roots *x509.CertPool, at time.Time) (string, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Time: func() time.Time { return at }})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestFileSourceRotatesWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, err := newCA(time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, first := writePair(t, dir, ca, caKey)
	src, err := NewFileSource(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, src)
	if got, err := servedSerial(t, addr, pool(ca)); err != nil || got != first {
		t.Fatalf("served serial %s (%v), want %s", got, err, first)
	}
	if changed, err := src.Reload(); changed || err != nil {
		t.Errorf("reload of unchanged files: changed %v, %v", changed, err)
	}

	_, _, second := writePair(t, dir, ca, caKey)
	if changed, err := src.Reload(); !changed || err != nil {
		t.Fatalf("reload after rotation: changed %v, %v", changed, err)
	}
	if got, err := servedSerial(t, addr, pool(ca)); err != nil || got != second {
		t.Fatalf("after rotation served serial %s (%v), want %s", got, err, second)
	}

	// A half-written rotation keeps the last good pair.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Reload(); err == nil || !strings.Contains(err.Error(), "loading serving certificate") {
		t.Errorf("reload of a broken key: %v, want an error", err)
	}
	if got, err := servedSerial(t, addr, pool(ca)); err != nil || got != second {
		t.Errorf("after a broken rotation served serial %s (%v), want still %s", got, err, second)
	}
}

func TestFileSourceErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewFileSource(filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing files: %v", err)
	}
}

func TestTLSMinimumVersion(t *testing.T) {
	ss, err := NewSelfSigned(context.Background(), SelfSignedOptions{Hosts: []string{"127.0.0.1"}, Publish: func(context.Context, []byte) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, ss)
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
}

func TestSelfSigned(t *testing.T) {
	ctx := context.Background()
	var published [][]byte
	publishErr := error(nil)
	now := time.Now()
	clock := now
	ss, err := NewSelfSigned(ctx, SelfSignedOptions{
		Hosts:        []string{"127.0.0.1", "edgemigrate-webhook.edgemigrate-system.svc"},
		CALifetime:   6 * time.Hour,
		CertLifetime: 3 * time.Hour,
		Publish: func(_ context.Context, b []byte) error {
			if publishErr != nil {
				return publishErr
			}
			published = append(published, b)
			return nil
		},
		Now: func() time.Time { return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(published) != 1 {
		t.Fatalf("published %d bundles at start, want 1", len(published))
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(published[0]) {
		t.Fatal("published bundle holds no certificate")
	}
	addr := serveTLS(t, ss)
	first, err := servedSerialAt(t, addr, roots, clock)
	if err != nil {
		t.Fatalf("serving certificate does not verify with the published CA: %v", err)
	}
	leaf, _ := ss.GetCertificate(nil)
	if got := leaf.Leaf.DNSNames; len(got) != 1 || got[0] != "edgemigrate-webhook.edgemigrate-system.svc" {
		t.Errorf("DNS names %v", got)
	}

	// Not due: nothing changes.
	if err := ss.RenewIfDue(ctx, ss.RenewAt().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := servedSerialAt(t, addr, roots, clock); got != first {
		t.Errorf("renewed before due")
	}

	// Due, CA still valid long enough: new certificate, same CA, nothing published.
	clock = ss.RenewAt().Add(time.Second)
	if err := ss.RenewIfDue(ctx, clock); err != nil {
		t.Fatal(err)
	}
	second, err := servedSerialAt(t, addr, roots, clock)
	if err != nil || second == first {
		t.Fatalf("after renewal: serial %s (%v), want a new one verifying with the same CA", second, err)
	}
	if len(published) != 1 {
		t.Errorf("published %d bundles, want no new CA yet", len(published))
	}

	// The CA would expire before a new certificate: a failed publish keeps everything.
	clock = ss.RenewAt().Add(time.Second)
	publishErr = errors.New("webhook configuration not found")
	if err := ss.RenewIfDue(ctx, clock); err == nil {
		t.Fatal("renewal succeeded although the new CA could not be published")
	}
	if got, err := servedSerialAt(t, addr, roots, clock); err != nil || got != second {
		t.Fatalf("after failed CA rotation: serial %s (%v), want still %s", got, err, second)
	}

	// Published: new CA, bundle holds old and new, new certificate verifies with the new CA.
	publishErr = nil
	if err := ss.RenewIfDue(ctx, clock); err != nil {
		t.Fatal(err)
	}
	if len(published) != 2 {
		t.Fatalf("published %d bundles, want 2", len(published))
	}
	if n := strings.Count(string(published[1]), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("bundle after CA rotation holds %d certificates, want the new and the old CA", n)
	}
	newRoots := x509.NewCertPool()
	newRoots.AppendCertsFromPEM(published[1])
	if _, err := servedSerialAt(t, addr, newRoots, clock); err != nil {
		t.Errorf("certificate after CA rotation does not verify with the new bundle: %v", err)
	}
	if _, err := servedSerialAt(t, addr, roots, clock); err == nil {
		t.Error("certificate after CA rotation still verifies with the old CA alone")
	}
}

func TestSelfSignedOptions(t *testing.T) {
	publish := func(context.Context, []byte) error { return nil }
	if _, err := NewSelfSigned(context.Background(), SelfSignedOptions{Publish: publish}); err == nil {
		t.Error("no hosts accepted")
	}
	if _, err := NewSelfSigned(context.Background(), SelfSignedOptions{Hosts: []string{"a"}, Publish: publish, CALifetime: time.Hour, CertLifetime: 2 * time.Hour}); err == nil {
		t.Error("certificate outliving its CA accepted")
	}
}
