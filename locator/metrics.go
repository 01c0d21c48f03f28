package locator

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Route labels of the metrics.
const (
	routeLocation = "location"
	routeEndpoint = "endpoint"
	routeRedirect = "redirect"
)

// Update results of edgemigrate_locator_location_updates_total.
const (
	resultAccepted     = "accepted"
	resultUnauthorized = "unauthorized"
	resultInvalid      = "invalid"
	resultRateLimited  = "ratelimited"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	updates  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_locator_requests_total",
			Help: "Locator API requests by route and HTTP status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edgemigrate_locator_request_duration_seconds",
			Help: "Time to answer a locator API request, by route.",
			// Redirects should take tens of microseconds; the target is a p99 under 5 ms.
			Buckets: prometheus.ExponentialBuckets(10e-6, 2.5, 12),
		}, []string{"route"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_locator_location_updates_total",
			Help: "Client location reports by result: accepted, unauthorized, invalid, ratelimited.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.updates} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering locator metrics: %w", err)
		}
	}
	// Every result exists from the start, so a rate of refusals can be graphed before the first.
	for _, r := range []string{resultAccepted, resultUnauthorized, resultInvalid, resultRateLimited} {
		m.updates.WithLabelValues(r)
	}
	return m, nil
}

// updateResult maps the status of a location update to its result label; "" for none.
func updateResult(code int) string {
	switch code {
	case 200, 204:
		return resultAccepted
	case 401:
		return resultUnauthorized
	case 400, 413:
		return resultInvalid
	case 429:
		return resultRateLimited
	}
	return ""
}

func codeLabel(code int) string { return strconv.Itoa(code) }
