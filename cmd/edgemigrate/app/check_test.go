package app

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCheck runs `edgemigrate check` against local servers: it passes only when every URL
// answers 2xx (retrying until then), and its error names the URL and what it last answered.
func TestCheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not the leader", http.StatusServiceUnavailable)
	}))
	defer broken.Close()
	var calls atomic.Int32
	// Unready for its first two calls, as a pod that is still starting.
	late := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer late.Close()
	tlsServer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer tlsServer.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsServer.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(notPEM, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string // substrings of the error; none: success
		wantOut string
	}{
		{name: "2xx", args: []string{ok.URL + "/healthz"}, wantOut: "ok " + ok.URL + "/healthz\n"},
		{name: "retries until ready", args: []string{late.URL}, wantOut: "ok " + late.URL + "\n"},
		{name: "every URL must answer", args: []string{"--timeout=1s", ok.URL, broken.URL + "/readyz"},
			wantErr: []string{broken.URL + "/readyz", "503", "not the leader"}},
		{name: "nothing listening", args: []string{"--timeout=1s", "http://127.0.0.1:1/"},
			wantErr: []string{"http://127.0.0.1:1/", "connection refused"}},
		{name: "self-signed refused", args: []string{"--timeout=1s", tlsServer.URL}, wantErr: []string{tlsServer.URL, "certificate"}},
		{name: "self-signed, skip verify", args: []string{"--insecure-skip-verify", tlsServer.URL}},
		{name: "ca file", args: []string{"--ca-file=" + caFile, tlsServer.URL}},
		{name: "ca file without PEM", args: []string{"--ca-file=" + notPEM, tlsServer.URL}, wantErr: []string{notPEM, "no PEM"}},
		{name: "ca file missing", args: []string{"--ca-file=/nonexistent", tlsServer.URL}, wantErr: []string{"--ca-file", "/nonexistent"}},
		{name: "not a URL", args: []string{"edgemigrate-webhook:443"}, wantErr: []string{"edgemigrate-webhook:443", "not an http(s) URL"}},
		{name: "no URL", args: nil, wantErr: []string{"requires at least 1 arg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newCheckCommand()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&bytes.Buffer{})
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("check %v: %v", tc.args, err)
				}
				if tc.wantOut != "" && out.String() != tc.wantOut {
					t.Errorf("output %q, want %q", out.String(), tc.wantOut)
				}
				return
			}
			if err == nil {
				t.Fatalf("check %v succeeded", tc.args)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
