// Package gateway is the edge gateway a descheduler serves on its public endpoint, beside
// the client locator: a car's requests to its inference service are proxied to a Ready pod
// of it when it runs in this cluster, or redirected to the cluster that runs it.
//
//	ANY /v1/clients/{id}/service[/…], Authorization: Bearer <token>
//	  runs here, Ready  → proxied to http://<pod IP>:<port>/… with the query kept;
//	                      the answer carries X-Edgemigrate-Cluster and X-Edgemigrate-Pod
//	  runs elsewhere    → 307 to <that cluster's endpoint>/v1/clients/{id}/service/…
//	  known, not Ready  → 503 {"error": reason} with Retry-After
//	  not known         → 404
//
// Mount it next to the locator with Register(engine), sharing the locator's Auth.
package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/locator"
)

// Defaults of Options.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxBodyBytes   = 8 << 20
	// DefaultRetryAfter is what a 503 tells the client to wait: a copy becomes Ready or a
	// route switches within about a second.
	DefaultRetryAfter = time.Second
	realm             = "edgemigrate-gateway"
	// routeName is the path segment of the gateway under /v1/clients/{id}/.
	routeName                = "service"
	servicePath, serviceRest = "/v1/clients/:id/" + routeName, "/v1/clients/:id/" + routeName + "/*rest"
)

// Methods the gateway proxies or redirects. CONNECT and TRACE are not an inference
// service's business.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions}

// RouteKind says what the gateway does with a client's request.
type RouteKind int

const (
	// NotKnown: this cluster neither runs the client's service nor knows where it runs.
	NotKnown RouteKind = iota
	// Local: the service runs here; Backends are its Ready pods.
	Local
	// Remote: the service runs in Cluster, whose gateway is at Endpoint.
	Remote
	// Unavailable: the service is this cluster's but cannot answer now; Reason says why.
	Unavailable
)

func (k RouteKind) String() string {
	return [...]string{"not known", "local", "remote", "unavailable"}[k]
}

// Backend is one Ready pod of a service.
type Backend struct {
	// Pod is namespace/name, for the answer's X-Edgemigrate-Pod.
	Pod string
	// Address is the pod's IP and service port, host:port.
	Address string
}

// Route is where a client's requests go now.
type Route struct {
	Kind RouteKind
	// Cluster is the id of the cluster that serves the client: this one for Local and
	// Unavailable, the other one for Remote.
	Cluster string
	// Backends are the Ready pods, for Local; never empty then.
	Backends []Backend
	// Endpoint is the base URL of the other cluster's public endpoint, for Remote.
	Endpoint string
	// Reason says why the service cannot answer, for Unavailable.
	Reason string
}

// Router says where a client's requests go. It is called on every request, so it must be
// an in-memory lookup.
type Router interface {
	Route(clientID string) Route
}

// RouterFunc adapts a function to Router.
type RouterFunc func(clientID string) Route

// Route implements Router.
func (f RouterFunc) Route(clientID string) Route { return f(clientID) }

// Options configure a Gateway. Auth, Router and ClusterID are required.
type Options struct {
	// Auth checks the clients' bearer tokens: the locator's, so both count failures alike.
	Auth   *locator.Auth
	Router Router
	// ClusterID names this cluster in metrics and in the answer's X-Edgemigrate-Cluster.
	ClusterID string
	// RequestTimeout bounds a proxied request from its start to the end of the answer's
	// body. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a proxied request's body (413 beyond). Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RetryAfter is the Retry-After of a 503. Default DefaultRetryAfter.
	RetryAfter time.Duration
	// Transport reaches the pods; default a transport with a short dial timeout.
	Transport http.RoundTripper
	// Registerer receives the metrics; default a private registry (metrics not exported).
	Registerer prometheus.Registerer
}

// Gateway serves the edge gateway.
type Gateway struct {
	opts     Options
	metrics  *metrics
	inFlight inFlight
	// next spreads requests over a service's Ready pods, round robin.
	next atomic.Uint64
}

