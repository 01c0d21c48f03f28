// Command testservice is the small HTTP service of the real-node tests: `testservice
// [--listen :8080]` answers GET / with the pod it runs in and serves /healthz and /readyz;
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
	"syscall"
	"time"
)

// Answer is what GET / returns.
type Answer struct {
	Hostname  string `json:"hostname"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node,omitempty"`
	UID       int    `json:"uid"`
}

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
	flag.Parse()
	if err := serve(*listen); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func serve(listen string) error {
	host, _ := os.Hostname()
	answer := Answer{Hostname: host, Pod: os.Getenv("POD_NAME"), Namespace: os.Getenv("POD_NAMESPACE"),
		Node: os.Getenv("NODE_NAME"), UID: os.Getuid()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
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
