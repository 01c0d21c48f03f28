package descheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// The ledger as this controller sees it: whether it answers (ledgerUp), and its clock
// (ledgerNow). Both are learnt from every call through observedLedger, which the
// controller uses in place of the ledger it was given.

// ledgerView is what the calls taught about the ledger.
type ledgerView struct {
	mu sync.Mutex
	// downSince is the first transport failure of the current outage (zero while the
	// ledger answers); lastErr is the latest.
	downSince time.Time
	lastErr   error
	// stamp is the ledger's time of its latest transaction for this controller, read at
	// local time at (the call's return: the stamp is no later than that).
	stamp, at time.Time
}

// isTransport reports whether err is a failure to reach the ledger, as opposed to the
// contract's refusal (which proves the ledger answered) or this process's cancellation. A
// call that ran out of its own time counts: the ledger did not answer.
func isTransport(ctx context.Context, err error) bool {
	return err != nil && chaincode.CodeOf(err) == "" && !errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, context.Canceled)
}

// errLedgerUnreachable marks a call that did not reach the ledger: the work waits for it
// (quietly, with backoff) instead of failing.
type errLedgerUnreachable struct{ err error }

func (e errLedgerUnreachable) Error() string { return e.err.Error() }
func (e errLedgerUnreachable) Unwrap() error { return e.err }

// unreachable reports whether err is, or wraps, a failure to reach the ledger.
func unreachable(err error) bool {
	var u errLedgerUnreachable
	return errors.As(err, &u)
}

// observe records a call's outcome and, when the ledger stamped it, the ledger's time. It
// returns err, marked when it is a failure to reach the ledger.
func (c *Controller) observe(ctx context.Context, err error, stamp string) error {
	now := c.clock.Now()
	logger := klog.FromContext(ctx)
	v := &c.ledgerView
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case isTransport(ctx, err):
		if v.downSince.IsZero() {
			v.downSince = now
			// Once per outage; the work that waits says so at V(2).
			logger.Error(err, "The ledger is unreachable; migrations wait for it")
		}
		v.lastErr = err
		c.metrics.ledgerUp.Set(0)
		return errLedgerUnreachable{err}
	case err == nil || chaincode.CodeOf(err) != "":
		if !v.downSince.IsZero() {
			logger.Info("The ledger answers again", "outage", now.Sub(v.downSince).String())
		}
		v.downSince, v.lastErr = time.Time{}, nil
		c.metrics.ledgerUp.Set(1)
	}
	if err != nil || stamp == "" {
		return err
	}
	if t, perr := time.Parse(time.RFC3339Nano, stamp); perr == nil {
		v.stamp, v.at = t, now
	}
	return nil
}

// logLedgerError logs a failed ledger call: an error, or at V(2) when the ledger was not
// reached (the outage itself is logged once, when it starts).
func logLedgerError(ctx context.Context, err error, msg string, kv ...any) {
	logger := klog.FromContext(ctx)
	if unreachable(err) {
		logger.V(2).Info(msg+": the ledger is unreachable", append(kv, "err", err)...)
		return
	}
	logger.Error(err, msg, kv...)
}

// ledgerUp is false while calls to the ledger fail for transport reasons (it does not
// answer), true once one is answered, even by a refusal.
func (c *Controller) ledgerUp() bool {
	c.ledgerView.mu.Lock()
	defer c.ledgerView.mu.Unlock()
	return c.ledgerView.downSince.IsZero()
}

// ledgerDown describes the outage, nil while the ledger answers.
func (c *Controller) ledgerDown() error {
	c.ledgerView.mu.Lock()
	defer c.ledgerView.mu.Unlock()
	if c.ledgerView.downSince.IsZero() {
		return nil
	}
	return fmt.Errorf("ledger unreachable since %s: %w", c.ledgerView.downSince.UTC().Format(time.RFC3339), c.ledgerView.lastErr)
}

