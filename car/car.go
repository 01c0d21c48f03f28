// Package car is a connected car as the edge sees it: it drives a route, reports its
// position to the clusters with its bearer token, and sends its inference requests at a
// steady rate through the edge gateway of the cluster covering it, following the
// gateways' 307s itself and recording each request's outcome, latency and serving
// cluster. The demo, the real-node tests, the bench and `edgemigrate car` share it.
package car

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/locator"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// Defaults for Options.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxHops     = 3
	DefaultMaxInFlight = 64
	DefaultWindow      = 10 * time.Second
	DefaultMaxResults  = 200000
	// BodyCap is how much of an answer a Result keeps.
	BodyCap = 8 << 10
	// readLimit bounds how much of an answer is read at all (the rest is dropped with the
	// connection): a car must not be made to download a flood.
	readLimit = 4 << 20
)

// Failure reasons of a Result (its Reason), as Stats counts them.
const (
	// ReasonStatus: an answer whose status is not 2xx; the Reason is "http <code>".
	reasonStatusPrefix = "http "
	// ReasonTransport: no answer (connection refused or cut, timeout).
	ReasonTransport = "transport"
	// ReasonForeignRedirect: a 307 to a host that is none of the clusters' gateways, or
	// to another path than this client's service: refused, the token is not sent there.
	ReasonForeignRedirect = "foreign redirect"
	// ReasonTooManyRedirects: more than Options.MaxHops 307s in a row.
	ReasonTooManyRedirects = "too many redirects"
	// ReasonOverloaded: not sent, Options.MaxInFlight requests were still waiting.
	ReasonOverloaded = "overloaded"
	// ReasonBadRequest: the request could not be built (a bad Path, no cluster).
	ReasonBadRequest = "bad request"
)

// Cluster is an edge cluster as a car knows it: where it stands, how far it covers and
// its public endpoint, where both the location API and the gateway answer.
type Cluster struct {
	ID string
	// Gateway is the public endpoint's base URL, e.g. http://10.0.0.1:8443.
	Gateway string
	Site    geo.Point
	RadiusM float64
}

// Request is one request to the car's service.
type Request struct {
	// Method defaults to POST with a body, GET without.
	Method string
	// Path is the service's path, e.g. "/infer", with an optional query.
	Path        string
	ContentType string
	Body        []byte
}

// Options configure a Car. ID, Token and Clusters are required.
type Options struct {
	ID, Token string
	Clusters  []Cluster
	// Every is the steady interval at which Run sends requests.
	Every time.Duration
	// NewRequest returns the request numbered seq (from 0); Run needs it.
	NewRequest func(seq int) Request
	// HTTPClient defaults to one with a DefaultTimeout and no automatic redirects (the car
	// follows 307s itself, to the clusters' gateways only). A given client's own redirect
	// policy is replaced: the car must see every 307.
	HTTPClient *http.Client
	// MaxHops bounds the 307s followed for one request; default DefaultMaxHops.
	MaxHops int
	// MaxInFlight bounds Run's concurrent requests; a tick finding that many waiting
	// records an overloaded failure instead of sending. Default DefaultMaxInFlight.
	MaxInFlight int
	// Window is the span of Stats' rolling window; default DefaultWindow.
	Window time.Duration
	// MaxResults caps the Results kept (the oldest go first; the counters keep counting);
	// default DefaultMaxResults.
	MaxResults int
	// Clock defaults to the real one.
	Clock clock.WithTicker
}

// Result is one request's outcome.
type Result struct {
	Seq     int
	Start   time.Time
	Latency time.Duration
	// Status is the HTTP status of the last answer, 0 when there was none.
	Status int
	// Cluster and Pod answered, from the answer's api.HeaderCluster and api.HeaderPod.
	Cluster, Pod string
	// Via are the ids of the clusters whose gateways were asked, in order.
	Via []string
	// Reason is empty for a success (2xx), else why it failed (one of the Reason
	// constants, or "http <status>"); Err says it in full.
	Reason string
	Err    string
	// Body is the start of the last answer, at most BodyCap bytes.
	Body []byte
}

// OK reports whether the request succeeded: a 2xx answer.
func (r Result) OK() bool { return r.Reason == "" }

