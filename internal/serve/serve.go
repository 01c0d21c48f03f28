// Package serve holds what every edgemigrate HTTP server shares: a gin engine with
// health, readiness and Prometheus endpoints, a request-body limit, panic recovery that
// answers 500 instead of dropping the connection, and serving until the context ends.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

func init() {
	// Debug mode prints every route at start-up and warns on each request.
	gin.SetMode(gin.ReleaseMode)
}

// ShutdownTimeout bounds how long in-flight requests may take once the context ends.
const ShutdownTimeout = 10 * time.Second

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Option configures NewEngine.
type Option func(*engineOptions)

type engineOptions struct{ live func() error }

// WithLiveness makes /healthz answer 503 with live's reason while it returns an error: the
// process answers but is stuck, and is better restarted.
func WithLiveness(live func() error) Option { return func(o *engineOptions) { o.live = live } }

// NewEngine returns a gin engine serving /healthz (the process answers, and the liveness
// check, if any, passes; otherwise 503 with its reason), /readyz (ready returns nil;
// otherwise 503 with its reason) and /metrics from reg.
func NewEngine(reg *prometheus.Registry, ready func() error, opts ...Option) *gin.Engine {
	var o engineOptions
	for _, opt := range opts {
		opt(&o)
	}
	e := gin.New()
	e.Use(gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, recovered any) {
		klog.ErrorS(fmt.Errorf("panic: %v", recovered), "Recovered from panic in HTTP handler", "path", c.FullPath())
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
	}))
	e.GET("/healthz", func(c *gin.Context) {
		if o.live != nil {
			if err := o.live(); err != nil {
				c.String(http.StatusServiceUnavailable, "not live: %v", err)
				return
			}
		}
		c.String(http.StatusOK, "ok")
	})
	e.GET("/readyz", func(c *gin.Context) {
		if err := ready(); err != nil {
			c.String(http.StatusServiceUnavailable, "not ready: %v", err)
			return
		}
		c.String(http.StatusOK, "ok")
	})
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	return e
}

// LimitBody refuses request bodies over limit bytes: reading past it fails, and handlers
// answer 413 through IsTooLarge.
func LimitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge,
				gin.H{"error": fmt.Sprintf("request body of %d bytes exceeds the limit of %d", c.Request.ContentLength, limit)})
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Next()
	}
}

// IsTooLarge reports whether err came from reading past LimitBody's limit.
func IsTooLarge(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}

// Serve serves handler on ln (over TLS when tlsConfig is set) until ctx ends, then shuts
// down gracefully. It returns nil after a shutdown caused by ctx.
func Serve(ctx context.Context, ln net.Listener, handler http.Handler, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	errCh := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errCh <- srv.ServeTLS(ln, "", "")
		} else {
			errCh <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errCh:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down server on %s: %w", ln.Addr(), err)
	}
	if err := <-errCh; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	return nil
}

// ListenAndServe listens on addr and calls Serve.
func ListenAndServe(ctx context.Context, addr string, handler http.Handler, tlsConfig *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return Serve(ctx, ln, handler, tlsConfig)
}