// ledgerNow is the controller's estimate of the ledger's time: the stamp of the ledger's
// latest transaction for this cluster (capacity reports renew it every
// --capacity-report-interval) plus the local time elapsed since it was read. It errs
// early by at most one call's latency, so what is compared with it (a deadline, a
// retention window) is never judged past too soon. Before any stamp it is the local clock.
func (c *Controller) ledgerNow() time.Time {
	now := c.clock.Now()
	c.ledgerView.mu.Lock()
	defer c.ledgerView.mu.Unlock()
	if c.ledgerView.stamp.IsZero() {
		return now
	}
	return c.ledgerView.stamp.Add(now.Sub(c.ledgerView.at))
}

// migrationStamp is the time of a migration's latest transition.
func migrationStamp(m *chaincode.Migration) string {
	if m == nil || len(m.History) == 0 {
		return ""
	}
	return m.History[len(m.History)-1].Time
}

// observedLedger is the ledger through which the controller calls: each call's outcome
// feeds ledgerUp and ledgerNow.
type observedLedger struct {
	ledger.Ledger
	c *Controller
}

func observed[T any](ctx context.Context, c *Controller, v T, err error, stamp func(T) string) (T, error) {
	s := ""
	if err == nil && stamp != nil {
		s = stamp(v)
	}
	return v, c.observe(ctx, err, s)
}

func clusterStamp(cl *chaincode.Cluster) string {
	if cl == nil {
		return ""
	}
	return cl.LastReportAt
}

func (l observedLedger) RegisterCluster(ctx context.Context, r chaincode.ClusterRegistration) (*chaincode.Cluster, error) {
	v, err := l.Ledger.RegisterCluster(ctx, r)
	return observed(ctx, l.c, v, err, clusterStamp)
}

func (l observedLedger) ReportCapacity(ctx context.Context, clusterID string, free chaincode.Resources) (*chaincode.Cluster, error) {
	v, err := l.Ledger.ReportCapacity(ctx, clusterID, free)
	return observed(ctx, l.c, v, err, clusterStamp)
}

func (l observedLedger) ProposeMigration(ctx context.Context, p chaincode.Proposal) (*chaincode.Migration, error) {
	v, err := l.Ledger.ProposeMigration(ctx, p)
	return observed(ctx, l.c, v, err, migrationStamp)
}

func (l observedLedger) SubmitBid(ctx context.Context, migrationID string, b chaincode.BidInput) (*chaincode.Bid, error) {
	v, err := l.Ledger.SubmitBid(ctx, migrationID, b)
	return observed(ctx, l.c, v, err, func(b *chaincode.Bid) string {
		if b == nil {
			return ""
		}
		return b.SubmittedAt
	})
}

func (l observedLedger) Decide(ctx context.Context, migrationID string) (*chaincode.Migration, error) {
	v, err := l.Ledger.Decide(ctx, migrationID)
	return observed(ctx, l.c, v, err, migrationStamp)
}

func (l observedLedger) ReportReady(ctx context.Context, migrationID, clusterID string) (*chaincode.Migration, error) {
	v, err := l.Ledger.ReportReady(ctx, migrationID, clusterID)
	return observed(ctx, l.c, v, err, migrationStamp)
}

func (l observedLedger) ReportFailed(ctx context.Context, migrationID, clusterID, reason string) (*chaincode.Migration, error) {
	v, err := l.Ledger.ReportFailed(ctx, migrationID, clusterID, reason)
	return observed(ctx, l.c, v, err, migrationStamp)
}

func (l observedLedger) Complete(ctx context.Context, migrationID string) (*chaincode.Migration, error) {
	v, err := l.Ledger.Complete(ctx, migrationID)
	return observed(ctx, l.c, v, err, migrationStamp)
}

func (l observedLedger) Abort(ctx context.Context, migrationID, reason string) (*chaincode.Migration, error) {
	v, err := l.Ledger.Abort(ctx, migrationID, reason)
	return observed(ctx, l.c, v, err, migrationStamp)
}

func (l observedLedger) InitLedger(ctx context.Context, cfg chaincode.LedgerConfig) (*chaincode.LedgerConfig, error) {
	v, err := l.Ledger.InitLedger(ctx, cfg)
	return observed[*chaincode.LedgerConfig](ctx, l.c, v, err, nil)
}

