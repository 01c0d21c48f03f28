package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerFromEnv(t *testing.T) {
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	for _, f := range []string{key, cert} {
		if err := os.WriteFile(f, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := map[string]string{"CHAINCODE_ID": "edgemigrate_1.0:abc", "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:9999"}
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
		wantTLS bool
	}{
		{"plain", nil, "", false},
		{"no id", map[string]string{"CHAINCODE_ID": ""}, "must be set", false},
		{"no address", map[string]string{"CHAINCODE_SERVER_ADDRESS": ""}, "must be set", false},
		{"bad bool", map[string]string{"CHAINCODE_TLS_DISABLED": "maybe"}, "not a boolean", false},
		{"tls", map[string]string{"CHAINCODE_TLS_DISABLED": "false", "CHAINCODE_TLS_KEY": key, "CHAINCODE_TLS_CERT": cert}, "", true},
		{"tls without key", map[string]string{"CHAINCODE_TLS_DISABLED": "false", "CHAINCODE_TLS_CERT": cert}, "CHAINCODE_TLS_KEY must be set", false},
		{"tls key missing", map[string]string{"CHAINCODE_TLS_DISABLED": "false", "CHAINCODE_TLS_KEY": key + ".gone", "CHAINCODE_TLS_CERT": cert}, "reading CHAINCODE_TLS_KEY", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			s, err := serverFromEnv(func(k string) string { return env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.TLSProps.Disabled == tc.wantTLS || (tc.wantTLS && string(s.TLSProps.Key) != key) {
				t.Errorf("TLS properties %+v", s.TLSProps)
			}
		})
	}
}

// TestNoKubernetesOrFabricV1Dependencies keeps the binary free of Kubernetes (it runs next
// to a peer) and of the v1 protobufs, which clash with the v2 ones at registration.
func TestNoKubernetesOrFabricV1Dependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") ||
			strings.HasPrefix(dep, "github.com/hyperledger/fabric-protos-go/") || strings.HasPrefix(dep, "github.com/hyperledger/fabric-chaincode-go/shim") {
			t.Errorf("edgemigrate-chaincode depends on %s", dep)
		}
	}
}
