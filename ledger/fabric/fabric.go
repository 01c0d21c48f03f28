// Package fabric is the ledger backend for a Hyperledger Fabric channel, through the Fabric
// Gateway client (fabric-gateway): identity and signer from PEM files, submit waiting for
// the commit status, and chaincode events resumed from a checkpoint.
package fabric

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/hash"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// Config says which peer to talk to, as whom, and where the contract is.
type Config struct {
	// PeerEndpoint is host:port of a peer that runs the Gateway service.
	PeerEndpoint string
	// TLSCACertPath is the PEM of the CA that signed the peer's TLS certificate; empty
	// means no TLS, for a local network only.
	TLSCACertPath string
	// ServerNameOverride is the name in the peer's TLS certificate, when it differs from
	// the endpoint's host.
	ServerNameOverride string
	// MSPID, CertPath and KeyPath are the client identity: its MSP, its x509 certificate
	// and its private key, as PEM files.
	MSPID    string
	CertPath string
	KeyPath  string
	Channel  string
	// Chaincode is the chaincode's name on the channel.
	Chaincode string
	// RetryInterval is how long the event stream waits before its first attempt to
	// reconnect, doubling after each failed one up to MaxRetryInterval and starting again
	// after a successful one (ledger.RetryBackoff); 0 means ledger.DefaultRetryInterval
	// and ledger.DefaultMaxRetryInterval.
	RetryInterval, MaxRetryInterval time.Duration
	// OnRetry, when set, hears of each wait before an attempt to reconnect (tests).
	OnRetry func(wait time.Duration, err error)
}

// Transactor is a ledger.Transactor over a Fabric Gateway connection.
type Transactor struct {
	conn     *grpc.ClientConn
	gw       *client.Gateway
	network  *client.Network
	contract *client.Contract
	cfg      Config
}

// Dial connects to the peer and returns a Ledger acting as the configured identity.
func Dial(cfg Config) (ledger.Ledger, error) {
	t, err := NewTransactor(cfg)
	if err != nil {
		return nil, err
	}
	return ledger.FromTransactor(t), nil
}

// NewTransactor connects to the peer; most callers want Dial.
func NewTransactor(cfg Config) (*Transactor, error) {
	if cfg.PeerEndpoint == "" || cfg.MSPID == "" || cfg.Channel == "" || cfg.Chaincode == "" {
		return nil, errors.New("fabric ledger needs a peer endpoint, an MSP id, a channel and a chaincode name")
	}
	id, sign, err := loadIdentity(cfg)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if cfg.TLSCACertPath != "" {
		pem, err := os.ReadFile(cfg.TLSCACertPath)
		if err != nil {
			return nil, fmt.Errorf("reading peer TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in peer TLS CA file %s", cfg.TLSCACertPath)
		}
		creds = credentials.NewClientTLSFromCert(pool, cfg.ServerNameOverride)
	}
	conn, err := grpc.NewClient(cfg.PeerEndpoint, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connecting to peer %s: %w", cfg.PeerEndpoint, err)
	}
	gw, err := client.Connect(id, client.WithSign(sign), client.WithHash(hash.SHA256), client.WithClientConnection(conn),
		client.WithEvaluateTimeout(10*time.Second), client.WithEndorseTimeout(30*time.Second),
		client.WithSubmitTimeout(10*time.Second), client.WithCommitStatusTimeout(time.Minute))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connecting to the gateway at %s: %w", cfg.PeerEndpoint, err)
	}
	network := gw.GetNetwork(cfg.Channel)
	return &Transactor{conn: conn, gw: gw, network: network, contract: network.GetContractWithName(cfg.Chaincode, chaincode.ContractName), cfg: cfg}, nil
}

func loadIdentity(cfg Config) (*identity.X509Identity, identity.Sign, error) {
	certPEM, err := os.ReadFile(cfg.CertPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading client certificate: %w", err)
	}
	cert, err := identity.CertificateFromPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing client certificate %s: %w", cfg.CertPath, err)
	}
	id, err := identity.NewX509Identity(cfg.MSPID, cert)
	if err != nil {
		return nil, nil, fmt.Errorf("creating identity: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.KeyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading client key: %w", err)
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing client key %s: %w", cfg.KeyPath, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating signer: %w", err)
	}
	return id, sign, nil
}

// conflictRetries is how often Submit runs a transaction again after a read conflict.
const conflictRetries = 3

// Submit endorses, orders and waits for the commit. A transaction invalidated by a read
// conflict (another transaction in the same block wrote what it read) had no effect, so it
// is endorsed again against the new state; any other invalid transaction is an error.
func (t *Transactor) Submit(ctx context.Context, fn string, args ...string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		out, err := t.contract.SubmitWithContext(ctx, fn, client.WithArguments(args...))
		var commitErr *client.CommitError
		if errors.As(err, &commitErr) && attempt < conflictRetries &&
			(commitErr.Code == peer.TxValidationCode_MVCC_READ_CONFLICT || commitErr.Code == peer.TxValidationCode_PHANTOM_READ_CONFLICT) {
			klog.V(2).InfoS("Transaction lost a read conflict; submitting again", "function", fn, "tx", commitErr.TransactionID, "code", commitErr.Code)
			continue
		}
		if err != nil {
			return nil, describe(err)
		}
		return out, nil
	}
}

