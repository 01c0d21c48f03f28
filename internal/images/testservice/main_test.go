package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func call(t *testing.T, srv *httptest.Server, method, path string, decode bool) (int, Answer) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a Answer
	if decode && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, a
}

// TestHandler: /, /infer and /slow answer with the identity and count what they serve,
// probes are not counted, a bad delay is a 400.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(handler(Answer{Hostname: "h", Pod: "p", Namespace: "ns", Node: "n", Cluster: "edge-b"}))
	defer srv.Close()
	steps := []struct {
		method, path string
		status       int
		served       int64
	}{
		{"GET", "/", 200, 1},
		{"GET", "/healthz", 200, 0},
		{"GET", "/readyz", 200, 0},
		{"POST", "/infer", 200, 2},
		{"GET", "/slow?d=10ms", 200, 3},
		{"POST", "/slow?d=0s", 200, 4},
		{"GET", "/slow?d=2m", 400, 0},
		{"GET", "/slow?d=-1s", 400, 0},
		{"GET", "/slow?d=soon", 400, 0},
		{"GET", "/slow", 400, 0},
		{"GET", "/infer", 405, 0},
		{"GET", "/", 200, 5},
	}
	for _, s := range steps {
		status, a := call(t, srv, s.method, s.path, s.served != 0)
		if status != s.status {
			t.Fatalf("%s %s: %d, want %d", s.method, s.path, status, s.status)
		}
		if s.served == 0 {
			continue
		}
		if a.Served != s.served || a.Pod != "p" || a.Cluster != "edge-b" || a.Node != "n" {
			t.Fatalf("%s %s: %+v, want served %d with the identity", s.method, s.path, a, s.served)
		}
	}
}

// TestRequireFile: the process exits 1, saying which file, when --require-file is missing.
func TestRequireFile(t *testing.T) {
	if os.Getenv("TESTSERVICE_MAIN") == "1" {
		os.Args = append([]string{"testservice"}, strings.Fields(os.Getenv("TESTSERVICE_ARGS"))...)
		main()
		return
	}
	missing := filepath.Join(t.TempDir(), "config.yaml")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRequireFile$")
	cmd.Env = append(os.Environ(), "TESTSERVICE_MAIN=1", "TESTSERVICE_ARGS=--listen 127.0.0.1:0 --require-file "+missing)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), missing) {
		t.Fatalf("with %s missing: %v, output %q; want exit 1 naming it", missing, err, out)
	}
}
