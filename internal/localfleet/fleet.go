// Package localfleet starts a fleet of real local edge clusters on 127.0.0.1 with every
// edgemigrate part running: one shared ledger server, and in each cluster the scheduler
// extender behind edgemigrate-scheduler, the default scheduler, the admission webhook, the
// Migration CRD, the client-token Secret and (optionally) the descheduler, all as separate
// processes of the edgemigrate binary. The end-to-end tests of the migration controller and
// the demo use it.
package localfleet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/remote"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/mtls"
)

const (
	// SystemNamespace is where edgemigrate's own objects live in every cluster.
	SystemNamespace = api.SystemNamespace
	// ClientTokensSecret holds, in SystemNamespace, one bearer token per client id.
	ClientTokensSecret = api.ClientTokensSecret
	// ObserverMSPID is the ledger identity of tests and dashboards: it may read everything
	// and owns no cluster. It is also the ledger's admin MSP, which admits the edges.
	ObserverMSPID = "ObserverMSP"

	logTailLines = 40
	// stopGrace is how long an edgemigrate process may take to exit after SIGTERM.
	stopGrace = 10 * time.Second
)

// Site is where an edge cluster stands and how far its radio reaches.
type Site struct {
	// ID is the cluster id on the ledger (a DNS label), e.g. edge-a.
	ID       string
	Lat, Lon float64
	// RadiusM is the coverage radius in metres.
	RadiusM float64
}

// Options configure a fleet. Binary is required; everything else has a default.
type Options struct {
	// Clusters is the number of edge clusters; default len(Sites), else 2.
	Clusters int
	// Sites of the clusters; default DefaultSites(Clusters).
	Sites []Site
	// Binary is the edgemigrate binary (BuildBinary builds one).
	Binary string
	// BinDir holds the Kubernetes binaries; default localcluster.FindBinDir().
	BinDir string
	// Dir is the parent of the fleet's working directory; default the temporary directory.
	Dir string
	// KeepDir keeps the working directory after Stop (it is always kept when Start fails).
	KeepDir bool
	// Nodes returns cluster i's fake Jetson nodes; default three AGX Xavier boards.
	Nodes func(i int) []*corev1.Node
	// ClientTokens (client id → bearer token) go into every cluster's client-token Secret;
	// default one client, car-1, with a random token.
	ClientTokens map[string]string
	// NoDescheduler leaves the descheduler off; Edge.StartDescheduler starts it later.
	NoDescheduler bool
	// LedgerArgs, when set, gives cluster i's descheduler its ledger flags (e.g. a Fabric
	// network's); by default every cluster uses the fleet's ledger server.
	LedgerArgs func(i int) []string
	// MSPIDs, when set, is cluster i's MSP on the ledger, the Organization of its identity
	// certificate (default MSPID(id)): with LedgerArgs, the organisation another ledger
	// knows it by, so that its peers' checks of who it is hold.
	MSPIDs func(i int) string
	// DeschedulerArgs are appended to the descheduler's flags, e.g. --offload-after=1s.
	DeschedulerArgs []string
	// Log receives one line per step, for a human watching; may be nil.
	Log io.Writer
	// ReadyTimeout bounds each wait for a component; default 60s.
	ReadyTimeout time.Duration
	// RealNodes gives every cluster that many real nodes beside Nodes' fake ones (see
	// localcluster.Options.RealNodes: root, containerd and the images of `make images`,
	// found in BinDir/images or $EDGEMIGRATE_IMAGES).
	RealNodes int
	// DeschedulerReplicas is the number of descheduler processes per edge; default 1. With
	// more, each listens on a loopback port of its own and the edge's public endpoint
	// (LocatorURL) is a TCP front that forwards each connection to the ready replica, as a
	// Service with a readiness probe does.
	DeschedulerReplicas int
	// Supervise restarts an edge's process (see Edge.ProcessNames) that exits on its own or
	// fails its liveness probe (/healthz) three times in a row, as a kubelet would; one
	// killed or stopped by a test stays down until started again.
	Supervise bool
	// LedgerDeadAfter is how long a cluster may stay silent before the ledger lets another
	// mark it dead (LedgerConfig.DeadAfterSeconds); zero keeps the ledger's default.
	LedgerDeadAfter time.Duration
}

