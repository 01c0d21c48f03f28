package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/mtls"
)

func TestServerOptionsValidate(t *testing.T) {
	files := mtls.Files{CertFile: "tls.crt", KeyFile: "tls.key", CAFile: "ca.crt"}
	tests := []struct {
		name    string
		change  func(*ServerOptions)
		wantErr string
	}{
		{"no certificate", func(o *ServerOptions) {}, "--tls-cert-file, --tls-key-file and --tls-ca-file are required"},
		{"no CA", func(o *ServerOptions) { o.TLS = files; o.TLS.CAFile = "" }, "--tls-ca-file are required"},
		{"no db", func(o *ServerOptions) { o.TLS = files; o.DBPath = "" }, "--db is required"},
		{"no address", func(o *ServerOptions) { o.TLS = files; o.Listen = "" }, "--listen is required"},
		{"no rate", func(o *ServerOptions) { o.TLS = files; o.Limits.PerSecond = 0 }, "rate limits must be positive"},
		{"no burst", func(o *ServerOptions) { o.TLS = files; o.Limits.Burst = 0 }, "rate limits must be positive"},
		{"dead-after not whole seconds", func(o *ServerOptions) { o.TLS, o.AdminMSP, o.DeadAfter = files, "Org1MSP", 1500*time.Millisecond }, "--dead-after: invalid: dead-after 1.5s must be whole seconds"},
		{"dead-after over a day", func(o *ServerOptions) { o.TLS, o.AdminMSP, o.DeadAfter = files, "Org1MSP", 25*time.Hour }, "from 1s to 24h0m0s"},
		{"dead-after without the admin", func(o *ServerOptions) { o.TLS, o.DeadAfter = files, time.Minute }, "`edgemigrate ledger init`"},
		{"dead-after", func(o *ServerOptions) { o.TLS, o.AdminMSP, o.DeadAfter = files, "Org1MSP", 45*time.Second }, ""},
		{"complete", func(o *ServerOptions) { o.TLS = files }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewServerOptions()
			tt.change(o)
			err := o.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestServe runs the server as `edgemigrate ledger` does and uses it through the client.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	ca, err := mtls.NewCA("fleet-ca")
	if err != nil {
		t.Fatal(err)
	}
	serverFiles, err := ca.WriteIdentity(filepath.Join(dir, "server"), "ledger", "LedgerMSP", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	o := NewServerOptions()
	o.DBPath, o.TLS, o.NoSync, o.AdminMSP, o.DeadAfter = filepath.Join(dir, "ledger.db"), serverFiles, true, "Org1MSP", 45*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, o, ln) }()
	base := "https://" + ln.Addr().String()

	client, err := Dial(base, identity(t, ca, "edge-a", "Org1MSP"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := client.GetLedgerConfig(ctx); err != nil || *cfg != (chaincode.LedgerConfig{AdminMSP: "Org1MSP", DeadAfterSeconds: 45}) {
		t.Errorf("ledger set up as %+v (%v), want admin Org1MSP and dead-after 45 s from the options", cfg, err)
	}
	if _, err := client.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: "edge-a", MSPID: "Org1MSP"}); err != nil {
		t.Fatalf("admitting through the server: %v", err)
	}
	c, err := client.RegisterCluster(ctx, chaincode.ClusterRegistration{
		ID: "edge-a", Location: chaincode.Location{Lat: 37.5, Lon: 127.0}, CoverageRadiusM: 1000,
	})
	if err != nil {
		t.Fatalf("registering through the server: %v", err)
	}
	if c.MSPID != "Org1MSP" {
		t.Errorf("cluster bound to %q, want the certificate's Org1MSP", c.MSPID)
	}
	// Probes need no certificate; the ledger does.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM())
	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/events": http.StatusUnauthorized} {
		resp, err := probe.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a certificate = %s, want %d", path, resp.Status, want)
		}
	}
	if resp, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP served: %s", resp.Status)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestServeBadIdentity(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := NewServerOptions()
	o.DBPath = filepath.Join(dir, "ledger.db")
	o.TLS = mtls.Files{CertFile: filepath.Join(dir, "absent.crt"), KeyFile: filepath.Join(dir, "absent.key"), CAFile: filepath.Join(dir, "ca.crt")}
	if err := Serve(context.Background(), o, ln); err == nil || !strings.Contains(err.Error(), "loading cluster identity") {
		t.Fatalf("got %v, want an error about the identity files", err)
	}
}
