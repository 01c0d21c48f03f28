// Package locator is the client locator API a descheduler serves: connected cars report
// their position to it, and ask it where their inference service runs now, or have their
// requests redirected there (BloSM's request migration).
//
//	PUT /v1/clients/{id}/location      {"lat":..,"lon":..}, Authorization: Bearer <token>  → 204
//	GET /v1/clients/{id}/endpoint      → {"client":..,"cluster":..,"endpoint":..} or 404
//	ANY /v1/clients/{id}/redirect[/…]  → 307 to <endpoint>/… with the query kept, or 404
//
// Mount it next to /healthz, /readyz and /metrics with Register(serve.NewEngine(...)).
package locator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/ratelimit"
	"github.com/edgemigrate/edgemigrate/internal/serve"
)

// Defaults of Options.
const (
	DefaultRatePerSecond           = 10
	DefaultBurst                   = 20
	DefaultMaxBodyBytes            = 4 << 10
	DefaultFailedAuthPerSecond     = 1
	DefaultFailedAuthBurst         = 10
	maxClientIDLength              = 63
	locationPath, endpointPath     = "/v1/clients/:id/location", "/v1/clients/:id/endpoint"
	redirectPath, redirectRestPath = "/v1/clients/:id/redirect", "/v1/clients/:id/redirect/*rest"
)

// Route is where a client's service runs now.
type Route struct {
	// Cluster is the id of the edge cluster that serves the client.
	Cluster string `json:"cluster"`
	// Endpoint is the base URL of the client's service there, e.g. http://10.0.0.7:9090.
	Endpoint string `json:"endpoint"`
}

// Resolver says where a client's service runs. It is called on every endpoint and redirect
// request, so it must be an in-memory lookup.
type Resolver interface {
	Resolve(clientID string) (Route, bool)
}

// Options configure a Locator. Resolver, and Tokens or Auth, are required.
type Options struct {
	Tokens Tokens
	// Auth checks the bearer tokens; when set it replaces Tokens and FailedAuth*, so the
	// locator shares its failed-authentication budget with whoever else uses it (the
	// gateway).
	Auth     *Auth
	Resolver Resolver
	// OnLocation is called, after the location is stored, for every accepted report. ctx is
	// the request's: it ends with the response, so hand the work off and return quickly.
	// Reports of one client may be handled concurrently: read Locations for the latest.
	OnLocation func(ctx context.Context, clientID string, p geo.Point)
	// RatePerSecond and Burst limit each client's location reports (token bucket).
	// Defaults: 10/s, burst 20.
	RatePerSecond float64
	Burst         int
	// FailedAuthPerSecond and FailedAuthBurst limit failed authentications per remote IP
	// and per claimed client id, without Auth; once either is exhausted, further failures
	// are answered 429. A valid token is never refused by them. Defaults: 1/s, burst 10.
	FailedAuthPerSecond float64
	FailedAuthBurst     int
	// MaxBodyBytes bounds a location report's body. Default 4 KiB.
	MaxBodyBytes int64
	// Registerer receives the metrics; default a private registry (metrics not exported).
	Registerer prometheus.Registerer
	// Now is the clock of rate limits and location times; default time.Now.
	Now func() time.Time
}

// Locator serves the client locator API.
type Locator struct {
	opts      Options
	locations *Locations
	perClient *ratelimit.Set
	auth      *Auth
	metrics   *metrics
}

