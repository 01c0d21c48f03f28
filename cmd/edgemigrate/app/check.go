package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// checkOptions are the flags of `edgemigrate check`.
type checkOptions struct {
	Timeout            time.Duration
	CAFile             string
	InsecureSkipVerify bool
}

// newCheckCommand checks that endpoints answer: the chart's `helm test` pod runs it, so the
// test needs no image but the one the project builds.
func newCheckCommand() *cobra.Command {
	opts := checkOptions{Timeout: 60 * time.Second}
	cmd := &cobra.Command{
		Use:   "check URL...",
		Short: "GET each URL, retrying with backoff until it answers 2xx or --timeout passes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, urls []string) error {
			// A malformed URL fails at once, not after --timeout of retries.
			for _, u := range urls {
				if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
					return fmt.Errorf("%q is not an http(s) URL", u)
				}
			}
			client, err := opts.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), opts.Timeout)
			defer cancel()
			for _, u := range urls {
				if err := checkURL(ctx, client, u); err != nil {
					return err
				}
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), "ok", u); err != nil {
					return err
				}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "How long to keep retrying, for all URLs together")
	fs.StringVar(&opts.CAFile, "ca-file", "", "PEM CA bundle that verifies https URLs (default: the system's roots)")
	fs.BoolVar(&opts.InsecureSkipVerify, "insecure-skip-verify", false,
		"Do not verify https certificates. Acceptable for a liveness check of a self-signed endpoint "+
			"(the webhook's CA lives in its memory): it tells whether something answers, not who; "+
			"send nothing secret with it")
	return cmd
}

func (o *checkOptions) client() (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // opt-in, see the flag's help
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --ca-file: %w", err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", o.CAFile)
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	// Each attempt is short so that a hung endpoint still leaves time for retries.
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}, nil
}

// checkURL GETs u until it answers 2xx or ctx ends; the error names u and what it
// last answered.
func checkURL(ctx context.Context, client *http.Client, u string) error {
	logger := klog.FromContext(ctx)
	var last error
	backoff := wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 5 * time.Second}
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		last = get(ctx, client, u)
		if last != nil {
			logger.V(2).Info("Not answering yet", "url", u, "err", last)
		}
		return last == nil, nil
	})
	if err != nil {
		if last == nil {
			last = err
		}
		return fmt.Errorf("checking %s: %w", u, last)
	}
	return nil
}

func get(ctx context.Context, client *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("status %s: %q", resp.Status, body)
	}
	return nil
}
