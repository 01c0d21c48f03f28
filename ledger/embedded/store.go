// Package embedded is the default migration ledger: the contract of package chaincode run
// in-process, with its world state and an append-only event log in one bbolt file. A single
// goroutine orders transactions and applies them one at a time, as Fabric's orderer and
// committer do; the ones that arrive together are committed in one bbolt transaction, as a
// block, so the cost of a disk sync is shared.
package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

var (
	stateBucket  = []byte("state")
	eventsBucket = []byte("events")
	metaBucket   = []byte("meta")
	txSeqKey     = []byte("txseq")
)

// maxBlock bounds how many queued transactions share one commit.
const maxBlock = 256

// ErrClosed is returned by a Store that was closed.
var ErrClosed = errors.New("embedded ledger is closed")

// Store is an embedded ledger. Its methods are safe for concurrent use.
type Store struct {
	db    *bolt.DB
	queue chan *txRequest
	// now stamps transactions, as a Fabric client stamps its proposals.
	now     func() time.Time
	metrics *metrics
	admin   string

	mu sync.Mutex
	// appended is closed and replaced whenever events are committed, waking subscribers.
	appended chan struct{}
	closed   chan struct{}
	done     chan struct{}
	// pruner runs pruneEvery; Close waits for it.
	pruner sync.WaitGroup
	once   sync.Once
}

type txRequest struct {
	msp  string
	fn   string
	args []string
	ts   time.Time
	// result is sent once the block holding the transaction is committed.
	result chan txResult
}

type txResult struct {
	data []byte
	err  error
}

// Options tune a Store.
type Options struct {
	// NoSync skips the disk sync at each commit. A commit still reaches the kernel before
	// its callers hear of it, so a crash or kill of the process loses nothing, but a power
	// failure may lose recent commits or damage the file. For tests, demos and benchmarks.
	NoSync bool
	// Registerer, when set, receives the ledger's metrics.
	Registerer prometheus.Registerer
	// AdminMSP, when set, is the ledger's admin (chaincode.InitLedger), named when the file
	// is created; a file set up with another admin is refused. Without it the ledger is
	// set up by an InitLedger transaction, and until then nobody can be admitted.
	AdminMSP string
	// DeadAfter is the dead-after window written with AdminMSP (whole seconds, see
	// chaincode.DeadAfterSeconds; 0 means chaincode.DefaultDeadAfter). Like the admin, it
	// is fixed when the file is created: reopening with another is refused.
	DeadAfter time.Duration
	// Now stamps transactions, as a Fabric client's clock does; nil means time.Now. Tests
	// share their fake clock with it.
	Now func() time.Time
	// PruneInterval is how often the store drops events older than chaincode.RetentionWindow
	// from its log and, as AdminMSP, compacts the finished migrations due; 0 means hourly.
	PruneInterval time.Duration
}

type metrics struct {
	commit       prometheus.Histogram
	transactions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgemigrate_ledger_commit_duration_seconds",
			Help:    "Time to apply and commit one block of the embedded ledger, disk sync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemigrate_ledger_transactions_total",
			Help: "Transactions submitted to the embedded ledger, by result (committed, refused, failed).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.commit, m.transactions} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering ledger metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Open opens (creating if needed) the ledger file at path.
func Open(path string, opts Options) (*Store, error) {
	// The freelist is rebuilt on open instead of written at every commit: fewer pages to
	// sync per block.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, NoSync: opts.NoSync,
		// Mapping ahead keeps the file's growth from remapping (which waits for every reader) often.
		InitialMmapSize: 256 << 20})
	if err != nil {
		return nil, fmt.Errorf("opening ledger %s: %w", path, err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		db.Close()
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{stateBucket, eventsBucket, metaBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising ledger %s: %w", path, err)
	}
	s := &Store{db: db, queue: make(chan *txRequest, maxBlock), now: time.Now, metrics: m,
		appended: make(chan struct{}), closed: make(chan struct{}), done: make(chan struct{})}
	if opts.Now != nil {
		s.now = opts.Now
	}
	go s.order()
	s.admin = opts.AdminMSP
	if opts.AdminMSP != "" {
		deadAfter, err := chaincode.DeadAfterSeconds(opts.DeadAfter)
		if err == nil {
			err = s.setUp(chaincode.LedgerConfig{AdminMSP: opts.AdminMSP, DeadAfterSeconds: deadAfter})
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("setting up ledger %s with admin MSP %s: %w", path, opts.AdminMSP, err)
		}
	}
	interval := opts.PruneInterval
	if interval <= 0 {
		interval = time.Hour
	}
	s.pruner.Go(func() { s.pruneEvery(interval) })
	klog.V(2).InfoS("Opened embedded ledger", "path", path, "adminMSP", opts.AdminMSP)
	return s, nil
}

// pruneEvery prunes at once and then every interval, until the store closes.
func (s *Store) pruneEvery(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.prune(context.Background()); err != nil {
			klog.ErrorS(err, "Pruning the embedded ledger")
		}
		select {
		case <-t.C:
		case <-s.closed:
			return
		}
	}
}