// Car is one connected car. Its methods may be called concurrently.
type Car struct {
	opts   Options
	http   *http.Client
	prefix string // /v1/clients/<id>/service

	mu       sync.Mutex
	position geo.Point
	placed   bool
	serving  string // id of the cluster that last served a request
	results  []Result
	counts   counters
	inFlight int
}

// New checks o and returns a car parked nowhere yet (MoveTo places it).
func New(o Options) (*Car, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	c := &Car{opts: o, prefix: "/v1/clients/" + url.PathEscape(o.ID) + "/service"}
	hc := *o.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	c.counts = newCounters()
	return c, nil
}

func (o *Options) defaults() error {
	if o.ID == "" || o.Token == "" {
		return errors.New("car: an id and its token are required")
	}
	if len(o.Clusters) == 0 {
		return fmt.Errorf("car %s: at least one cluster is required", o.ID)
	}
	seen := map[string]bool{}
	for i, cl := range o.Clusters {
		if cl.ID == "" || seen[cl.ID] {
			return fmt.Errorf("car %s: cluster %d: id %q is empty or repeated", o.ID, i, cl.ID)
		}
		seen[cl.ID] = true
		u, err := url.Parse(cl.Gateway)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("car %s: cluster %s: gateway %q is not an http(s) URL", o.ID, cl.ID, cl.Gateway)
		}
		// The car's token and position travel in every request.
		if err := mtls.RequireTLS(cl.Gateway); err != nil {
			return fmt.Errorf("car %s: cluster %s: %w", o.ID, cl.ID, err)
		}
		o.Clusters[i].Gateway = strings.TrimSuffix(cl.Gateway, "/")
		if err := (geo.Coverage{Center: cl.Site, RadiusM: cl.RadiusM}).Validate(); err != nil {
			return fmt.Errorf("car %s: cluster %s: %w", o.ID, cl.ID, err)
		}
	}
	if o.Every < 0 {
		return fmt.Errorf("car %s: request interval %s is negative", o.ID, o.Every)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if o.MaxHops <= 0 {
		o.MaxHops = DefaultMaxHops
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxResults <= 0 {
		o.MaxResults = DefaultMaxResults
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return nil
}

// Position is where the car is now; ok is false before the first MoveTo.
func (c *Car) Position() (p geo.Point, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.position, c.placed
}

// Serving is the id of the cluster that last served a request, "" before the first.
func (c *Car) Serving() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serving
}

// SetPosition puts the car at p without reporting it, for a caller that reports
// positions itself (the demo tells every cluster, as road-side units would).
func (c *Car) SetPosition(p geo.Point) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.position, c.placed = p, true
}

// MoveTo puts the car at p and reports it (PUT /v1/clients/{id}/location) to the cluster
// covering p and to the one that last served it, as a car tells the road-side units it
// passes and its current server. Both are tried; the error joins their failures.
func (c *Car) MoveTo(ctx context.Context, p geo.Point) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("moving car %s: %w", c.opts.ID, err)
	}
	c.mu.Lock()
	c.position, c.placed = p, true
	targets := []*Cluster{c.coveringLocked()}
	if last := c.clusterByID(c.serving); last != nil && last != targets[0] {
		targets = append(targets, last)
	}
	c.mu.Unlock()
	var errs []error
	for _, cl := range targets {
		if err := locator.NewClient(cl.Gateway, c.http).ReportLocation(ctx, c.opts.ID, c.opts.Token, p); err != nil {
			errs = append(errs, fmt.Errorf("car %s reporting %s to %s: %w", c.opts.ID, p, cl.ID, err))
		}
	}
	klog.FromContext(ctx).V(4).Info("Car moved", "car", c.opts.ID, "position", p.String(), "reportedTo", len(targets))
	return errors.Join(errs...)
}

// Covering is the cluster the car sends its requests to now: the nearest whose coverage
// holds the car; else the last serving one; else the nearest.
func (c *Car) Covering() Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.coveringLocked()
}

func (c *Car) coveringLocked() *Cluster {
	return covering(c.opts.Clusters, c.position, c.clusterByID(c.serving))
}