// Evaluate runs a query on one peer.
func (t *Transactor) Evaluate(ctx context.Context, fn string, args ...string) ([]byte, error) {
	out, err := t.contract.EvaluateWithContext(ctx, fn, client.WithArguments(args...))
	if err != nil {
		return nil, describe(err)
	}
	return out, nil
}

// describe adds the peers' messages to a gateway error: the contract's refusal (with its
// chaincode.Code) is in them, not in the gRPC status message.
func describe(err error) error {
	var msgs []string
	for _, d := range status.Convert(err).Details() {
		if detail, ok := d.(*gateway.ErrorDetail); ok {
			msgs = append(msgs, fmt.Sprintf("%s (%s): %s", detail.GetAddress(), detail.GetMspId(), detail.GetMessage()))
		}
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, strings.Join(msgs, "; "))
}

// Events reads the chaincode's events from the checkpoint, reconnecting from the last one
// delivered when the stream breaks. The zero checkpoint reads from the channel's first block.
// The first request is made before Events returns, so that a refusal is an error here.
func (t *Transactor) Events(ctx context.Context, after ledger.Checkpoint) (<-chan ledger.Event, error) {
	streamCtx, cancel := context.WithCancel(ctx)
	events, err := t.openStream(streamCtx, after)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan ledger.Event, 64)
	go follow(ctx, t.cfg, events, cancel, after, t.openStream, out)
	return out, nil
}

// opener opens the chaincode event stream after a checkpoint (Transactor.openStream).
type opener func(ctx context.Context, after ledger.Checkpoint) (<-chan *client.ChaincodeEvent, error)

// follow delivers the events of stream (cancelled by cancel) and, each time it ends, of a
// stream reopened after the last event delivered, backing off between attempts, until ctx
// ends; then it closes out.
func follow(ctx context.Context, cfg Config, events <-chan *client.ChaincodeEvent, cancel context.CancelFunc, after ledger.Checkpoint, open opener, out chan<- ledger.Event) {
	defer close(out)
	logger := klog.FromContext(ctx)
	backoff := ledger.RetryBackoff(cfg.RetryInterval, cfg.MaxRetryInterval)
	var err error
	for {
		opened := time.Now()
		var delivered bool
		after, delivered = readStream(ctx, events, after, out)
		cancel()
		if ctx.Err() != nil {
			return
		}
		// The gateway's stream opens lazily: an open that fails shows as a stream that
		// ends at once with nothing delivered. One that delivered, or stayed open for
		// longer than the longest wait, was a successful reconnection.
		if delivered || time.Since(opened) >= backoff.Cap {
			backoff = ledger.RetryBackoff(cfg.RetryInterval, cfg.MaxRetryInterval)
		}
		wait := backoff.Step()
		logger.V(2).Info("Fabric chaincode event stream ended; reconnecting", "block", after.Block, "tx", after.TxID, "err", err, "retryIn", wait)
		if cfg.OnRetry != nil {
			cfg.OnRetry(wait, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
		var streamCtx context.Context
		streamCtx, cancel = context.WithCancel(ctx)
		if events, err = open(streamCtx, after); err != nil {
			events = nil
		}
	}
}

type checkpoint ledger.Checkpoint

func (c checkpoint) BlockNumber() uint64   { return c.Block }
func (c checkpoint) TransactionID() string { return c.TxID }

func (t *Transactor) openStream(ctx context.Context, after ledger.Checkpoint) (<-chan *client.ChaincodeEvent, error) {
	var opts []client.ChaincodeEventsOption
	switch after {
	case ledger.Checkpoint{}:
		opts = append(opts, client.WithStartBlock(0))
	case ledger.Head:
		// No start position: the gateway streams from the next block committed.
	default:
		opts = append(opts, client.WithCheckpoint(checkpoint(after)))
	}
	events, err := t.network.ChaincodeEvents(ctx, t.cfg.Chaincode, opts...)
	if err != nil {
		return nil, fmt.Errorf("reading chaincode events: %w", describe(err))
	}
	return events, nil
}

// readStream delivers events until the stream ends (a nil stream ends at once) and returns
// the checkpoint of the last one sent, and whether it received any.
func readStream(ctx context.Context, events <-chan *client.ChaincodeEvent, after ledger.Checkpoint, out chan<- ledger.Event) (ledger.Checkpoint, bool) {
	received := false
	if events == nil {
		return after, received
	}
	for ev := range events {
		received = true
		cp := ledger.Checkpoint{Block: ev.BlockNumber, TxID: ev.TransactionID}
		var payload chaincode.Event
		if err := json.Unmarshal(ev.Payload, &payload); err != nil {
			// Not ours to interpret; skipping it keeps the stream going.
			klog.ErrorS(err, "Skipping undecodable chaincode event", "name", ev.EventName, "tx", ev.TransactionID)
			after = cp
			continue
		}
		select {
		case out <- ledger.Event{Event: payload, Checkpoint: cp}:
			after = cp
		case <-ctx.Done():
			return after, received
		}
	}
	return after, received
}

// Close closes the gateway and its connection.
func (t *Transactor) Close() error {
	gwErr := t.gw.Close()
	if err := t.conn.Close(); err != nil {
		return fmt.Errorf("closing connection to %s: %w", t.cfg.PeerEndpoint, err)
	}
	return gwErr
}
