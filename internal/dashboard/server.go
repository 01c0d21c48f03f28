// Package dashboard serves the live demo page: a map of the edge clusters' coverage and
// the cars they serve, each cluster's Jetson nodes and services, the ledger's events,
// a migration timeline and the demo's narration. The demo publishes whole State
// snapshots; browsers receive them over Server-Sent Events. Everything the page needs
// is embedded: the demo runs with nothing outside the machine reachable.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/internal/serve"
)

//go:embed static
var staticFiles embed.FS

// Defaults for Options.
const (
	DefaultAddress      = "127.0.0.1:8080"
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultHistoryLimit = 200
)

// Options configures a Server. Zero values take the defaults above.
type Options struct {
	// Address is where Run's caller should listen; the server itself is handed a listener.
	Address string
	// Heartbeat is how often an idle event stream gets a comment, so proxies and
	// browsers keep it open.
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a browser; a browser that stops reading for
	// longer is disconnected (EventSource reconnects it).
	WriteTimeout time.Duration
	// HistoryLimit caps the ledger events, migrations and log lines sent, keeping the newest.
	HistoryLimit int
}

func (o Options) withDefaults() Options {
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = DefaultHistoryLimit
	}
	return o
}

// Server holds the latest State and streams it to browsers.
type Server struct {
	opts Options

	mu     sync.Mutex
	latest []byte // JSON of the latest State
	subs   map[chan []byte]struct{}

	closing   chan struct{} // closed when Run's context ends: event streams return
	closeOnce sync.Once
}

// New returns a Server holding an empty State until the first Publish.
func New(o Options) *Server {
	s := &Server{
		opts:    o.withDefaults(),
		subs:    map[chan []byte]struct{}{},
		closing: make(chan struct{}),
	}
	s.latest = s.encode(State{})
	return s
}

// Address is the address the server is meant to listen on (Options.Address or its default).
func (s *Server) Address() string { return s.opts.Address }

// Publish makes st the latest State and pushes it to every connected browser. It never
// waits for a browser: one that has not taken the previous state yet gets this one
// instead, so slow browsers skip intermediate states.
func (s *Server) Publish(st State) {
	data := s.encode(st)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = data
	for ch := range s.subs {
		select {
		case ch <- data:
		default:
			// Replace the state the browser has not taken yet. Only Publish sends, under mu,
			// so the second send finds room.
			select {
			case <-ch:
			default:
			}
			ch <- data
		}
	}
}

// encode caps the histories and turns nil slices into empty ones, so the page never
// has to tell null from [].
func (s *Server) encode(st State) []byte {
	limit := s.opts.HistoryLimit
	st.Ledger = tail(st.Ledger, limit)
	st.Migrations = tail(st.Migrations, limit)
	st.Log = tail(st.Log, limit)
	if st.Clusters == nil {
		st.Clusters = []Cluster{}
	}
	if st.Cars == nil {
		st.Cars = []Car{}
	}
	if st.Requests == nil {
		st.Requests = []Requests{}
	}
	data, err := json.Marshal(st)
	if err != nil {
		// Only unsupported values (NaN coordinates) get here; keep showing the page.
		klog.ErrorS(err, "Encoding dashboard state")
		data, _ = json.Marshal(State{Time: st.Time, Clusters: []Cluster{}, Cars: []Car{}, Ledger: []LedgerEvent{},
			Migrations: []Migration{}, Requests: []Requests{}, Log: []string{fmt.Sprintf("dashboard: cannot encode state: %v", err)}})
	}
	return data
}

// tail returns the last n elements of xs, never nil.
func tail[T any](xs []T, n int) []T {
	if len(xs) > n {
		return xs[len(xs)-n:]
	}
	if xs == nil {
		return []T{}
	}
	return xs
}

// subscribe returns a channel that receives the current state now and each published
// one after, latest wins.
func (s *Server) subscribe() chan []byte {
	ch := make(chan []byte, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch <- s.latest
	s.subs[ch] = struct{}{}
	return ch
}

func (s *Server) unsubscribe(ch chan []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs, ch)
}

func (s *Server) state() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

// Handler returns the HTTP handler: the page at /, its files under /static/, the latest
// state at /api/state, the event stream at /api/events, and /healthz, /readyz, /metrics.
func (s *Server) Handler() http.Handler {
	e := serve.NewEngine(serve.NewRegistry(), func() error { return nil })
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(fmt.Sprintf("embedded static files: %v", err)) // the embed pattern guarantees the folder
	}
	page, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(fmt.Sprintf("embedded page: %v", err))
	}
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	e.GET("/", func(c *gin.Context) {
		// The page changes with each build of the demo: never cache it.
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", page)
	})
	e.GET("/static/*file", func(c *gin.Context) {
		if strings.HasSuffix(c.Param("file"), "/") {
			c.Status(http.StatusNotFound) // no directory listings
			return
		}
		c.Header("Cache-Control", "no-cache")
		files.ServeHTTP(c.Writer, c.Request)
	})
	e.GET("/api/state", func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusOK, "application/json; charset=utf-8", s.state())
	})
	e.GET("/api/events", s.events)
	return e
}

// events streams the state as Server-Sent Events: "event: state" at connect and after each
// Publish, a comment line every Heartbeat.
func (s *Server) events(c *gin.Context) {
	ctx := c.Request.Context()
	w := c.Writer
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ch := s.subscribe()
	defer s.unsubscribe(ch)
	klog.V(2).InfoS("Dashboard browser connected", "remote", c.Request.RemoteAddr)
	defer klog.V(2).InfoS("Dashboard browser disconnected", "remote", c.Request.RemoteAddr)

	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	// retry: how long EventSource waits before reconnecting, in ms.
	if err := s.write(rc, w, "retry: 2000\n\n"); err != nil {
		return
	}
	for {
		var msg string
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case data := <-ch:
			msg = "event: state\ndata: " + string(data) + "\n\n"
		case <-heartbeat.C:
			msg = ": heartbeat\n\n"
		}
		if err := s.write(rc, w, msg); err != nil {
			klog.V(2).InfoS("Dropping dashboard browser", "remote", c.Request.RemoteAddr, "err", err)
			return
		}
	}
}

func (s *Server) write(rc *http.ResponseController, w gin.ResponseWriter, msg string) error {
	// A browser that stopped reading must not hold this goroutine (and shutdown) forever.
	if err := rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)); err != nil {
		return fmt.Errorf("setting write deadline: %w", err)
	}
	if _, err := w.WriteString(msg); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flushing event: %w", err)
	}
	return nil
}

// ListenAndRun listens on Options.Address and calls Run.
func (s *Server) ListenAndRun(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("listening for the dashboard on %s: %w", s.opts.Address, err)
	}
	return s.Run(ctx, ln)
}

// Run serves the dashboard on ln until ctx ends, then ends the event streams and shuts
// down gracefully. It returns nil after a shutdown caused by ctx.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		// Event streams never go idle by themselves; end them so shutdown need not wait.
		s.closeOnce.Do(func() { close(s.closing) })
	}()
	klog.InfoS("Serving dashboard", "url", "http://"+ln.Addr().String())
	if err := serve.Serve(ctx, ln, s.Handler(), nil); err != nil {
		return fmt.Errorf("serving dashboard: %w", err)
	}
	return nil
}
