// Package remote serves an embedded ledger over mutual TLS, so that several processes
// (one descheduler per cluster, say) share one ledger, and is the client of that server.
// A client is identified by its certificate, verified against the server's CA bundle: the
// verified leaf's first Organization is the MSP id it acts as, so a caller cannot choose
// its identity and the contract's access control holds as on Fabric. Which MSPs may do
// what is the contract's business (membership); the server trusts the CA bundle, and may
// be narrowed to a list of MSPs.
//
// Protocol: POST /v1/submit/{fn} and /v1/evaluate/{fn} with a JSON array of string
// arguments answer the result as JSON, or an error as {"error": "..."} with a status that
// matches its chaincode.Code; GET /v1/events?block=N&tx=ID streams events after that
// checkpoint as JSON lines. Each identity has a token bucket for its calls (429 with
// Retry-After beyond it) and a bound on its open event streams.
package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/ratelimit"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// Size limits of the protocol.
const (
	// maxRequestBytes bounds a request body: the largest argument plus room for the rest.
	maxRequestBytes = 2 * chaincode.MaxArgBytes
	// maxFunctionName bounds the {fn} path segment; the contract's names are far shorter.
	maxFunctionName = 64
	// maxTxIDBytes bounds the tx query parameter of the event stream.
	maxTxIDBytes = 256
	// maxAnswerBytes bounds an answer the client reads, maxEventBytes one event line.
	maxAnswerBytes = 64 << 20
	maxEventBytes  = 1 << 20
)

// Limits bound what one identity (MSP id) may ask of the server, so that a spamming
// member slows only itself.
type Limits struct {
	// PerSecond and Burst are each identity's token bucket for transactions, queries and
	// event-stream opens.
	PerSecond float64
	Burst     int
	// MaxStreams is how many event streams one identity may hold open at once.
	MaxStreams int
}

// DefaultLimits are generous for a cluster (a few calls per migration, a capacity report
// every half minute, resync queries) and stop a flood.
func DefaultLimits() Limits { return Limits{PerSecond: 50, Burst: 200, MaxStreams: 4} }

// Validate reports limits that would refuse everything or nothing.
func (l Limits) Validate() error {
	if !(l.PerSecond > 0) || l.Burst < 1 || l.MaxStreams < 1 {
		return fmt.Errorf("rate limits must be positive: %v per second, burst %d, %d streams", l.PerSecond, l.Burst, l.MaxStreams)
	}
	return nil
}

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	Limits Limits
	// AllowedMSPs, when not empty, are the only MSP ids served; others get 403 even with a
	// certificate the bundle verifies.
	AllowedMSPs []string
	// Registerer receives the server's metrics; nil for none.
	Registerer prometheus.Registerer
	// Now is the limiter's clock; default time.Now.
	Now func() time.Time
}

// NewHandler serves store to clients whose certificate the TLS layer verified. The server
// must verify client certificates (mtls.Identity.ServerConfig); requests without a
// verified one are refused with 401.
func NewHandler(store *embedded.Store, o HandlerOptions) (http.Handler, error) {
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &handler{store: store, opts: o, calls: ratelimit.New(rate.Limit(o.Limits.PerSecond), o.Limits.Burst), streams: map[string]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_ledger_server_refused_total",
			Help: "Ledger server requests refused before reaching the ledger, by reason (unauthenticated, forbidden, ratelimited, streams, invalid).",
		}, []string{"reason"})}
	if o.Registerer != nil {
		if err := o.Registerer.Register(h.refused); err != nil {
			return nil, fmt.Errorf("registering ledger server metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/submit/{fn}", h.transaction(true))
	mux.HandleFunc("POST /v1/evaluate/{fn}", h.transaction(false))
	mux.HandleFunc("GET /v1/events", h.events)
	return mux, nil
}

type handler struct {
	store   *embedded.Store
	opts    HandlerOptions
	calls   *ratelimit.Set
	refused *prometheus.CounterVec

	mu      sync.Mutex
	streams map[string]int // open event streams per MSP id
}

// caller authenticates and rate-limits a request; it answers the refusal itself and
// returns false then.
func (h *handler) caller(w http.ResponseWriter, r *http.Request) (string, bool) {
	peer, ok := mtls.PeerOfRequest(r)
	if !ok {
		h.refuse(w, "unauthenticated", http.StatusUnauthorized, errors.New("unauthorized: a client certificate verified by the ledger's CA bundle, with the MSP id as its Organization, is required"))
		return "", false
	}
	if len(h.opts.AllowedMSPs) > 0 && !slices.Contains(h.opts.AllowedMSPs, peer.MSPID) {
		h.refuse(w, "forbidden", http.StatusForbidden, fmt.Errorf("forbidden: MSP %q is not served by this ledger", peer.MSPID))
		return "", false
	}
	if ok, wait := h.calls.Allow(peer.MSPID, h.opts.Now()); !ok {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		h.refuse(w, "ratelimited", http.StatusTooManyRequests, fmt.Errorf("rate limited: MSP %q calls more often than %v/s (burst %d)", peer.MSPID, h.opts.Limits.PerSecond, h.opts.Limits.Burst))
		return "", false
	}
	return peer.MSPID, true
}

func (h *handler) refuse(w http.ResponseWriter, reason string, status int, err error) {
	h.refused.WithLabelValues(reason).Inc()
	writeError(w, status, err)
}

func (h *handler) transaction(submit bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msp, ok := h.caller(w, r)
		if !ok {
			return
		}
		fn := r.PathValue("fn")
		if len(fn) > maxFunctionName {
			h.refuse(w, "invalid", http.StatusBadRequest, &chaincode.Error{Code: chaincode.CodeInvalid, Msg: fmt.Sprintf("function name of %d bytes exceeds %d", len(fn), maxFunctionName)})
			return
		}
		if r.ContentLength > maxRequestBytes {
			h.refuse(w, "invalid", http.StatusRequestEntityTooLarge, &chaincode.Error{Code: chaincode.CodeInvalid, Msg: fmt.Sprintf("request body of %d bytes exceeds %d", r.ContentLength, maxRequestBytes)})
			return
		}
		var args []string
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
		if err := dec.Decode(&args); err != nil {
			status := http.StatusBadRequest
			if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
				status = http.StatusRequestEntityTooLarge
			}
			h.refuse(w, "invalid", status, &chaincode.Error{Code: chaincode.CodeInvalid, Msg: fmt.Sprintf("decoding arguments: %v", err)})
			return
		}
		if dec.More() {
			h.refuse(w, "invalid", http.StatusBadRequest, &chaincode.Error{Code: chaincode.CodeInvalid, Msg: "decoding arguments: trailing data after the array"})
			return
		}
		var out []byte
		var err error
		if submit {
			out, err = h.store.Submit(r.Context(), msp, fn, args...)
		} else {
			out, err = h.store.Evaluate(r.Context(), msp, fn, args...)
		}
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	}
}