// covering picks the nearest cluster covering p, else last when set, else the nearest.
func covering(clusters []Cluster, p geo.Point, last *Cluster) *Cluster {
	var nearest, inside *Cluster
	best, bestInside := 0.0, 0.0
	for i := range clusters {
		cl := &clusters[i]
		d := geo.Distance(cl.Site, p)
		if nearest == nil || d < best {
			nearest, best = cl, d
		}
		if d <= cl.RadiusM && (inside == nil || d < bestInside) {
			inside, bestInside = cl, d
		}
	}
	switch {
	case inside != nil:
		return inside
	case last != nil:
		return last
	}
	return nearest
}

func (c *Car) clusterByID(id string) *Cluster {
	for i := range c.opts.Clusters {
		if c.opts.Clusters[i].ID == id {
			return &c.opts.Clusters[i]
		}
	}
	return nil
}

// clusterByURL is the cluster whose gateway is at u's scheme and host, with u's path
// under its base; nil for any other place.
func (c *Car) clusterByURL(u *url.URL) *Cluster {
	for i := range c.opts.Clusters {
		g, err := url.Parse(c.opts.Clusters[i].Gateway)
		if err == nil && strings.EqualFold(g.Scheme, u.Scheme) && strings.EqualFold(g.Host, u.Host) &&
			strings.HasPrefix(u.Path, g.Path+c.prefix) {
			return &c.opts.Clusters[i]
		}
	}
	return nil
}

// Do sends r now through the gateway of the covering cluster and records its Result.
// It follows up to MaxHops 307s to the clusters' gateways, re-sending the body, and on a
// 404 from a gateway that does not know the client (no api.HeaderCluster on it) asks the
// cluster that last served once more.
func (c *Car) Do(ctx context.Context, r Request) Result {
	c.mu.Lock()
	seq := c.counts.sent
	c.counts.sent++
	c.mu.Unlock()
	return c.do(ctx, seq, r)
}

func (c *Car) do(ctx context.Context, seq int, r Request) Result {
	res := c.send(ctx, seq, r)
	c.record(ctx, res)
	return res
}

// send performs the request; it records nothing.
func (c *Car) send(ctx context.Context, seq int, r Request) Result {
	start := c.opts.Clock.Now()
	res := Result{Seq: seq, Start: start}
	fail := func(reason, format string, args ...any) Result {
		res.Reason, res.Err = reason, fmt.Sprintf(format, args...)
		res.Latency = c.opts.Clock.Since(start)
		return res
	}
	if !strings.HasPrefix(r.Path, "/") {
		return fail(ReasonBadRequest, "request path %q does not start with /", r.Path)
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
		if r.Body != nil {
			method = http.MethodPost
		}
	}
	c.mu.Lock()
	cl := c.coveringLocked()
	last := c.clusterByID(c.serving)
	c.mu.Unlock()
	target, err := url.Parse(cl.Gateway + c.prefix + r.Path)
	if err != nil {
		return fail(ReasonBadRequest, "request path %q: %v", r.Path, err)
	}
	fellBack := false
	for hops := 0; ; {
		res.Via = append(res.Via, cl.ID)
		resp, err := c.roundTrip(ctx, method, target, r)
		if err != nil {
			return fail(ReasonTransport, "%s via %s: %v", method, cl.ID, err)
		}
		res.Status = resp.StatusCode
		res.Cluster, res.Pod = resp.Header.Get(api.HeaderCluster), resp.Header.Get(api.HeaderPod)
		body, rerr := readCapped(resp)
		res.Body = body
		switch {
		case rerr != nil:
			return fail(ReasonTransport, "reading the answer of %s: %v", cl.ID, rerr)
		case resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect:
			loc, err := target.Parse(resp.Header.Get("Location"))
			if err != nil {
				return fail(ReasonForeignRedirect, "%s redirected to an unreadable location %q: %v", cl.ID, resp.Header.Get("Location"), err)
			}
			next := c.clusterByURL(loc)
			if next == nil {
				return fail(ReasonForeignRedirect, "%s redirected to %s, which is not this car's service at any cluster's gateway: refused", cl.ID, loc.Redacted())
			}
			if hops++; hops > c.opts.MaxHops {
				return fail(ReasonTooManyRedirects, "more than %d redirects (via %s)", c.opts.MaxHops, strings.Join(res.Via, " → "))
			}
			cl, target = next, loc
			continue
		case resp.StatusCode == http.StatusNotFound && res.Cluster == "" && !fellBack && last != nil && last != cl:
			// The gateway does not know the client (not its service's own 404): the
			// cluster that served last still does, or redirects to who does now.
			fellBack = true
			if target, err = url.Parse(last.Gateway + c.prefix + r.Path); err != nil {
				return fail(ReasonBadRequest, "request path %q: %v", r.Path, err)
			}
			cl = last
			continue
		}
		res.Latency = c.opts.Clock.Since(start)
		if resp.StatusCode/100 != 2 {
			res.Reason = reasonStatusPrefix + fmt.Sprint(resp.StatusCode)
			res.Err = fmt.Sprintf("%s answered %d %s: %s", cl.ID, resp.StatusCode, http.StatusText(resp.StatusCode), errorMessage(body))
			return res
		}
		if res.Cluster == "" {
			res.Cluster = cl.ID
		}
		return res
	}
}

