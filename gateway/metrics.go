package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_gateway_requests_total",
			Help: "Service requests by outcome (proxied, redirected, unavailable, not_found, unauthorized, bad_request, " +
				"upstream_error, timeout, too_large) and the cluster the route named (\"\" when none).",
		}, []string{"outcome", "cluster"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "edgemigrate_gateway_proxy_duration_seconds",
			Help: "Time from a proxied request's arrival to the end of its answer, failures included.",
			// From a sub-millisecond answer on the LAN to the 30 s default timeout.
			Buckets: prometheus.ExponentialBuckets(250e-6, 2.5, 14),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgemigrate_gateway_in_flight_requests",
			Help: "Service requests the gateway is handling now.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	return m, nil
}
