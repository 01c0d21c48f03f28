// Package ledger is the client side of the migration ledger: one interface, Ledger, that the
// descheduler uses whatever the backend. Backends: ledger/embedded (the contract in-process,
// persisted in a bbolt file: what `edgemigrate ledger` serves and tests use), ledger/remote
// (an embedded ledger served over HTTP, shared by several processes: the descheduler's
// default) and ledger/fabric (a Hyperledger Fabric channel through fabric-gateway). The
// descheduler dials remote or fabric only: each cluster runs apart from the ledger. Every Ledger acts as one identity, as a Fabric client does: the
// contract checks each call against the MSP of that identity.
package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

// Event streams reconnect by themselves, waiting RetryInterval before the first attempt,
// doubling the wait after each failed one up to MaxRetryInterval, and starting again from
// RetryInterval once a reconnection succeeds: a ledger down for long is not hammered, and
// one back is noticed within MaxRetryInterval.
const (
	DefaultRetryInterval    = time.Second
	DefaultMaxRetryInterval = 30 * time.Second
)

// RetryBackoff is an event stream's reconnection backoff: initial (DefaultRetryInterval
// when not positive), doubling, capped at limit (DefaultMaxRetryInterval when not
// positive, and never below initial). Take a fresh one after each successful reconnection.
func RetryBackoff(initial, limit time.Duration) wait.Backoff {
	if initial <= 0 {
		initial = DefaultRetryInterval
	}
	if limit <= 0 {
		limit = DefaultMaxRetryInterval
	}
	return wait.Backoff{Duration: initial, Factor: 2, Steps: math.MaxInt32, Cap: max(initial, limit)}
}

// Ledger records clusters, migrations and bids, and streams what happens to them. Refusals
// by the contract carry a chaincode.Code (see chaincode.CodeOf) whatever the backend.
type Ledger interface {
	RegisterCluster(ctx context.Context, r chaincode.ClusterRegistration) (*chaincode.Cluster, error)
	ReportCapacity(ctx context.Context, clusterID string, free chaincode.Resources) (*chaincode.Cluster, error)
	ProposeMigration(ctx context.Context, p chaincode.Proposal) (*chaincode.Migration, error)
	SubmitBid(ctx context.Context, migrationID string, b chaincode.BidInput) (*chaincode.Bid, error)
	Decide(ctx context.Context, migrationID string) (*chaincode.Migration, error)
	ReportReady(ctx context.Context, migrationID, clusterID string) (*chaincode.Migration, error)
	ReportFailed(ctx context.Context, migrationID, clusterID, reason string) (*chaincode.Migration, error)
	Complete(ctx context.Context, migrationID string) (*chaincode.Migration, error)
	Abort(ctx context.Context, migrationID, reason string) (*chaincode.Migration, error)

	// Membership: InitLedger names the admin MSP once, when the ledger is set up;
	// AdmitCluster grants a cluster id to an MSP (the admin at once, a member by vote);
	// RemoveCluster ends a membership.
	InitLedger(ctx context.Context, cfg chaincode.LedgerConfig) (*chaincode.LedgerConfig, error)
	AdmitCluster(ctx context.Context, a chaincode.AdmissionInput) (*chaincode.Admission, error)
	RemoveCluster(ctx context.Context, clusterID, reason string) (*chaincode.Admission, error)
	// Bounded state: any member expires an overdue migration and compacts a finished one.
	ExpireMigration(ctx context.Context, migrationID string) (*chaincode.Migration, error)
	CompactMigration(ctx context.Context, migrationID string) (*chaincode.Finished, error)

	// Dead clusters and homes: any member marks a silent cluster dead; the source of the
	// migration that put a service on it re-homes the service.
	MarkClusterDead(ctx context.Context, clusterID string) (*chaincode.Cluster, error)
	RehomeService(ctx context.Context, origin string) (*chaincode.Home, error)
	GetHome(ctx context.Context, origin string) (*chaincode.Home, error)
	ListHomes(ctx context.Context) ([]*chaincode.Home, error)

	GetCluster(ctx context.Context, id string) (*chaincode.Cluster, error)
	ListClusters(ctx context.Context) ([]*chaincode.Cluster, error)
	GetMigration(ctx context.Context, id string) (*chaincode.Migration, error)
	ListOpenMigrations(ctx context.Context) ([]*chaincode.Migration, error)
	GetLedgerConfig(ctx context.Context) (*chaincode.LedgerConfig, error)
	ListAdmissions(ctx context.Context) ([]*chaincode.Admission, error)
	ListFinishedMigrations(ctx context.Context) ([]chaincode.Finished, error)

	// Events streams every event after the checkpoint (all of them from the zero
	// Checkpoint), in commit order, each once. The channel closes only when ctx ends or the
	// Ledger is closed; a backend reconnects by itself. Save an event's Checkpoint after
	// handling it and pass it here after a restart to miss and repeat nothing.
	Events(ctx context.Context, after Checkpoint) (<-chan Event, error)

	Close() error
}