func (o *Options) defaults() error {
	if o.Binary == "" {
		return errors.New("localfleet: Options.Binary (the edgemigrate binary) is required; BuildBinary builds one")
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return fmt.Errorf("localfleet: edgemigrate binary: %w", err)
	}
	if o.BinDir == "" {
		dir, err := localcluster.FindBinDir()
		if err != nil {
			return err
		}
		o.BinDir = dir
	}
	switch {
	case o.Clusters == 0 && len(o.Sites) > 0:
		o.Clusters = len(o.Sites)
	case o.Clusters == 0:
		o.Clusters = 2
	}
	if len(o.Sites) == 0 {
		o.Sites = DefaultSites(o.Clusters)
	}
	if len(o.Sites) != o.Clusters {
		return fmt.Errorf("localfleet: %d sites for %d clusters", len(o.Sites), o.Clusters)
	}
	seen := map[string]bool{}
	for _, s := range o.Sites {
		if s.ID == "" || seen[s.ID] {
			return fmt.Errorf("localfleet: site id %q is empty or repeated", s.ID)
		}
		seen[s.ID] = true
	}
	if o.Nodes == nil {
		o.Nodes = DefaultNodes
	}
	if o.ClientTokens == nil {
		o.ClientTokens = map[string]string{"car-1": rand.Text()}
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	switch {
	case o.DeschedulerReplicas == 0:
		o.DeschedulerReplicas = 1
	case o.DeschedulerReplicas < 0:
		return fmt.Errorf("localfleet: %d descheduler replicas", o.DeschedulerReplicas)
	}
	if o.LedgerDeadAfter < 0 || o.LedgerDeadAfter%time.Second != 0 {
		return fmt.Errorf("localfleet: LedgerDeadAfter %s: want whole seconds, zero for the ledger's default", o.LedgerDeadAfter)
	}
	return nil
}

// DefaultNodes is three AGX Xavier boards, named after the cluster index.
func DefaultNodes(i int) []*corev1.Node {
	var nodes []*corev1.Node
	for j := range 3 {
		nodes = append(nodes, localcluster.JetsonNode(fmt.Sprintf("xavier-%d-%d", i, j), localcluster.AGXXavier, localcluster.NodeOptions{}))
	}
	return nodes
}

// Fleet is a running fleet.
type Fleet struct {
	// Dir is the working directory: ledger files, tokens, logs/ and one directory per cluster.
	Dir string
	// LedgerURL is the shared ledger server (mutual TLS).
	LedgerURL string
	// CA issued every identity of the fleet; CAFile is its certificate, the bundle every
	// part trusts (cars included: the public endpoints serve HTTPS).
	CA     *mtls.CA
	CAFile string
	// ObserverIdentity is the identity of ObserverMSPID, for tests and dashboards.
	ObserverIdentity mtls.Files
	// ClientTokens are the client tokens in every cluster's Secret.
	ClientTokens map[string]string
	Edges        []*Edge

	opts           Options
	ledgerIdentity mtls.Files
	stopOnce       sync.Once

	mu           sync.Mutex
	ledger       *localcluster.Process // nil while it does not run
	endedLedgers []*localcluster.Process
}

// Start starts the ledger, then the clusters in parallel, then edgemigrate in each, and
// returns when everything answers. On failure it stops what it started, keeps the working
// directory and names it in the error.
func Start(ctx context.Context, o Options) (_ *Fleet, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	parent := o.Dir
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "edgemigrate-fleet-")
	if err != nil {
		return nil, fmt.Errorf("creating fleet directory: %w", err)
	}
	f := &Fleet{Dir: dir, ClientTokens: o.ClientTokens, opts: o}
	defer func() {
		if err != nil {
			f.stop()
			err = fmt.Errorf("starting fleet (files kept in %s): %w", dir, err)
		}
	}()
	if err := os.MkdirAll(f.logDir(), 0o700); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	began := time.Now()
	f.progress(began, "fleet directory %s", dir)

	for i, s := range o.Sites {
		msp := MSPID(s.ID)
		if o.MSPIDs != nil {
			msp = o.MSPIDs(i)
		}
		f.Edges = append(f.Edges, &Edge{Site: s, MSPID: msp, fleet: f, index: i})
	}
	if err := f.issueIdentities(); err != nil {
		return nil, err
	}
	if err := f.startLedger(ctx); err != nil {
		return nil, err
	}
	f.progress(began, "ledger ready at %s", f.LedgerURL)

	clusters := make([]*localcluster.Cluster, len(f.Edges))
	g, gctx := errgroup.WithContext(ctx)
	for i, e := range f.Edges {
		g.Go(func() error {
			c, err := localcluster.Start(gctx, localcluster.Options{
				Name: e.ID, BinDir: o.BinDir, Dir: dir, ReadyTimeout: o.ReadyTimeout,
				// The fleet removes its whole directory; a failed start keeps it.
				KeepDir: true, StopGrace: stopGrace,
				RealNodes: o.RealNodes,
			})
			clusters[i] = c
			return err
		})
	}
	err = g.Wait()
	for i, c := range clusters {
		f.Edges[i].Cluster = c // set before failing, so that stop reaches them
	}
	if err != nil {
		return nil, err
	}
	f.progress(began, "%d clusters ready", len(clusters))

	g, gctx = errgroup.WithContext(ctx)
	for i, e := range f.Edges {
		g.Go(func() error {
			if err := e.start(gctx, o.Nodes(i)); err != nil {
				return fmt.Errorf("edge %s: %w", e.ID, err)
			}
			f.progress(began, "edge %s ready", e.ID)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	f.progress(began, "fleet of %d ready", len(f.Edges))
	klog.InfoS("Fleet ready", "clusters", len(f.Edges), "dir", dir, "ledger", f.LedgerURL, "took", time.Since(began))
	return f, nil
}

// Stop stops every process (edgemigrate's, then the clusters, then the ledger), waits until
// each has exited and removes the working directory unless Options.KeepDir. It is safe to
// call more than once.
func (f *Fleet) Stop() {
	f.stopOnce.Do(func() {
		f.stop()
		if !f.opts.KeepDir {
			if err := os.RemoveAll(f.Dir); err != nil {
				klog.ErrorS(err, "Removing fleet directory", "dir", f.Dir)
			}
		}
	})
}

func (f *Fleet) stop() {
	var wg sync.WaitGroup
	for _, e := range f.Edges {
		wg.Go(e.stop)
	}
	wg.Wait()
	f.StopLedger()
}

// Ledger returns a client of the ledger server acting as the observer identity. Close it
// when done.
func (f *Fleet) Ledger(ctx context.Context) (ledger.Ledger, error) {
	return f.LedgerAs(ctx, f.ObserverIdentity)
}

// LedgerAs returns a client of the ledger server acting as the identity in files (an
// edge's Identity, say). Close it when done.
func (f *Fleet) LedgerAs(ctx context.Context, files mtls.Files) (ledger.Ledger, error) {
	id, err := mtls.Load(files)
	if err != nil {
		return nil, err
	}
	l, err := remote.Dial(f.LedgerURL, id)
	if err != nil {
		return nil, fmt.Errorf("dialling the fleet's ledger: %w", err)
	}
	if _, err := l.ListClusters(ctx); err != nil {
		l.Close()
		return nil, fmt.Errorf("querying the fleet's ledger at %s: %w", f.LedgerURL, err)
	}
	return l, nil
}

// PIDs returns the process ids of every process the fleet has started, running or not:
// cluster components, edgemigrate processes and the ledger server.
func (f *Fleet) PIDs() []int {
	var pids []int
	f.mu.Lock()
	for _, p := range append(slices.Clone(f.endedLedgers), f.ledger) {
		if p != nil {
			pids = append(pids, p.PID())
		}
	}
	f.mu.Unlock()
	for _, e := range f.Edges {
		pids = append(pids, e.PIDs()...)
	}
	return pids
}

// LogTails returns the last lines of every log of the fleet, for a failing test's output.
func (f *Fleet) LogTails(lines int) string {
	var b strings.Builder
	entries, err := os.ReadDir(f.logDir())
	if err != nil {
		fmt.Fprintf(&b, "fleet: cannot read logs: %v\n", err)
	}
	for _, e := range entries {
		fmt.Fprintf(&b, "----- fleet: %s (last %d lines) -----\n%s\n", e.Name(), lines,
			localcluster.TailFile(filepath.Join(f.logDir(), e.Name()), lines))
	}
	for _, e := range f.Edges {
		if e.Cluster != nil {
			b.WriteString(e.Cluster.LogTails(lines))
		}
	}
	return b.String()
}

func (f *Fleet) logDir() string { return filepath.Join(f.Dir, "logs") }

// startProcess starts an edgemigrate (or other) process logging to logs/<name>.log.
func (f *Fleet) startProcess(name, binary string, args []string) (*localcluster.Process, error) {
	return localcluster.StartProcess(name, binary, args, filepath.Join(f.logDir(), name+".log"))
}

func (f *Fleet) progress(began time.Time, format string, args ...any) {
	if f.opts.Log == nil {
		return
	}
	fmt.Fprintf(f.opts.Log, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
}

// MSPID is the ledger MSP id of a cluster: edge-a → EdgeAMSP.
func MSPID(clusterID string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(clusterID, "-") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String() + "MSP"
}