func (c *Car) roundTrip(ctx context.Context, method string, u *url.URL, r Request) (*http.Response, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	return c.http.Do(req)
}

// readCapped reads the answer up to readLimit and closes it, returning at most BodyCap.
func readCapped(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err := io.CopyN(&buf, resp.Body, BodyCap)
	if err == io.EOF {
		return buf.Bytes(), nil
	}
	if err != nil {
		return buf.Bytes(), err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, readLimit))
	return buf.Bytes(), err
}

// errorMessage is a gateway's {"error": ...} message, or the start of the body.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// record adds res to the results and counters, and moves the serving cluster.
func (c *Car) record(ctx context.Context, res Result) {
	logger := klog.FromContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts.add(res)
	c.results = append(c.results, res)
	if over := len(c.results) - c.opts.MaxResults; over > 0 {
		c.results = append(c.results[:0:0], c.results[over:]...)
	}
	if res.OK() && len(res.Via) > 0 {
		c.serving = res.Via[len(res.Via)-1]
	}
	if !res.OK() {
		logger.V(1).Info("Car request failed", "car", c.opts.ID, "seq", res.Seq, "reason", res.Reason, "err", res.Err, "via", res.Via)
	} else {
		logger.V(5).Info("Car request served", "car", c.opts.ID, "seq", res.Seq, "cluster", res.Cluster, "pod", res.Pod, "latency", res.Latency)
	}
}

// Results returns a copy of the kept results, oldest first.
func (c *Car) Results() []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Result(nil), c.results...)
}

// Recent returns a copy of the last n results, oldest first.
func (c *Car) Recent(n int) []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > len(c.results) {
		n = len(c.results)
	}
	return append([]Result(nil), c.results[len(c.results)-n:]...)
}

// Run sends NewRequest(seq) at every tick of Every until ctx ends, each request in its
// own goroutine, so that a slow answer never delays the next one; at most MaxInFlight
// wait at once. It returns when ctx has ended and every request sent has its Result:
// requests already sent are not cut when ctx ends (the HTTP client's timeout bounds them).
func (c *Car) Run(ctx context.Context) error {
	if c.opts.NewRequest == nil || c.opts.Every <= 0 {
		return fmt.Errorf("car %s: Run needs Options.NewRequest and a positive Options.Every", c.opts.ID)
	}
	logger := klog.FromContext(ctx).WithValues("car", c.opts.ID)
	logger.V(2).Info("Car sending requests", "every", c.opts.Every)
	reqCtx := context.WithoutCancel(klog.NewContext(ctx, logger))
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := c.opts.Clock.NewTicker(c.opts.Every)
	defer tick.Stop()
	for {
		c.mu.Lock()
		seq := c.counts.sent
		c.counts.sent++
		full := c.inFlight >= c.opts.MaxInFlight
		if !full {
			c.inFlight++
		}
		c.mu.Unlock()
		if full {
			c.record(reqCtx, Result{Seq: seq, Start: c.opts.Clock.Now(), Reason: ReasonOverloaded,
				Err: fmt.Sprintf("not sent: %d requests were still waiting for their answers", c.opts.MaxInFlight)})
		} else {
			r := c.opts.NewRequest(seq)
			wg.Go(func() {
				defer func() {
					c.mu.Lock()
					c.inFlight--
					c.mu.Unlock()
				}()
				c.do(reqCtx, seq, r)
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
		}
	}
}