// New checks o, fills in its defaults and returns a Gateway.
func New(o Options) (*Gateway, error) {
	if o.Auth == nil || o.Router == nil || o.ClusterID == "" {
		return nil, errors.New("gateway needs client authentication, a router and this cluster's id")
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.RequestTimeout < 0 || o.MaxBodyBytes < 0 || o.RetryAfter < 0 {
		return nil, fmt.Errorf("gateway request timeout, body limit and retry-after must be positive, got %s, %d, %s",
			o.RequestTimeout, o.MaxBodyBytes, o.RetryAfter)
	}
	if o.Transport == nil {
		o.Transport = newTransport()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	// Every outcome of this cluster exists from the start, so rates graph before the first.
	for _, oc := range outcomes {
		m.requests.WithLabelValues(string(oc), o.ClusterID)
	}
	return &Gateway{opts: o, metrics: m, inFlight: inFlight{byClient: map[string]int{}}}, nil
}

// Register adds the gateway's routes to e, the engine the locator is registered on.
func (g *Gateway) Register(e *gin.Engine) {
	for _, method := range methods {
		e.Handle(method, servicePath, g.serve)
		e.Handle(method, serviceRest, g.serve)
	}
}

// Handler returns the gateway's routes alone, on a new engine.
func (g *Gateway) Handler() http.Handler {
	e := gin.New()
	e.Use(gin.Recovery())
	g.Register(e)
	return e
}

// InFlight is how many requests of the client the gateway is handling now, from before
// their route is decided until their answer is sent. The descheduler waits for it to be
// zero before it removes a copy.
func (g *Gateway) InFlight(clientID string) int { return g.inFlight.get(clientID) }

// outcome is a request's result, for metrics and logs.
type outcome string

const (
	outcomeProxied       outcome = "proxied"
	outcomeRedirected    outcome = "redirected"
	outcomeUnavailable   outcome = "unavailable"
	outcomeNotFound      outcome = "not_found"
	outcomeUnauthorized  outcome = "unauthorized"
	outcomeBadRequest    outcome = "bad_request"
	outcomeUpstreamError outcome = "upstream_error"
	outcomeTimeout       outcome = "timeout"
	outcomeTooLarge      outcome = "too_large"
)

var outcomes = []outcome{outcomeProxied, outcomeRedirected, outcomeUnavailable, outcomeNotFound, outcomeUnauthorized,
	outcomeBadRequest, outcomeUpstreamError, outcomeTimeout, outcomeTooLarge}

func (g *Gateway) serve(c *gin.Context) {
	id := c.Param("id")
	logger := klog.FromContext(c.Request.Context()).WithValues("client", id)
	cluster := ""
	refuse := func(o outcome, code int, msg string) {
		logger.V(2).Info("Refused a service request", "status", code, "outcome", o, "reason", msg)
		g.metrics.requests.WithLabelValues(string(o), cluster).Inc()
		c.AbortWithStatusJSON(code, gin.H{"error": msg})
	}
	if err := locator.ValidateClientID(id); err != nil {
		logger = klog.FromContext(c.Request.Context())
		refuse(outcomeBadRequest, http.StatusBadRequest, err.Error())
		return
	}
	ip := c.RemoteIP() // not ClientIP: X-Forwarded-For is the spoofer's to choose
	if r := g.opts.Auth.Check(ip, id, c.GetHeader("Authorization")); r != nil {
		logger.V(2).Info("Refused a service request", "remoteIP", ip, "status", r.Status, "outcome", outcomeUnauthorized, "reason", r.Reason)
		g.metrics.requests.WithLabelValues(string(outcomeUnauthorized), cluster).Inc()
		r.Respond(c, realm)
		return
	}
	// Count the request before asking the router, and until its answer is sent. The source's
	// descheduler switches the route (its Migration turns Ready) and only then waits for the
	// count to drop to zero: a request that asked the router just before the switch, and so
	// goes to the local copy, is already counted when the drain check runs. Counting after
	// the router answered would leave a window where it is neither counted nor redirected.
	g.inFlight.add(id, 1)
	g.metrics.inFlight.Inc()
	defer func() {
		g.inFlight.add(id, -1)
		g.metrics.inFlight.Dec()
	}()
	route := g.opts.Router.Route(id)
	cluster = route.Cluster
	if route.Kind == Local && len(route.Backends) == 0 {
		route = Route{Kind: Unavailable, Cluster: route.Cluster, Reason: "no Ready pod of the service"}
	}
	switch route.Kind {
	case Local:
		g.proxy(c, logger, route)
	case Remote:
		target, err := redirectTarget(route.Endpoint, id, c.Request.URL, c.Param("rest"))
		if err != nil {
			// The router's endpoint, not the client's request, is at fault.
			refuse(outcomeUnavailable, http.StatusServiceUnavailable, err.Error())
			return
		}
		logger.V(4).Info("Redirected a service request", "cluster", route.Cluster, "target", target)
		g.metrics.requests.WithLabelValues(string(outcomeRedirected), cluster).Inc()
		c.Redirect(http.StatusTemporaryRedirect, target)
	case Unavailable:
		locator.SetRetryAfter(c, g.opts.RetryAfter)
		reason := route.Reason
		if reason == "" {
			reason = "the service is not available here now"
		}
		refuse(outcomeUnavailable, http.StatusServiceUnavailable, reason)
	default:
		refuse(outcomeNotFound, http.StatusNotFound, fmt.Sprintf("client %q is not served here or known", id))
	}
}

// redirectTarget is the other cluster's gateway URL of the request: the path after
// /service as the client escaped it, and its query, on the endpoint's scheme and host.
func redirectTarget(endpoint, id string, u *url.URL, decodedRest string) (string, error) {
	base, err := url.Parse(endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("the serving cluster's endpoint %q is not an http(s) URL", endpoint)
	}
	target := strings.TrimSuffix(base.Scheme+"://"+base.Host+base.EscapedPath(), "/") + "/v1/clients/" + id + "/" + routeName +
		locator.EscapedRest(u.EscapedPath(), routeName, decodedRest)
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return target, nil
}

// inFlight counts requests per client; zero counts are dropped, so memory follows the
// clients being served, not every id ever seen.
type inFlight struct {
	mu       sync.Mutex
	byClient map[string]int
}

func (f *inFlight) add(id string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.byClient[id] + n; v > 0 {
		f.byClient[id] = v
	} else {
		delete(f.byClient, id)
	}
}

func (f *inFlight) get(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byClient[id]
}