func (l observedLedger) AdmitCluster(ctx context.Context, a chaincode.AdmissionInput) (*chaincode.Admission, error) {
	v, err := l.Ledger.AdmitCluster(ctx, a)
	return observed[*chaincode.Admission](ctx, l.c, v, err, nil)
}

func (l observedLedger) RemoveCluster(ctx context.Context, clusterID, reason string) (*chaincode.Admission, error) {
	v, err := l.Ledger.RemoveCluster(ctx, clusterID, reason)
	return observed[*chaincode.Admission](ctx, l.c, v, err, nil)
}

func (l observedLedger) ExpireMigration(ctx context.Context, migrationID string) (*chaincode.Migration, error) {
	v, err := l.Ledger.ExpireMigration(ctx, migrationID)
	return observed(ctx, l.c, v, err, migrationStamp)
}

func (l observedLedger) CompactMigration(ctx context.Context, migrationID string) (*chaincode.Finished, error) {
	v, err := l.Ledger.CompactMigration(ctx, migrationID)
	return observed[*chaincode.Finished](ctx, l.c, v, err, nil)
}

func (l observedLedger) MarkClusterDead(ctx context.Context, clusterID string) (*chaincode.Cluster, error) {
	v, err := l.Ledger.MarkClusterDead(ctx, clusterID)
	return observed[*chaincode.Cluster](ctx, l.c, v, err, nil)
}

func (l observedLedger) RehomeService(ctx context.Context, origin string) (*chaincode.Home, error) {
	v, err := l.Ledger.RehomeService(ctx, origin)
	return observed[*chaincode.Home](ctx, l.c, v, err, nil)
}

func (l observedLedger) GetHome(ctx context.Context, origin string) (*chaincode.Home, error) {
	v, err := l.Ledger.GetHome(ctx, origin)
	return observed[*chaincode.Home](ctx, l.c, v, err, nil)
}

func (l observedLedger) ListHomes(ctx context.Context) ([]*chaincode.Home, error) {
	v, err := l.Ledger.ListHomes(ctx)
	return observed[[]*chaincode.Home](ctx, l.c, v, err, nil)
}

func (l observedLedger) GetCluster(ctx context.Context, id string) (*chaincode.Cluster, error) {
	v, err := l.Ledger.GetCluster(ctx, id)
	return observed[*chaincode.Cluster](ctx, l.c, v, err, nil)
}

func (l observedLedger) ListClusters(ctx context.Context) ([]*chaincode.Cluster, error) {
	v, err := l.Ledger.ListClusters(ctx)
	return observed[[]*chaincode.Cluster](ctx, l.c, v, err, nil)
}

func (l observedLedger) GetMigration(ctx context.Context, id string) (*chaincode.Migration, error) {
	v, err := l.Ledger.GetMigration(ctx, id)
	return observed[*chaincode.Migration](ctx, l.c, v, err, nil)
}

func (l observedLedger) ListOpenMigrations(ctx context.Context) ([]*chaincode.Migration, error) {
	v, err := l.Ledger.ListOpenMigrations(ctx)
	return observed[[]*chaincode.Migration](ctx, l.c, v, err, nil)
}

func (l observedLedger) GetLedgerConfig(ctx context.Context) (*chaincode.LedgerConfig, error) {
	v, err := l.Ledger.GetLedgerConfig(ctx)
	return observed[*chaincode.LedgerConfig](ctx, l.c, v, err, nil)
}

func (l observedLedger) ListAdmissions(ctx context.Context) ([]*chaincode.Admission, error) {
	v, err := l.Ledger.ListAdmissions(ctx)
	return observed[[]*chaincode.Admission](ctx, l.c, v, err, nil)
}

func (l observedLedger) ListFinishedMigrations(ctx context.Context) ([]chaincode.Finished, error) {
	v, err := l.Ledger.ListFinishedMigrations(ctx)
	return observed[[]chaincode.Finished](ctx, l.c, v, err, nil)
}

func (l observedLedger) Events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	ch, err := l.Ledger.Events(ctx, after)
	return ch, l.c.observe(ctx, err, "")
}
