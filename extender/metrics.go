package extender

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	latency    *prometheus.HistogramVec
	considered *prometheus.CounterVec
	rejected   prometheus.Counter
	binds      *prometheus.CounterVec
	assumed    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edgemigrate_extender_request_duration_seconds",
			Help: "Time to answer a kube-scheduler extender call, by verb.",
			// Filter and prioritize should take well under a millisecond; bind is an API call.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 12),
		}, []string{"verb"}),
		considered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_extender_nodes_considered_total",
			Help: "Nodes the scheduler asked the extender about, by verb.",
		}, []string{"verb"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgemigrate_extender_nodes_rejected_total",
			Help: "Nodes filter rejected for a pod.",
		}),
		binds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_extender_binds_total",
			Help: "Bind calls by result: bound, no_fit (refused: the node filled up since filter), error.",
		}, []string{"result"}),
		assumed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgemigrate_extender_assumed_pods",
			Help: "Pods bound by the extender whose binding the informer has not seen yet.",
		}),
	}
	reg.MustRegister(m.latency, m.considered, m.rejected, m.binds, m.assumed)
	return m
}
