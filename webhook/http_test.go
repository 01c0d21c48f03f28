package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/edgemigrate/edgemigrate/internal/serve"
)

// TestHTTP: the endpoint answers reviews, refuses what is not one with 400 and a JSON
// error, refuses oversized bodies with 413, and counts every outcome.
func TestHTTP(t *testing.T) {
	reg := serve.NewRegistry()
	m := NewMetrics(reg)
	engine := serve.NewEngine(reg, func() error { return nil })
	NewHandler(Config{ClusterID: testCluster, InstallNamespace: installNS}, newTestState()).Register(engine, m)

	post := func(body []byte) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		engine.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body)))
		return rec
	}

	rec := post(reviewFor(t, pod(enabledNS), admissionv1.Create))
	if rec.Code != http.StatusOK {
		t.Fatalf("review: %d %s", rec.Code, rec.Body)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatal(err)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Response == nil || !review.Response.Allowed || len(review.Response.Patch) == 0 {
		t.Errorf("answer %s", rec.Body)
	}

	rec = post([]byte(`{"kind":"Pod"}`))
	var answer struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); rec.Code != http.StatusBadRequest || err != nil || !strings.Contains(answer.Error, "want admission.k8s.io/v1 AdmissionReview") {
		t.Errorf("not a review: %d %s", rec.Code, rec.Body)
	}

	rec = post(bytes.Repeat([]byte(" "), maxReviewBytes+1))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %s", rec.Code, rec.Body)
	}

	rec = httptest.NewRecorder()
	engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range []string{
		`edgemigrate_webhook_admissions_total{outcome="patched"} 1`,
		`edgemigrate_webhook_admissions_total{outcome="invalid"} 1`, // the oversized body is refused before the handler
		`edgemigrate_webhook_admission_duration_seconds_count{outcome="patched"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
