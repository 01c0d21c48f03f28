package descheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
)

type metrics struct {
	migrations *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	bids       *prometheus.CounterVec
	triggers   *prometheus.CounterVec
	ledger     *prometheus.HistogramVec
	leader     prometheus.Gauge
	ledgerUp   prometheus.Gauge
	clock      clock.PassiveClock
	// One copy per service (rehome.go, parked.go).
	rehomed, superseded, parkedScaleUps prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, clk clock.PassiveClock) (*metrics, error) {
	m := &metrics{
		clock: clk,
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgemigrate_migrations_total",
			Help: "Migrations this cluster started, by reason and result (Completed, Failed, Aborted)."}, []string{"reason", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "edgemigrate_migration_duration_seconds",
			Help:    "Time from a migration's trigger to each phase it reached (proposed, decided, ready, completed), at the source.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}, []string{"phase"}),
		bids: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgemigrate_bids_total",
			Help: "Bids this cluster submitted on other clusters' migrations."}, []string{"can_host", "covers_client"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgemigrate_migration_triggers_total",
			Help: "Migrations started by a trigger, by reason."}, []string{"reason"}),
		ledger: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "edgemigrate_ledger_request_duration_seconds",
			Help:    "Ledger calls by operation and result (ok, or the contract's refusal code, or error).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"operation", "result"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgemigrate_descheduler_leader",
			Help: "1 while this replica holds the descheduler Lease."}),
		ledgerUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgemigrate_ledger_up",
			Help: "1 while the ledger answers this controller's calls (a refusal is an answer), 0 while they fail to reach it."}),
		rehomed: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgemigrate_rehomed_total",
			Help: "Services this cluster took back from a dead destination (ledger RehomeService)."}),
		superseded: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgemigrate_superseded_total",
			Help: "Copies this cluster hosted as a destination and removed because the ledger homes the service elsewhere."}),
		parkedScaleUps: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgemigrate_parked_scaleups_total",
			Help: "Parked Deployments (moved away by a migration) scaled up by someone else and scaled back to zero."}),
	}
	m.ledgerUp.Set(1) // until a call fails
	for _, c := range []prometheus.Collector{m.migrations, m.duration, m.bids, m.triggers, m.ledger, m.leader, m.ledgerUp, m.rehomed, m.superseded, m.parkedScaleUps} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) ledgerCall(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		if code := chaincode.CodeOf(err); code != "" {
			result = string(code)
		}
	}
	m.ledger.WithLabelValues(op, result).Observe(m.clock.Since(start).Seconds())
}

// phase records the time from trigger to a phase, once per process and phase change.
func (m *metrics) phase(mig *v1alpha1.Migration, phase string) {
	if mig.Status.StartTime != nil && mig.Status.Role == v1alpha1.RoleSource {
		m.duration.WithLabelValues(phase).Observe(m.clock.Since(mig.Status.StartTime.Time).Seconds())
	}
}

func (m *metrics) finished(mig *v1alpha1.Migration, phase v1alpha1.MigrationPhase) {
	m.migrations.WithLabelValues(string(mig.Spec.Reason), string(phase)).Inc()
}