func statusOf(err error) int {
	switch chaincode.CodeOf(err) {
	case chaincode.CodeInvalid:
		return http.StatusBadRequest
	case chaincode.CodeForbidden:
		return http.StatusForbidden
	case chaincode.CodeNotFound:
		return http.StatusNotFound
	case chaincode.CodeConflict, chaincode.CodeNotYet:
		return http.StatusConflict
	}
	if errors.Is(err, embedded.ErrClosed) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	msp, ok := h.caller(w, r)
	if !ok {
		return
	}
	if !h.openStream(msp) {
		h.refuse(w, "streams", http.StatusTooManyRequests, fmt.Errorf("rate limited: MSP %q already holds %d event streams", msp, h.opts.Limits.MaxStreams))
		return
	}
	defer h.closeStream(msp)
	var after ledger.Checkpoint
	if b := r.URL.Query().Get("block"); b != "" {
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("invalid: block %q is not a number", b))
			return
		}
		after.Block = n
	}
	if after.TxID = r.URL.Query().Get("tx"); len(after.TxID) > maxTxIDBytes {
		writeError(w, http.StatusBadRequest, fmt.Errorf("invalid: tx id of %d bytes exceeds %d", len(after.TxID), maxTxIDBytes))
		return
	}
	events, err := h.store.Events(r.Context(), after)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for ev := range events {
		if err := enc.Encode(ev); err != nil {
			klog.V(2).InfoS("Event stream client went away", "err", err)
			return
		}
		// Flush when nothing else is waiting: a burst travels together, a lone event at once.
		if flusher != nil && len(events) == 0 {
			flusher.Flush()
		}
	}
}

func (h *handler) openStream(msp string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[msp] >= h.opts.Limits.MaxStreams {
		return false
	}
	h.streams[msp]++
	return true
}

func (h *handler) closeStream(msp string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[msp]--; h.streams[msp] <= 0 {
		delete(h.streams, msp)
	}
}

// Client is a ledger.Transactor talking to a server of NewHandler.
type Client struct {
	base *url.URL
	http *http.Client
	// RetryInterval is how long the event stream waits before its first attempt to
	// reconnect; each failed attempt doubles the wait up to MaxRetryInterval, and a
	// successful one starts again from RetryInterval (ledger.RetryBackoff).
	RetryInterval, MaxRetryInterval time.Duration
	// OnRetry, when set, hears of each wait before an attempt to reconnect, and why (tests).
	OnRetry func(wait time.Duration, err error)
	// MaxRateLimitWait is the longest Retry-After the client waits out before retrying a
	// rate-limited call; beyond it (or after maxRateLimitRetries) the 429 is the answer.
	MaxRateLimitWait time.Duration
}

// maxRateLimitRetries bounds how often one call is retried after 429.
const maxRateLimitRetries = 3