// prune bounds the store: the finished migrations past the retention window are compacted
// (through the contract, as the admin MSP, so state changes only by transactions) and
// events older than the window leave the log. Open migrations are never touched; a
// consumer whose checkpoint fell out of the log resumes at the oldest event kept and lists
// what is open, as a new one does.
func (s *Store) prune(ctx context.Context) error {
	cutoff := s.now().Add(-chaincode.RetentionWindow - chaincode.MaxClockSkew)
	if s.admin != "" {
		l := s.Client(s.admin)
		finished, err := l.ListFinishedMigrations(ctx)
		if err != nil {
			return err
		}
		for _, f := range finished {
			if t, err := time.Parse(time.RFC3339Nano, f.FinishedAt); err != nil || !t.Before(cutoff) {
				continue
			}
			if _, err := l.CompactMigration(ctx, f.ID); err != nil && chaincode.CodeOf(err) != chaincode.CodeNotYet && chaincode.CodeOf(err) != chaincode.CodeNotFound {
				return fmt.Errorf("compacting migration %s: %w", f.ID, err)
			}
		}
	}
	pruned := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(eventsBucket)
		var old [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var ev ledger.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decoding event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if t, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil && !t.Before(cutoff) {
				continue
			}
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		pruned = len(old)
		return nil
	})
	if err != nil {
		return fmt.Errorf("pruning the event log: %w", err)
	}
	if pruned > 0 {
		klog.V(2).InfoS("Pruned the embedded ledger's event log", "events", pruned, "before", cutoff)
	}
	return nil
}

// setUp writes the ledger's configuration unless the file already holds it (a restart);
// a file set up otherwise is refused, as InitLedger refuses it.
func (s *Store) setUp(want chaincode.LedgerConfig) error {
	ctx := context.Background()
	l := s.Client(want.AdminMSP)
	cfg, err := l.GetLedgerConfig(ctx)
	switch {
	case err == nil && *cfg == want:
		return nil
	case err != nil && chaincode.CodeOf(err) != chaincode.CodeNotFound:
		return err
	}
	_, err = l.InitLedger(ctx, want)
	return err
}

// Close stops ordering, fails transactions still queued, and closes the file.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		<-s.done
		s.pruner.Wait()
		err = s.db.Close()
	})
	return err
}

// Client returns a Ledger that acts as the given MSP. On Fabric the MSP comes from the
// signer's certificate; here the caller names it, and the contract enforces the same rules.
func (s *Store) Client(mspID string) ledger.Ledger {
	return ledger.FromTransactor(s.Transactor(mspID))
}

// Transactor returns the transport-level client acting as mspID (used by ledger/remote).
func (s *Store) Transactor(mspID string) ledger.Transactor { return transactor{s, mspID} }

type transactor struct {
	s   *Store
	msp string
}

func (t transactor) Submit(ctx context.Context, fn string, args ...string) ([]byte, error) {
	return t.s.Submit(ctx, t.msp, fn, args...)
}

func (t transactor) Evaluate(ctx context.Context, fn string, args ...string) ([]byte, error) {
	return t.s.Evaluate(ctx, t.msp, fn, args...)
}

func (t transactor) Events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	return t.s.Events(ctx, after)
}

// Close does nothing: the Store is shared by its clients and closed by its owner.
func (t transactor) Close() error { return nil }

// Submit queues a transaction as mspID and waits until it is committed or refused.
func (s *Store) Submit(ctx context.Context, mspID, fn string, args ...string) ([]byte, error) {
	if slices.Contains(chaincode.Queries, fn) {
		return s.Evaluate(ctx, mspID, fn, args...)
	}
	req := &txRequest{msp: mspID, fn: fn, args: args, ts: s.now(), result: make(chan txResult, 1)}
	select {
	case s.queue <- req:
	case <-s.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the transaction will be committed or refused whatever ctx does; waiting
	// for the outcome keeps the caller from guessing.
	select {
	case r := <-req.result:
		return r.data, r.err
	case <-s.done:
		return nil, ErrClosed
	}
}

// Evaluate runs a query as mspID against the committed state.
func (s *Store) Evaluate(ctx context.Context, mspID, fn string, args ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !slices.Contains(chaincode.Queries, fn) {
		return nil, &chaincode.Error{Code: chaincode.CodeInvalid, Msg: fmt.Sprintf("%s is not a query; submit it", fn)}
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		st := &txState{bucket: tx.Bucket(stateBucket), msp: mspID, ts: s.now(), readOnly: true}
		var err error
		out, err = chaincode.Dispatch(st, fn, args)
		return err
	})
	return out, err
}