// Checkpoint is a position in the event stream: the block and transaction of the last event
// handled. On the embedded ledger every transaction is its own block.
type Checkpoint struct {
	Block uint64 `json:"block"`
	TxID  string `json:"txId,omitempty"`
}

// Head is the position of "now": a stream from Head carries only the events committed after
// it opened, so a new consumer lists what is open (ListOpenMigrations) instead of replaying
// the history.
var Head = Checkpoint{Block: math.MaxUint64}

// Event is a contract event and where it sits in the stream.
type Event struct {
	chaincode.Event
	// Checkpoint is what to save once this event is handled.
	Checkpoint Checkpoint `json:"checkpoint"`
}

// Transactor carries transactions the way Fabric does: a function name and string arguments,
// with the result as JSON. Each backend implements it; FromTransactor turns it into a Ledger,
// so arguments are encoded once, the same way, for every backend.
type Transactor interface {
	// Submit runs a transaction and returns once it is committed.
	Submit(ctx context.Context, fn string, args ...string) ([]byte, error)
	// Evaluate runs a query; nothing is written.
	Evaluate(ctx context.Context, fn string, args ...string) ([]byte, error)
	Events(ctx context.Context, after Checkpoint) (<-chan Event, error)
	Close() error
}

// FromTransactor returns the Ledger over t.
func FromTransactor(t Transactor) Ledger { return client{t} }

type client struct{ t Transactor }

// call encodes args (strings as they are, anything else as JSON), runs fn and decodes its result.
func call[T any](ctx context.Context, c client, submit bool, fn string, in ...any) (T, error) {
	var out T
	args := make([]string, len(in))
	for i, a := range in {
		if s, ok := a.(string); ok {
			args[i] = s
			continue
		}
		b, err := json.Marshal(a)
		if err != nil {
			// NaN or an infinity: JSON cannot carry them, and the contract would refuse them.
			return out, fmt.Errorf("%s: %w", fn, &chaincode.Error{Code: chaincode.CodeInvalid, Msg: fmt.Sprintf("encoding %T: %v", a, err)})
		}
		args[i] = string(b)
	}
	var data []byte
	var err error
	if submit {
		data, err = c.t.Submit(ctx, fn, args...)
	} else {
		data, err = c.t.Evaluate(ctx, fn, args...)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w", fn, err)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("%s: decoding result: %w", fn, err)
	}
	return out, nil
}

func (c client) RegisterCluster(ctx context.Context, r chaincode.ClusterRegistration) (*chaincode.Cluster, error) {
	return call[*chaincode.Cluster](ctx, c, true, "RegisterCluster", r)
}

func (c client) ReportCapacity(ctx context.Context, clusterID string, free chaincode.Resources) (*chaincode.Cluster, error) {
	return call[*chaincode.Cluster](ctx, c, true, "ReportCapacity", clusterID, free)
}

func (c client) ProposeMigration(ctx context.Context, p chaincode.Proposal) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, true, "ProposeMigration", p)
}