// Dial returns a Ledger served at baseURL (https://…), acting as id's identity.
func Dial(baseURL string, id *mtls.Identity) (ledger.Ledger, error) {
	if id == nil {
		return nil, errors.New("the remote ledger needs the cluster identity (--tls-cert-file, --tls-key-file, --tls-ca-file)")
	}
	// No overall timeout: the event stream is one long response.
	c, err := NewClient(baseURL, id.HTTPClient(0))
	if err != nil {
		return nil, err
	}
	return ledger.FromTransactor(c), nil
}

// NewClient returns the transport-level client over httpClient, which must present a
// client certificate; most callers want Dial.
func NewClient(baseURL string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("ledger URL %q: want https://host:port (the remote ledger speaks mutual TLS only)", baseURL)
	}
	if httpClient == nil {
		return nil, errors.New("the remote ledger client needs an HTTP client presenting a certificate")
	}
	return &Client{base: u, http: httpClient, RetryInterval: ledger.DefaultRetryInterval, MaxRetryInterval: ledger.DefaultMaxRetryInterval,
		MaxRateLimitWait: 5 * time.Second}, nil
}

func (c *Client) Submit(ctx context.Context, fn string, args ...string) ([]byte, error) {
	return c.do(ctx, "submit", fn, args)
}

func (c *Client) Evaluate(ctx context.Context, fn string, args ...string) ([]byte, error) {
	return c.do(ctx, "evaluate", fn, args)
}

func (c *Client) do(ctx context.Context, kind, fn string, args []string) ([]byte, error) {
	if args == nil {
		args = []string{}
	}
	body, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encoding arguments: %w", err)
	}
	u := c.base.JoinPath("v1", kind, fn)
	for attempt := 0; ; attempt++ {
		data, status, retryAfter, err := c.post(ctx, u.String(), body)
		if err != nil {
			return nil, err
		}
		// Wait out a short rate limit instead of failing a step the caller would retry
		// anyway; a long one is the answer.
		if status == http.StatusTooManyRequests && attempt < maxRateLimitRetries && retryAfter <= c.MaxRateLimitWait {
			select {
			case <-time.After(retryAfter):
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting out the ledger's rate limit: %w", ctx.Err())
			}
		}
		return answer(data, status)
	}
}

func (c *Client) post(ctx context.Context, u string, body []byte) (data []byte, status int, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("calling ledger %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("reading ledger answer: %w", err)
	}
	if len(data) > maxAnswerBytes {
		return nil, 0, 0, fmt.Errorf("reading ledger answer: larger than %d bytes", maxAnswerBytes)
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		retryAfter = time.Duration(secs) * time.Second
	}
	return data, resp.StatusCode, retryAfter, nil
}

// answer is a call's result, or its error with the server's message.
func answer(data []byte, status int) ([]byte, error) {
	if status == http.StatusOK {
		return data, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(data))
	}
	// The message starts with the contract's code, so chaincode.CodeOf still finds it.
	return nil, fmt.Errorf("ledger answered %d: %s", status, e.Error)
}

// Events follows the server's stream, reconnecting from the last event received, so that a
// dropped connection or a restarted server neither loses nor repeats an event; attempts
// back off (RetryInterval, doubling, up to MaxRetryInterval). The first connection is made
// before Events returns, so that a wrong URL or certificate is an error here rather than
// silence.
func (c *Client) Events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	body, err := c.openStream(ctx, after)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx)
	out := make(chan ledger.Event, 64)
	go func() {
		defer close(out)
		for {
			var err error
			after, err = c.readStream(ctx, body, after, out)
			body.Close()
			// A fresh backoff for each outage: the last reconnection succeeded.
			backoff := ledger.RetryBackoff(c.RetryInterval, c.MaxRetryInterval)
			for ctx.Err() == nil {
				wait := backoff.Step()
				logger.V(2).Info("Ledger event stream ended; reconnecting", "err", err, "block", after.Block, "retryIn", wait)
				if c.OnRetry != nil {
					c.OnRetry(wait, err)
				}
				if !sleep(ctx, wait) {
					break
				}
				if body, err = c.openStream(ctx, after); err == nil {
					break
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return out, nil
}

// sleep waits d, or less when ctx ends first (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Client) openStream(ctx context.Context, after ledger.Checkpoint) (io.ReadCloser, error) {
	u := c.base.JoinPath("v1", "events")
	q := url.Values{"block": {strconv.FormatUint(after.Block, 10)}}
	if after.TxID != "" {
		q.Set("tx", after.TxID)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building event request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("opening event stream from %s: %w", c.base.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("opening event stream: ledger answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return resp.Body, nil
}

// readStream delivers the stream's events and returns the checkpoint of the last one sent.
func (c *Client) readStream(ctx context.Context, body io.Reader, after ledger.Checkpoint, out chan<- ledger.Event) (ledger.Checkpoint, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxEventBytes)
	for sc.Scan() {
		var ev ledger.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return after, fmt.Errorf("decoding event: %w", err)
		}
		select {
		case out <- ev:
			after = ev.Checkpoint
		case <-ctx.Done():
			return after, ctx.Err()
		}
	}
	if err := sc.Err(); err != nil {
		return after, err
	}
	return after, io.ErrUnexpectedEOF
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}