// order is the only writer: it takes the queued transactions, applies them one at a time,
// commits them as one block and only then answers their callers.
func (s *Store) order() {
	defer close(s.done)
	for {
		var block []*txRequest
		select {
		case req := <-s.queue:
			block = append(block, req)
		case <-s.closed:
			s.drain()
			return
		}
	more:
		for len(block) < maxBlock {
			select {
			case req := <-s.queue:
				block = append(block, req)
			default:
				break more
			}
		}
		s.commit(block)
	}
}

func (s *Store) drain() {
	for {
		select {
		case req := <-s.queue:
			req.result <- txResult{err: ErrClosed}
		default:
			return
		}
	}
}

func (s *Store) commit(block []*txRequest) {
	start := time.Now()
	results := make([]txResult, len(block))
	events := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		state, log, meta := tx.Bucket(stateBucket), tx.Bucket(eventsBucket), tx.Bucket(metaBucket)
		seq := uint64(0)
		if v := meta.Get(txSeqKey); v != nil {
			seq = binary.BigEndian.Uint64(v)
		}
		for i, req := range block {
			seq++
			st := &txState{bucket: state, msp: req.msp, ts: req.ts, txID: fmt.Sprintf("%016x", seq), writes: map[string][]byte{}}
			data, err := chaincode.Dispatch(st, req.fn, req.args)
			if err != nil {
				// Refused: nothing of it is written, as on Fabric where it would fail endorsement.
				results[i] = txResult{err: err}
				continue
			}
			if err := st.apply(); err != nil {
				return fmt.Errorf("applying transaction %s: %w", st.txID, err)
			}
			if st.event != nil {
				n, err := log.NextSequence()
				if err != nil {
					return fmt.Errorf("appending event: %w", err)
				}
				rec, err := json.Marshal(ledger.Event{Event: *st.event, Checkpoint: ledger.Checkpoint{Block: n, TxID: st.txID}})
				if err != nil {
					return fmt.Errorf("encoding event: %w", err)
				}
				if err := log.Put(seqKey(n), rec); err != nil {
					return fmt.Errorf("appending event: %w", err)
				}
				events++
			}
			results[i] = txResult{data: data}
		}
		return meta.Put(txSeqKey, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		klog.ErrorS(err, "Committing a block of the embedded ledger failed", "transactions", len(block))
		for i := range results {
			if results[i].err == nil {
				results[i] = txResult{err: fmt.Errorf("committing: %w", err)}
			}
		}
		events = 0
	}
	if events > 0 {
		s.mu.Lock()
		close(s.appended)
		s.appended = make(chan struct{})
		s.mu.Unlock()
	}
	s.metrics.commit.Observe(time.Since(start).Seconds())
	for i, req := range block {
		result := "committed"
		switch {
		case err != nil:
			result = "failed"
		case results[i].err != nil:
			result = "refused"
		}
		s.metrics.transactions.WithLabelValues(result).Inc()
		req.result <- results[i]
	}
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// Events streams the event log after the checkpoint, then every event as it is committed.
func (s *Store) Events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	select {
	case <-s.closed:
		return nil, ErrClosed
	default:
	}
	next := after.Block + 1
	if after == ledger.Head {
		last, err := s.lastEvent()
		if err != nil {
			return nil, err
		}
		next = last + 1
	}
	out := make(chan ledger.Event, 64)
	go func() {
		defer close(out)
		for {
			// Take the wake-up channel before reading, so an append after the read wakes us.
			s.mu.Lock()
			appended := s.appended
			s.mu.Unlock()
			batch, err := s.readEvents(next, 256)
			if err != nil {
				select {
				case <-s.closed:
				default:
					klog.ErrorS(err, "Reading the embedded ledger's event log failed")
				}
				return
			}
			for _, ev := range batch {
				select {
				case out <- ev:
					next = ev.Checkpoint.Block + 1
				case <-ctx.Done():
					return
				case <-s.closed:
					return
				}
			}
			if len(batch) > 0 {
				continue
			}
			select {
			case <-appended:
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			}
		}
	}()
	return out, nil
}

// lastEvent is the sequence number of the last event committed (0 when none).
func (s *Store) lastEvent() (uint64, error) {
	var last uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		last = tx.Bucket(eventsBucket).Sequence()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading the event log's head: %w", err)
	}
	return last, nil
}

func (s *Store) readEvents(from uint64, limit int) ([]ledger.Event, error) {
	var out []ledger.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(eventsBucket).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && len(out) < limit; k, v = c.Next() {
			var ev ledger.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decoding event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}
