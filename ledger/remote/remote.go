// Package remote serves an embedded ledger over HTTP, so that several processes on one
// machine (one descheduler per local cluster, say) share one ledger, and is the client of
// that server. Each client authenticates with a bearer token that the server maps to an
// MSP id: the caller cannot choose its identity, so access control holds as on Fabric.
//
// Protocol: POST /v1/submit/{fn} and /v1/evaluate/{fn} with a JSON array of string
// arguments answer the result as JSON, or an error as {"error": "..."} with a status that
// matches its chaincode.Code; GET /v1/events?block=N&tx=ID streams events after that
// checkpoint as JSON lines.
package remote

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
)

// maxRequestBytes bounds a request body: the largest argument plus room for the rest.
const maxRequestBytes = 2 * chaincode.MaxArgBytes

// Identity binds a bearer token to the MSP id it acts as.
type Identity struct {
	Token string `json:"token"`
	MSPID string `json:"mspId"`
}

// LoadIdentities reads a JSON list of identities, [{"token": "...", "mspId": "Org1MSP"}],
// from a file that only the server should be able to read.
func LoadIdentities(path string) ([]Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading identities: %w", err)
	}
	var ids []Identity
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ids); err != nil {
		return nil, fmt.Errorf("decoding identities %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if id.Token == "" || id.MSPID == "" {
			return nil, fmt.Errorf("identity %d in %s needs a token and an MSP id", i, path)
		}
		if seen[id.Token] {
			return nil, fmt.Errorf("identity %d in %s reuses a token", i, path)
		}
		seen[id.Token] = true
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s lists no identities", path)
	}
	return ids, nil
}

// NewHandler serves store to clients that present one of the identities' tokens.
func NewHandler(store *embedded.Store, identities []Identity) http.Handler {
	h := &handler{store: store}
	for _, id := range identities {
		h.ids = append(h.ids, hashedIdentity{sha256.Sum256([]byte(id.Token)), id.MSPID})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/submit/{fn}", h.transaction(true))
	mux.HandleFunc("POST /v1/evaluate/{fn}", h.transaction(false))
	mux.HandleFunc("GET /v1/events", h.events)
	return mux
}

type hashedIdentity struct {
	token [sha256.Size]byte
	msp   string
}

type handler struct {
	store *embedded.Store
	ids   []hashedIdentity
}

// caller returns the MSP of the request's token, comparing every identity in constant time.
func (h *handler) caller(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(token))
	msp := ""
	for _, id := range h.ids {
		if subtle.ConstantTimeCompare(sum[:], id.token[:]) == 1 {
			msp = id.msp
		}
	}
	return msp, msp != ""
}

func (h *handler) transaction(submit bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msp, ok := h.caller(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, errors.New("unauthorized: missing or unknown bearer token"))
			return
		}
		var args []string
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
		if err := dec.Decode(&args); err != nil {
			writeError(w, http.StatusBadRequest, &chaincode.Error{Code: chaincode.CodeInvalid, Msg: fmt.Sprintf("decoding arguments: %v", err)})
			return
		}
		fn := r.PathValue("fn")
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
	if _, ok := h.caller(r); !ok {
		writeError(w, http.StatusUnauthorized, errors.New("unauthorized: missing or unknown bearer token"))
		return
	}
	var after ledger.Checkpoint
	if b := r.URL.Query().Get("block"); b != "" {
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("invalid: block %q is not a number", b))
			return
		}
		after.Block = n
	}
	after.TxID = r.URL.Query().Get("tx")
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

// Client is a ledger.Transactor talking to a server of NewHandler.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// RetryInterval is how long the event stream waits before reconnecting.
	RetryInterval time.Duration
}

// Dial returns a Ledger served at baseURL (for example http://127.0.0.1:7080), acting as
// the identity of token. httpClient may be nil for a client of its own.
func Dial(baseURL, token string, httpClient *http.Client) (ledger.Ledger, error) {
	c, err := NewClient(baseURL, token, httpClient)
	if err != nil {
		return nil, err
	}
	return ledger.FromTransactor(c), nil
}

// NewClient returns the transport-level client; most callers want Dial.
func NewClient(baseURL, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ledger URL %q is not an http(s) URL", baseURL)
	}
	if httpClient == nil {
		// Not http.DefaultClient: Close releases this client's connections only.
		httpClient = &http.Client{}
	}
	return &Client{base: u, token: token, http: httpClient, RetryInterval: time.Second}, nil
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling ledger %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading ledger answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		// The message starts with the contract's code, so chaincode.CodeOf still finds it.
		return nil, fmt.Errorf("ledger answered %d: %s", resp.StatusCode, e.Error)
	}
	return data, nil
}

// Events follows the server's stream, reconnecting from the last event received, so that a
// dropped connection neither loses nor repeats an event. The first connection is made before
// Events returns, so that a wrong URL or token is an error here rather than silence.
func (c *Client) Events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	body, err := c.openStream(ctx, after)
	if err != nil {
		return nil, err
	}
	out := make(chan ledger.Event, 64)
	go func() {
		defer close(out)
		for {
			var err error
			after, err = c.readStream(ctx, body, after, out)
			body.Close()
			for ctx.Err() == nil {
				klog.V(2).InfoS("Ledger event stream ended; reconnecting", "err", err, "block", after.Block)
				select {
				case <-time.After(c.RetryInterval):
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
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
	req.Header.Set("Authorization", "Bearer "+c.token)
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
	sc.Buffer(make([]byte, 64<<10), 1<<20)
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
