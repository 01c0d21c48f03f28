package app

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/inference/profile"
)

// TestCar runs `edgemigrate car` against a local server playing a cluster's gateway: every
// request carries the token and a valid profiler window (or the --body-file), the summary
// names the serving cluster, and a failing gateway makes it exit with an error and a line
// per failure.
func TestCar(t *testing.T) {
	var bad atomic.Value
	bad.Store("")
	var served, locations atomic.Int32
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			http.Error(w, `{"error":"bad token"}`, http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/v1/clients/car-9/location":
			locations.Add(1)
			w.WriteHeader(http.StatusNoContent)
			return
		case r.URL.Path != "/v1/clients/car-9/service/infer":
			http.NotFound(w, r)
			return
		case bad.Load() != "":
			http.Error(w, `{"error":"`+bad.Load().(string)+`"}`, http.StatusServiceUnavailable)
			return
		}
		if string(body) != "fixed" {
			if _, err := profile.ParseRequest(body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		served.Add(1)
		w.Header().Set(api.HeaderCluster, "edge-x")
		w.Header().Set(api.HeaderPod, "demo/p")
		_, _ = w.Write([]byte(`{"profile":"calm"}`))
	}))
	defer gw.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	body := filepath.Join(dir, "body")
	for f, data := range map[string]string{token: "secret\n", body: "fixed"} {
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"--id", "car-9", "--token-file", token, "--cluster", "edge-x=" + gw.URL + "@35.0,128.0,2000",
		"--route", "35.0,128.0;35.001,128.0", "--speed", "500", "--report-every", "10ms", "--request-every", "20ms"}

	for _, tc := range []struct {
		name    string
		args    []string
		failing string
		wantErr string
		wantOut []string
	}{
		{name: "generated profiler windows", args: []string{"--duration", "300ms"}, wantOut: []string{" 0 failed", "served by: edge-x "}},
		{name: "body file, route time", args: []string{"--body-file", body}, wantOut: []string{" 0 failed", "served by: edge-x "}},
		{name: "failures", args: []string{"--duration", "100ms"}, failing: "no Ready pod", wantErr: "requests failed",
			wantOut: []string{"failed: http 503 ", "FAILED #0 ", "no Ready pod"}},
		{name: "bad cluster flag", args: []string{"--cluster", "edge-y"}, wantErr: "--cluster"},
		{name: "bad path", args: []string{"--path", "infer"}, wantErr: "--path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad.Store(tc.failing)
			served.Store(0)
			var out bytes.Buffer
			cmd := newCarCommand()
			cmd.SetArgs(append(append([]string{}, base...), tc.args...))
			cmd.SetOut(&out)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("edgemigrate car: %v\n%s", err, out.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("edgemigrate car: error %v, want one saying %q\n%s", err, tc.wantErr, out.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tc.wantErr == "" && served.Load() == 0 {
				t.Error("the gateway served no request")
			}
		})
	}
	if locations.Load() == 0 {
		t.Error("the car never reported its position")
	}
}