// New checks o, fills in its defaults and returns a Locator.
func New(o Options) (*Locator, error) {
	if o.Tokens == nil && o.Auth == nil {
		return nil, errors.New("locator needs client tokens")
	}
	if o.Resolver == nil {
		return nil, errors.New("locator needs a resolver of client routes")
	}
	if o.OnLocation == nil {
		o.OnLocation = func(context.Context, string, geo.Point) {}
	}
	if o.RatePerSecond == 0 {
		o.RatePerSecond = DefaultRatePerSecond
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RatePerSecond < 0 || math.IsNaN(o.RatePerSecond) {
		return nil, fmt.Errorf("locator rate per second must be positive, got %v", o.RatePerSecond)
	}
	if o.Burst < 0 || o.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("locator burst and body limit must be positive, got burst %d, max body %d", o.Burst, o.MaxBodyBytes)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	auth := o.Auth
	if auth == nil {
		var err error
		if auth, err = NewAuth(AuthOptions{Tokens: o.Tokens, FailedPerSecond: o.FailedAuthPerSecond, FailedBurst: o.FailedAuthBurst, Now: o.Now}); err != nil {
			return nil, fmt.Errorf("locator: %w", err)
		}
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Locator{
		opts:      o,
		locations: newLocations(),
		perClient: ratelimit.New(rate.Limit(o.RatePerSecond), o.Burst),
		auth:      auth,
		metrics:   m,
	}, nil
}

// Locations is the latest accepted location of each client.
func (l *Locator) Locations() *Locations { return l.locations }

// Register adds the locator's routes to e, typically the engine of serve.NewEngine.
func (l *Locator) Register(e *gin.Engine) {
	e.PUT(locationPath, l.observe(routeLocation), serve.LimitBody(l.opts.MaxBodyBytes), l.putLocation)
	e.GET(endpointPath, l.observe(routeEndpoint), l.getEndpoint)
	// 307 keeps the method and body, so inference POSTs can be redirected too.
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		e.Handle(method, redirectPath, l.observe(routeRedirect), l.redirect)
		e.Handle(method, redirectRestPath, l.observe(routeRedirect), l.redirect)
	}
}

// Handler returns the locator's routes alone, on a new engine.
func (l *Locator) Handler() http.Handler {
	e := gin.New()
	e.Use(gin.Recovery())
	l.Register(e)
	return e
}

func (l *Locator) observe(route string) gin.HandlerFunc {
	duration := l.metrics.duration.WithLabelValues(route)
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		duration.Observe(time.Since(start).Seconds())
		code := c.Writer.Status()
		l.metrics.requests.WithLabelValues(route, codeLabel(code)).Inc()
		if route == routeLocation {
			if r := updateResult(code); r != "" {
				l.metrics.updates.WithLabelValues(r).Inc()
			}
		}
	}
}

func (l *Locator) putLocation(c *gin.Context) {
	id := c.Param("id")
	ip := c.RemoteIP() // not ClientIP: X-Forwarded-For is the spoofer's to choose
	logger := klog.FromContext(c.Request.Context())
	refuse := func(code int, reason, message string) {
		logID := id
		if len(logID) > maxClientIDLength {
			logID = logID[:maxClientIDLength] + "..."
		}
		logger.V(2).Info("Refused client location", "client", logID, "remoteIP", ip, "status", code, "reason", reason)
		c.AbortWithStatusJSON(code, gin.H{"error": message})
	}
	if err := ValidateClientID(id); err != nil {
		refuse(http.StatusBadRequest, err.Error(), err.Error())
		return
	}
	if r := l.auth.Check(ip, id, c.GetHeader("Authorization")); r != nil {
		logger.V(2).Info("Refused client location", "client", id, "remoteIP", ip, "status", r.Status, "reason", r.Reason)
		r.Respond(c, "edgemigrate-locator")
		return
	}
	now := l.opts.Now()
	if ok, wait := l.perClient.Allow(id, now); !ok {
		SetRetryAfter(c, wait)
		refuse(http.StatusTooManyRequests, "client rate limit", fmt.Sprintf(
			"client %q reports its location more often than %g/s (burst %d); retry later", id, l.opts.RatePerSecond, l.opts.Burst))
		return
	}
	p, err := decodeLocation(c.Request.Body)
	if serve.IsTooLarge(err) {
		refuse(http.StatusRequestEntityTooLarge, "body too large",
			fmt.Sprintf("location body exceeds %d bytes", l.opts.MaxBodyBytes))
		return
	}
	if err != nil {
		refuse(http.StatusBadRequest, err.Error(), err.Error())
		return
	}
	l.locations.set(id, Location{Point: p, Time: now})
	logger.V(4).Info("Accepted client location", "client", id, "lat", p.Lat, "lon", p.Lon)
	l.opts.OnLocation(c.Request.Context(), id, p)
	c.Status(http.StatusNoContent)
}

type endpointResponse struct {
	Client string `json:"client"`
	Route
}

func (l *Locator) getEndpoint(c *gin.Context) {
	id := c.Param("id")
	route, ok := l.resolve(c, id)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, endpointResponse{Client: id, Route: route})
}

func (l *Locator) redirect(c *gin.Context) {
	id := c.Param("id")
	route, ok := l.resolve(c, id)
	if !ok {
		return
	}
	target := strings.TrimSuffix(route.Endpoint, "/") + EscapedRest(c.Request.URL.EscapedPath(), "redirect", c.Param("rest"))
	if q := c.Request.URL.RawQuery; q != "" {
		target += "?" + q
	}
	c.Redirect(http.StatusTemporaryRedirect, target)
}

func (l *Locator) resolve(c *gin.Context, id string) (Route, bool) {
	if err := ValidateClientID(id); err != nil {
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return Route{}, false
	}
	route, ok := l.opts.Resolver.Resolve(id)
	if !ok || route.Endpoint == "" {
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("client %q is not served here or known", id)})
		return Route{}, false
	}
	return route, true
}
