package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/internal/inference/profile"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// carOptions are the flags of `edgemigrate car`.
type carOptions struct {
	ID, TokenFile string
	Clusters      []string
	Route         string
	Speed         float64
	ReportEvery   time.Duration
	RequestEvery  time.Duration
	Path          string
	BodyFile      string
	ContentType   string
	Duration      time.Duration
	Timeout       time.Duration
	CAFile        string
}

// newCarCommand drives a car along a route, sending requests through the edge gateways:
// a client to try a fleet with by hand, and the real-node tests' load.
func newCarCommand() *cobra.Command {
	opts := carOptions{Speed: 14, ReportEvery: time.Second, RequestEvery: 200 * time.Millisecond,
		Path: "/infer", ContentType: "application/json", Timeout: car.DefaultTimeout}
	cmd := &cobra.Command{
		Use:   "car",
		Short: "Drive a car along a route, reporting its position and sending requests through the covering cluster's gateway",
		Long: `Drive a car along --route at --speed, reporting its position to the cluster covering it and
to the one serving it, and send a request every --request-every through the gateway of the
covering cluster, following its redirects (to the --cluster gateways only). Without
--body-file each request is a driver-behaviour profiler window (60 s of telemetry at 10 Hz,
generated, cycling through the calm, moderate and aggressive styles). At the end it prints
the figures and a line per failed request, and exits 1 if any request failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCar(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.ID, "id", "", "The car's client id (required)")
	fs.StringVar(&opts.TokenFile, "token-file", "", "File holding the car's bearer token (required)")
	fs.StringArrayVar(&opts.Clusters, "cluster", nil, "A cluster as id=URL@lat,lon,radiusM, URL its public endpoint; repeat for each (required)")
	fs.StringVar(&opts.Route, "route", "", `The route, "lat,lon;lat,lon;…"; one point parks the car (required)`)
	fs.Float64Var(&opts.Speed, "speed", opts.Speed, "Speed along the route, m/s")
	fs.DurationVar(&opts.ReportEvery, "report-every", opts.ReportEvery, "How often the car reports its position")
	fs.DurationVar(&opts.RequestEvery, "request-every", opts.RequestEvery, "Interval between requests (steady: a slow answer does not delay the next)")
	fs.StringVar(&opts.Path, "path", opts.Path, "The service's path each request goes to")
	fs.StringVar(&opts.BodyFile, "body-file", "", "File whose content every request sends (default: generated profiler windows)")
	fs.StringVar(&opts.ContentType, "content-type", opts.ContentType, "Content-Type of the requests")
	fs.DurationVar(&opts.Duration, "duration", 0, "How long to send requests; default the time the route takes (until interrupted for one point)")
	fs.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "Timeout of one request, redirects included")
	fs.StringVar(&opts.CAFile, "ca-file", "", "PEM bundle of the CAs the clusters' HTTPS public endpoints are verified against (default: the system's)")
	return cmd
}

func (o carOptions) config() (car.Options, car.Route, error) {
	var co car.Options
	if o.ID == "" || o.TokenFile == "" || len(o.Clusters) == 0 || o.Route == "" {
		return co, nil, errors.New("car: --id, --token-file, --cluster and --route are required")
	}
	token, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return co, nil, fmt.Errorf("car: reading --token-file: %w", err)
	}
	co = car.Options{ID: o.ID, Token: strings.TrimSpace(string(token)), Every: o.RequestEvery}
	for _, s := range o.Clusters {
		cl, err := car.ParseCluster(s)
		if err != nil {
			return co, nil, fmt.Errorf("car: --cluster: %w", err)
		}
		co.Clusters = append(co.Clusters, cl)
	}
	route, err := car.ParseRoute(o.Route)
	if err != nil {
		return co, nil, fmt.Errorf("car: --route: %w", err)
	}
	if o.RequestEvery <= 0 || o.ReportEvery <= 0 || o.Timeout <= 0 || o.Duration < 0 {
		return co, nil, errors.New("car: --request-every, --report-every and --timeout must be positive, --duration not negative")
	}
	if !strings.HasPrefix(o.Path, "/") {
		return co, nil, fmt.Errorf("car: --path %q must start with /", o.Path)
	}
	if o.BodyFile != "" {
		body, err := os.ReadFile(o.BodyFile)
		if err != nil {
			return co, nil, fmt.Errorf("car: reading --body-file: %w", err)
		}
		co.NewRequest = func(int) car.Request {
			return car.Request{Method: "POST", Path: o.Path, ContentType: o.ContentType, Body: body}
		}
	} else {
		co.NewRequest = func(seq int) car.Request {
			return car.Request{Method: "POST", Path: o.Path, ContentType: o.ContentType, Body: profilerWindow(seq)}
		}
	}
	co.HTTPClient = &http.Client{Timeout: o.Timeout}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return co, nil, fmt.Errorf("car: reading --ca-file: %w", err)
		}
		if co.HTTPClient, err = mtls.AnonymousClient(pem, o.Timeout); err != nil {
			return co, nil, fmt.Errorf("car: --ca-file %s: %w", o.CAFile, err)
		}
	}
	return co, route, nil
}

// profilerWindow is request seq's generated telemetry window, styles in turn.
func profilerWindow(seq int) []byte {
	style := profile.Styles[seq%len(profile.Styles)]
	body, err := json.Marshal(profile.Request{Samples: profile.Window(int64(seq), style)})
	if err != nil {
		panic(fmt.Sprintf("encoding a generated profiler window: %v", err)) // finite floats only
	}
	return body
}

func runCar(ctx context.Context, o carOptions, out io.Writer) error {
	co, route, err := o.config()
	if err != nil {
		return err
	}
	c, err := car.New(co)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("car", o.ID)
	ctx = klog.NewContext(ctx, logger)
	duration := o.Duration
	if duration == 0 && len(route) > 1 {
		duration = time.Duration(route.Length() / o.Speed * float64(time.Second))
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	// The first position before the first request: the car starts where its route does.
	if err := c.MoveTo(ctx, route[0]); err != nil {
		logger.Error(err, "Reporting the starting position")
	}
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	if err := c.Drive(ctx, route, o.Speed, o.ReportEvery); err != nil && ctx.Err() == nil {
		logger.Error(err, "Reporting a position")
	}
	<-ctx.Done()
	if err := <-ran; err != nil {
		return err
	}
	st := c.Stats()
	for _, line := range st.Summary() {
		fmt.Fprintln(out, line)
	}
	for _, r := range c.Results() {
		if !r.OK() {
			fmt.Fprintf(out, "FAILED #%d at %s after %s: %s (via %s)\n", r.Seq, r.Start.Format(time.TimeOnly+".000"),
				r.Latency.Round(time.Millisecond), r.Err, strings.Join(r.Via, " → "))
		}
	}
	if st.Failed > 0 {
		return fmt.Errorf("car %s: %d of %d requests failed", o.ID, st.Failed, st.Sent)
	}
	if st.OK == 0 {
		return fmt.Errorf("car %s: no request was answered", o.ID)
	}
	return nil
}
