// Command testservice is the small HTTP service of the real-node tests: `testservice
// [--listen :8080] [--require-file PATH]` answers GET /, POST /infer and GET|POST
// /slow?d=2s (after sleeping d, at most a minute) with the pod and cluster it runs in and
// the number of such requests it has answered, and serves /healthz and /readyz;
// --require-file makes it exit 1 at start when PATH is missing (a container that crashes
// where its ConfigMap is absent);
// `testservice get [--in-cluster] [--retry 30s] URL` fetches URL and prints the body (exit 1 unless 200),
// so a pod of the same image can call another through a Service without a shell or curl;
// --in-cluster presents the pod's ServiceAccount token and trusts the cluster's CA, to call
// the API server.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgemigrate/edgemigrate/api"
)

// Answer is what GET /, POST /infer and /slow return.
type Answer struct {
	Hostname  string `json:"hostname"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node,omitempty"`
	Cluster   string `json:"cluster,omitempty"`
	UID       int    `json:"uid"`
	// Served counts the requests other than probes this process has answered, this one
	// included: asking before and after shows whether anything else reached the pod.
	Served int64 `json:"served"`
}

// maxSlow bounds /slow's delay.
const maxSlow = time.Minute

func main() {
	if len(os.Args) > 1 && os.Args[1] == "get" {
		fs := flag.NewFlagSet("get", flag.ExitOnError)
		inCluster := fs.Bool("in-cluster", false, "authenticate with the pod's ServiceAccount token, trust its CA")
		retry := fs.Duration("retry", 0, "keep trying this long while the request fails (a Service not yet programmed)")
		_ = fs.Parse(os.Args[2:])
		if fs.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "usage: testservice get [--in-cluster] [--retry DURATION] URL")
			os.Exit(2)
		}
		deadline := time.Now().Add(*retry)
		err := get(fs.Arg(0), *inCluster)
		for err != nil && time.Now().Before(deadline) {
			fmt.Fprintln(os.Stderr, "retrying:", err)
			time.Sleep(500 * time.Millisecond)
			err = get(fs.Arg(0), *inCluster)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	listen := flag.String("listen", ":8080", "address to serve on")
	requireFile := flag.String("require-file", "", "exit 1 at start unless this file exists")
	flag.Parse()
	if *requireFile != "" {
		if _, err := os.Stat(*requireFile); err != nil {
			fmt.Fprintf(os.Stderr, "testservice: required file %s is missing: %v\n", *requireFile, err)
			os.Exit(1)
		}
	}
	if err := serve(*listen); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func serve(listen string) error {
	host, _ := os.Hostname()
	answer := Answer{Hostname: host, Pod: os.Getenv("POD_NAME"), Namespace: os.Getenv("POD_NAMESPACE"),
		Node: os.Getenv("NODE_NAME"), Cluster: os.Getenv(api.EnvCluster), UID: os.Getuid()}
	srv := &http.Server{Addr: listen, Handler: handler(answer), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Printf("serving on %s as uid %d\n", listen, answer.UID)
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", listen, err)
	case <-ctx.Done():
	}
	// Long enough for a /slow request the gateway is draining.
	shutdown, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// handler answers with answer, counting what it serves.
func handler(answer Answer) http.Handler {
	var served atomic.Int64
	reply := func(w http.ResponseWriter) {
		a := answer
		a.Served = served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { reply(w) })
	mux.HandleFunc("POST /infer", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		reply(w)
	})
	slow := func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 || d > maxSlow {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("d=%q: want a duration from 0 to %s, e.g. d=2s", r.URL.Query().Get("d"), maxSlow)})
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		select {
		case <-time.After(d):
			reply(w)
		case <-r.Context().Done(): // the caller gave up
		}
	}
	mux.HandleFunc("GET /slow", slow)
	mux.HandleFunc("POST /slow", slow)
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	return mux
}

// serviceAccountDir is where the kubelet mounts a pod's ServiceAccount credentials.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount/"

func get(url string, inCluster bool) error {
	client := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if inCluster {
		token, err := os.ReadFile(serviceAccountDir + "token")
		if err != nil {
			return fmt.Errorf("reading the ServiceAccount token: %w", err)
		}
		ca, err := os.ReadFile(serviceAccountDir + "ca.crt")
		if err != nil {
			return fmt.Errorf("reading the cluster's CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return fmt.Errorf("no certificate in %sca.crt", serviceAccountDir)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	os.Stdout.Write(body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
