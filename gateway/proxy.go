package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/locator"
)

// dialTimeout bounds connecting to a pod: a Ready pod's IP answers at once on a LAN.
const dialTimeout = 5 * time.Second

func newTransport() *http.Transport {
	return &http.Transport{
		// Pods are reached directly, never through the environment's proxy.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// discardLog silences ReverseProxy's own log: the gateway logs each failure with its context.
var discardLog = log.New(io.Discard, "", 0)

// proxied is what one proxied request did, for its metrics and log line.
type proxied struct {
	outcome outcome
	status  int
	err     error
}

// limitedBody is the request body under the gateway's limit; it remembers a read past the
// limit, which the transport reports only as a broken request.
type limitedBody struct {
	io.ReadCloser
	tooLarge atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.tooLarge.Store(true)
	}
	return n, err
}

// proxy sends the request to one of the route's Ready pods and streams its answer back.
func (g *Gateway) proxy(c *gin.Context, logger klog.Logger, route Route) {
	start := time.Now()
	backend := route.Backends[g.next.Add(1)%uint64(len(route.Backends))]
	logger = logger.WithValues("pod", backend.Pod, "address", backend.Address)
	result := proxied{}
	ctx, cancel := context.WithTimeout(c.Request.Context(), g.opts.RequestTimeout)
	defer cancel()
	// timedOut: the gateway's timeout ended the request, not the client.
	timedOut := func() bool { return ctx.Err() != nil && c.Request.Context().Err() == nil }
	defer func() {
		// Once the answer has started, ReverseProxy ends a failed copy with ErrAbortHandler;
		// gin's recovery would swallow it and end the answer cleanly, so a cut body would look
		// whole. Close the connection instead, as net/http would.
		if rec := recover(); rec != nil {
			if rec != http.ErrAbortHandler {
				panic(rec)
			}
			result.outcome, result.err = outcomeUpstreamError, errors.New("the answer was cut while streaming")
			if timedOut() {
				result.outcome, result.err = outcomeTimeout, fmt.Errorf("the answer was cut by the %s timeout", g.opts.RequestTimeout)
			}
			abortConnection(c)
			c.Abort()
		}
		g.metrics.requests.WithLabelValues(string(result.outcome), route.Cluster).Inc()
		g.metrics.duration.Observe(time.Since(start).Seconds())
		if result.err != nil {
			logger.V(2).Info("Proxying a service request failed", "outcome", result.outcome, "status", result.status, "err", result.err)
		} else {
			logger.V(4).Info("Proxied a service request", "status", result.status, "duration", time.Since(start))
		}
	}()
	if c.Request.ContentLength > g.opts.MaxBodyBytes {
		result = proxied{outcome: outcomeTooLarge, status: http.StatusRequestEntityTooLarge,
			err: fmt.Errorf("body of %d bytes over the limit of %d", c.Request.ContentLength, g.opts.MaxBodyBytes)}
		c.AbortWithStatusJSON(result.status, gin.H{"error": fmt.Sprintf("request body of %d bytes exceeds the limit of %d", c.Request.ContentLength, g.opts.MaxBodyBytes)})
		return
	}
	var body *limitedBody
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		body = &limitedBody{ReadCloser: http.MaxBytesReader(c.Writer, c.Request.Body, g.opts.MaxBodyBytes)}
		c.Request.Body = body
	}
	rest := locator.EscapedRest(c.Request.URL.EscapedPath(), routeName, c.Param("rest"))
	path, err := url.PathUnescape(rest)
	if err != nil {
		rest, path = "", c.Param("rest")
	}
	if path == "" {
		path, rest = "/", ""
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", backend.Address
			pr.Out.URL.Path, pr.Out.URL.RawPath = path, rest
			pr.Out.Host = ""
			// The car's token is the gateway's business: the pod never sees it.
			pr.Out.Header.Del("Authorization")
			// Only the connection's address: what the car wrote in X-Forwarded-For is dropped.
			pr.SetXForwarded()
		},
		Transport: g.opts.Transport,
		// Flush every write: streamed answers (tokens, frames) reach the car as they come.
		FlushInterval: -1,
		ErrorLog:      discardLog,
		ModifyResponse: func(r *http.Response) error {
			r.Header.Set(api.HeaderCluster, g.opts.ClusterID)
			r.Header.Set(api.HeaderPod, backend.Pod)
			result = proxied{outcome: outcomeProxied, status: r.StatusCode}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			result = proxied{outcome: outcomeUpstreamError, status: http.StatusBadGateway, err: err}
			msg := fmt.Sprintf("the service's pod %s did not answer: %v", backend.Pod, err)
			switch {
			case body != nil && body.tooLarge.Load():
				result.outcome, result.status = outcomeTooLarge, http.StatusRequestEntityTooLarge
				msg = fmt.Sprintf("request body exceeds the limit of %d bytes", g.opts.MaxBodyBytes)
			case timedOut():
				result.outcome, result.status = outcomeTimeout, http.StatusGatewayTimeout
				msg = fmt.Sprintf("the service's pod %s did not answer within %s", backend.Pod, g.opts.RequestTimeout)
			}
			w.Header().Set(api.HeaderCluster, g.opts.ClusterID)
			c.AbortWithStatusJSON(result.status, gin.H{"error": msg})
		},
	}
	rp.ServeHTTP(c.Writer, c.Request.WithContext(ctx))
	if result.outcome == outcomeProxied && timedOut() {
		// Outside an http.Server, ReverseProxy returns from a cut copy without panicking.
		result.outcome, result.err = outcomeTimeout, ctx.Err()
	}
}

// abortConnection closes the client's connection under an answer already started, so the
// client sees it cut rather than complete.
func abortConnection(c *gin.Context) {
	w := http.ResponseWriter(c.Writer)
	if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
		w = u.Unwrap() // gin refuses to hijack once a body has been written
	}
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}
