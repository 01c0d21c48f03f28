package webhook

import (
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgemigrate/edgemigrate/internal/serve"
)

// Path is where the API server sends pod AdmissionReviews.
const Path = "/mutate-pods"

// maxReviewBytes bounds a request body: the API server refuses objects over 3 MiB, and a
// review carries the object once on CREATE (plus a little envelope).
const maxReviewBytes = 4 << 20

// Metrics are the webhook's Prometheus metrics.
type Metrics struct {
	admissions *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

// NewMetrics registers the webhook's metrics in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_webhook_admissions_total",
			Help: "Admission requests answered, by outcome: patched, unchanged, skipped, denied, failed-open, invalid.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edgemigrate_webhook_admission_duration_seconds",
			Help: "Time to answer an admission request, body read to response encoded, by outcome.",
			// From tens of microseconds (the usual answer) to the API server's 5 s timeout.
			Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 14),
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.admissions, m.duration)
	return m
}

func (m *Metrics) observe(outcome Outcome, start time.Time) {
	m.admissions.WithLabelValues(string(outcome)).Inc()
	m.duration.WithLabelValues(string(outcome)).Observe(time.Since(start).Seconds())
}

// Register adds the admission endpoint to e.
func (h *Handler) Register(e *gin.Engine, m *Metrics) {
	e.POST(Path, serve.LimitBody(maxReviewBytes), func(c *gin.Context) {
		start := time.Now()
		body, err := io.ReadAll(c.Request.Body)
		if err != nil {
			status := http.StatusBadRequest
			if serve.IsTooLarge(err) {
				status = http.StatusRequestEntityTooLarge
			}
			m.observe(OutcomeInvalid, start)
			c.AbortWithStatusJSON(status, gin.H{"error": "reading AdmissionReview: " + err.Error()})
			return
		}
		review, outcome, err := h.Review(c.Request.Context(), body)
		if err != nil {
			m.observe(outcome, start)
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, review)
		m.observe(outcome, start)
	})
}
