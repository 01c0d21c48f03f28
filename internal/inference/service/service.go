// Package service is what both inference images share on top of internal/serve's engine:
// POST /infer runs the service's model on the request body; GET /readyz is ready once the
// model is loaded, GET /healthz is liveness; bad input is a 400 with {"error": ...}, a body
// over the limit a 413; every answer says which cluster, pod and node computed it.
package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/serve"
)

// Identity says where an answer was computed, from the pod's downward-API environment:
// POD_NAME, POD_NAMESPACE, NODE_NAME and api.EnvCluster.
type Identity struct {
	Cluster   string `json:"cluster"`
	Pod       string `json:"pod"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node"`
}

// IdentityFromEnv reads the identity the Deployment's downward API sets.
func IdentityFromEnv() Identity {
	return Identity{Cluster: os.Getenv(api.EnvCluster), Pod: os.Getenv("POD_NAME"),
		Namespace: os.Getenv("POD_NAMESPACE"), Node: os.Getenv("NODE_NAME")}
}

// DefaultMaxBody bounds a request's body: a 28×28 image in JSON is under 4 KiB and a
// 4096-sample telemetry window under 400 KiB.
const DefaultMaxBody = 1 << 20

// InferFunc answers one request's body; an error wrapped by BadInput is the caller's fault.
type InferFunc func(ctx context.Context, body []byte, id Identity) (any, error)

type badInput struct{ err error }

func (e badInput) Error() string { return e.err.Error() }
func (e badInput) Unwrap() error { return e.err }

// BadInput marks err as the request's fault: the answer is 400 with its message.
func BadInput(err error) error { return badInput{err} }

// IsBadInput reports whether err, or one it wraps, came from BadInput.
func IsBadInput(err error) bool { return errors.As(err, new(badInput)) }

// DecodeJSON decodes exactly one JSON value into v, rejecting unknown fields and trailing
// data; its errors are BadInput.
func DecodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadInput(fmt.Errorf("decoding the request: %w", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadInput(errors.New("decoding the request: data after the JSON value"))
	}
	return nil
}

// Service is one inference service.
type Service struct {
	// Name is the service's name in logs.
	Name     string
	Identity Identity
	// MaxBody bounds a request's body (default DefaultMaxBody); more is a 413.
	MaxBody int64
	model   atomic.Pointer[InferFunc]
}

// SetReady installs infer, the loaded model's, and makes /readyz answer 200.
func (s *Service) SetReady(infer InferFunc) { s.model.Store(&infer) }

var errNotLoaded = errors.New("model not loaded yet")

// Handler serves POST /infer beside internal/serve's /healthz, /readyz and /metrics.
func (s *Service) Handler() http.Handler {
	e := serve.NewEngine(serve.NewRegistry(), func() error {
		if s.model.Load() == nil {
			return errNotLoaded
		}
		return nil
	})
	e.POST("/infer", serve.LimitBody(s.maxBody()), s.infer)
	return e
}

func (s *Service) infer(c *gin.Context) {
	logger := klog.FromContext(c.Request.Context()).WithValues("service", s.Name, "remote", c.Request.RemoteAddr)
	start := time.Now()
	status, answer := s.answer(c.Request)
	c.JSON(status, answer)
	if status == http.StatusInternalServerError {
		logger.Error(nil, "Inference failed", "status", status, "answer", answer)
	} else {
		logger.V(2).Info("Inference", "status", status, "duration", time.Since(start))
	}
}

func (s *Service) answer(r *http.Request) (int, any) {
	infer := s.model.Load()
	if infer == nil {
		return http.StatusServiceUnavailable, ErrorAnswer{errNotLoaded.Error()}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if serve.IsTooLarge(err) {
			return http.StatusRequestEntityTooLarge, ErrorAnswer{fmt.Sprintf("request body exceeds the limit of %d bytes", s.maxBody())}
		}
		return http.StatusBadRequest, ErrorAnswer{"reading the request: " + err.Error()}
	}
	out, err := (*infer)(r.Context(), body, s.Identity)
	if err != nil {
		if IsBadInput(err) {
			return http.StatusBadRequest, ErrorAnswer{err.Error()}
		}
		return http.StatusInternalServerError, ErrorAnswer{err.Error()}
	}
	return http.StatusOK, out
}

func (s *Service) maxBody() int64 {
	if s.MaxBody <= 0 {
		return DefaultMaxBody
	}
	return s.MaxBody
}

// ErrorAnswer is the body of every error.
type ErrorAnswer struct {
	Error string `json:"error"`
}

// Run serves the service on addr until ctx ends (SIGTERM in the mains), then stops taking
// connections and lets the requests in flight finish (internal/serve's graceful shutdown).
func (s *Service) Run(ctx context.Context, addr string) error {
	klog.FromContext(ctx).Info("Serving", "service", s.Name, "address", addr, "identity", s.Identity)
	return serve.ListenAndServe(ctx, addr, s.Handler(), nil)
}
