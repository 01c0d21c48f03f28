// Package serve is the HTTP server both inference images share: POST /infer runs the
// service's model, GET /healthz is liveness, GET /readyz readiness (ready once the model is
// loaded); bad input is a 400 with {"error": ...}; on SIGTERM the server stops taking
// connections and finishes the requests in flight.
package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
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

// DefaultMaxBody bounds a request's body; a 28×28 image in JSON is under 4 KiB and a
// 4096-sample telemetry window under 400 KiB.
const DefaultMaxBody = 1 << 20

// InferFunc answers one request's body; an error wrapped by BadInput is the caller's fault.
type InferFunc func(ctx context.Context, body []byte, id Identity) (any, error)

type badInput struct{ err error }

func (e badInput) Error() string { return e.err.Error() }
func (e badInput) Unwrap() error { return e.err }

// BadInput marks err as the request's fault: the answer is 400 with its message.
func BadInput(err error) error { return badInput{err} }

// DecodeJSON decodes exactly one JSON value into v, rejecting unknown fields and trailing
// data, as a BadInput error.
func DecodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadInput(fmt.Errorf("decoding the request: %w", err))
	}
	if dec.More() {
		return BadInput(errors.New("decoding the request: data after the JSON value"))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadInput(errors.New("decoding the request: data after the JSON value"))
	}
	return nil
}

// Service is one inference service's handlers.
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

// Handler serves /infer, /healthz and /readyz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /infer", s.infer)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.model.Load() == nil {
			http.Error(w, "model not loaded yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

func (s *Service) infer(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context()).WithValues("service", s.Name, "remote", r.RemoteAddr)
	start := time.Now()
	status, answer := s.answer(r)
	WriteJSON(w, status, answer)
	if status >= http.StatusInternalServerError {
		logger.Error(nil, "Inference failed", "status", status, "answer", answer)
	} else {
		logger.V(2).Info("Inference", "status", status, "duration", time.Since(start))
	}
}

func (s *Service) answer(r *http.Request) (int, any) {
	infer := s.model.Load()
	if infer == nil {
		return http.StatusServiceUnavailable, errorAnswer("model not loaded yet")
	}
	limit := s.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
			return http.StatusRequestEntityTooLarge, errorAnswer(fmt.Sprintf("request body over %d bytes", limit))
		}
		return http.StatusBadRequest, errorAnswer("reading the request: " + err.Error())
	}
	out, err := (*infer)(r.Context(), body, s.Identity)
	if err != nil {
		if errors.As(err, new(badInput)) {
			return http.StatusBadRequest, errorAnswer(err.Error())
		}
		return http.StatusInternalServerError, errorAnswer(err.Error())
	}
	return http.StatusOK, out
}

// ErrorAnswer is the body of every error.
type ErrorAnswer struct {
	Error string `json:"error"`
}

func errorAnswer(msg string) ErrorAnswer { return ErrorAnswer{Error: msg} }

// WriteJSON writes v as the JSON answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DefaultDrain bounds how long a stopping server waits for requests in flight; the
// kubelet's default grace period is 30 s.
const DefaultDrain = 25 * time.Second

// Run listens on addr and serves h until ctx ends (SIGTERM in the mains), then drains.
func Run(ctx context.Context, addr string, h http.Handler, drain time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	klog.FromContext(ctx).Info("Serving", "address", ln.Addr().String())
	return Serve(ctx, ln, h, drain)
}

// Serve serves h on ln until ctx ends, then stops taking connections and waits, at most
// drain, for the requests in flight to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, drain time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	klog.FromContext(ctx).Info("Stopping: finishing the requests in flight", "timeout", drain)
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("draining the requests in flight: %w", err)
	}
	return nil
}