func (c client) SubmitBid(ctx context.Context, migrationID string, b chaincode.BidInput) (*chaincode.Bid, error) {
	return call[*chaincode.Bid](ctx, c, true, "SubmitBid", migrationID, b)
}

func (c client) Decide(ctx context.Context, migrationID string) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, true, "Decide", migrationID)
}

func (c client) ReportReady(ctx context.Context, migrationID, clusterID string) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, true, "ReportReady", migrationID, clusterID)
}

func (c client) ReportFailed(ctx context.Context, migrationID, clusterID, reason string) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, true, "ReportFailed", migrationID, clusterID, reason)
}

func (c client) Complete(ctx context.Context, migrationID string) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, true, "Complete", migrationID)
}

func (c client) Abort(ctx context.Context, migrationID, reason string) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, true, "Abort", migrationID, reason)
}

func (c client) InitLedger(ctx context.Context, cfg chaincode.LedgerConfig) (*chaincode.LedgerConfig, error) {
	return call[*chaincode.LedgerConfig](ctx, c, true, "InitLedger", cfg)
}

func (c client) AdmitCluster(ctx context.Context, a chaincode.AdmissionInput) (*chaincode.Admission, error) {
	return call[*chaincode.Admission](ctx, c, true, "AdmitCluster", a)
}

func (c client) RemoveCluster(ctx context.Context, clusterID, reason string) (*chaincode.Admission, error) {
	return call[*chaincode.Admission](ctx, c, true, "RemoveCluster", clusterID, reason)
}

func (c client) ExpireMigration(ctx context.Context, migrationID string) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, true, "ExpireMigration", migrationID)
}

func (c client) CompactMigration(ctx context.Context, migrationID string) (*chaincode.Finished, error) {
	return call[*chaincode.Finished](ctx, c, true, "CompactMigration", migrationID)
}

func (c client) MarkClusterDead(ctx context.Context, clusterID string) (*chaincode.Cluster, error) {
	return call[*chaincode.Cluster](ctx, c, true, "MarkClusterDead", clusterID)
}

func (c client) RehomeService(ctx context.Context, origin string) (*chaincode.Home, error) {
	return call[*chaincode.Home](ctx, c, true, "RehomeService", origin)
}

func (c client) GetHome(ctx context.Context, origin string) (*chaincode.Home, error) {
	return call[*chaincode.Home](ctx, c, false, "GetHome", origin)
}

func (c client) ListHomes(ctx context.Context) ([]*chaincode.Home, error) {
	return call[[]*chaincode.Home](ctx, c, false, "ListHomes")
}

func (c client) GetLedgerConfig(ctx context.Context) (*chaincode.LedgerConfig, error) {
	return call[*chaincode.LedgerConfig](ctx, c, false, "GetLedgerConfig")
}

func (c client) ListAdmissions(ctx context.Context) ([]*chaincode.Admission, error) {
	return call[[]*chaincode.Admission](ctx, c, false, "ListAdmissions")
}

func (c client) ListFinishedMigrations(ctx context.Context) ([]chaincode.Finished, error) {
	return call[[]chaincode.Finished](ctx, c, false, "ListFinishedMigrations")
}

func (c client) GetCluster(ctx context.Context, id string) (*chaincode.Cluster, error) {
	return call[*chaincode.Cluster](ctx, c, false, "GetCluster", id)
}

func (c client) ListClusters(ctx context.Context) ([]*chaincode.Cluster, error) {
	return call[[]*chaincode.Cluster](ctx, c, false, "ListClusters")
}

func (c client) GetMigration(ctx context.Context, id string) (*chaincode.Migration, error) {
	return call[*chaincode.Migration](ctx, c, false, "GetMigration", id)
}

func (c client) ListOpenMigrations(ctx context.Context) ([]*chaincode.Migration, error) {
	return call[[]*chaincode.Migration](ctx, c, false, "ListOpenMigrations")
}

func (c client) Events(ctx context.Context, after Checkpoint) (<-chan Event, error) {
	return c.t.Events(ctx, after)
}

func (c client) Close() error { return c.t.Close() }
