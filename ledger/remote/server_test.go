package remote

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

func TestServerOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*ServerOptions)
		wantErr string
	}{
		{"no identities", func(o *ServerOptions) {}, "--identities is required"},
		{"no db", func(o *ServerOptions) { o.IdentitiesPath = "ids.json"; o.DBPath = "" }, "--db is required"},
		{"no address", func(o *ServerOptions) { o.IdentitiesPath = "ids.json"; o.Listen = "" }, "--listen is required"},
		{"complete", func(o *ServerOptions) { o.IdentitiesPath = "ids.json" }, ""},
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
	ids := filepath.Join(dir, "ids.json")
	if err := os.WriteFile(ids, []byte(`[{"token": "t1", "mspId": "Org1MSP"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &ServerOptions{DBPath: filepath.Join(dir, "ledger.db"), IdentitiesPath: ids, NoSync: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, o, ln) }()
	base := "http://" + ln.Addr().String()

	client, err := Dial(base, "t1", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.RegisterCluster(ctx, chaincode.ClusterRegistration{
		ID: "edge-a", Location: chaincode.Location{Lat: 37.5, Lon: 127.0}, CoverageRadiusM: 1000,
	})
	if err != nil {
		t.Fatalf("registering through the server: %v", err)
	}
	if c.MSPID != "Org1MSP" {
		t.Errorf("cluster bound to %q, want the token's Org1MSP", c.MSPID)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %s", path, resp.Status)
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

func TestServeBadIdentities(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &ServerOptions{DBPath: filepath.Join(t.TempDir(), "ledger.db"), IdentitiesPath: filepath.Join(t.TempDir(), "absent.json")}
	if err := Serve(context.Background(), o, ln); err == nil || !strings.Contains(err.Error(), "reading identities") {
		t.Fatalf("got %v, want an error about the identities file", err)
	}
}
