// Package contract adapts the migration ledger's state machine (package chaincode) to
// Hyperledger Fabric through fabric-contract-api-go: cmd/edgemigrate-chaincode serves it.
// It is kept apart so that programs that only use the ledger's types do not link the shim.
package contract

import (
	"fmt"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-contract-api-go/v2/metadata"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

// Contract exposes the state machine to Fabric. Structured arguments travel as one JSON
// string each, decoded strictly by the Parse functions.
type Contract struct {
	contractapi.Contract
}

// NewChaincode returns the chaincode that Fabric (or a test) invokes.
func NewChaincode() (*contractapi.ContractChaincode, error) {
	c := &Contract{}
	c.Name = chaincode.ContractName
	c.Info = metadata.InfoMetadata{Title: "edgemigrate migration ledger", Version: "v1alpha1"}
	cc, err := contractapi.NewChaincode(c)
	if err != nil {
		return nil, fmt.Errorf("creating chaincode: %w", err)
	}
	cc.Info.Title = c.Info.Title
	cc.Info.Version = c.Info.Version
	return cc, nil
}

// GetEvaluateTransactions marks the queries, so clients evaluate rather than submit them.
func (c *Contract) GetEvaluateTransactions() []string {
	return chaincode.Queries
}

// RegisterCluster takes a ClusterRegistration as JSON.
func (c *Contract) RegisterCluster(ctx contractapi.TransactionContextInterface, registration string) (*chaincode.Cluster, error) {
	r, err := chaincode.ParseClusterRegistration(registration)
	if err != nil {
		return nil, err
	}
	return chaincode.RegisterCluster(fabricState{ctx}, r)
}

// ReportCapacity takes the cluster's free Resources as JSON.
func (c *Contract) ReportCapacity(ctx contractapi.TransactionContextInterface, clusterID, free string) (*chaincode.Cluster, error) {
	r, err := chaincode.ParseResources(free)
	if err != nil {
		return nil, err
	}
	return chaincode.ReportCapacity(fabricState{ctx}, clusterID, r)
}

// ProposeMigration takes a Proposal as JSON.
func (c *Contract) ProposeMigration(ctx contractapi.TransactionContextInterface, proposal string) (*chaincode.Migration, error) {
	p, err := chaincode.ParseProposal(proposal)
	if err != nil {
		return nil, err
	}
	return chaincode.ProposeMigration(fabricState{ctx}, p)
}

// SubmitBid takes a BidInput as JSON.
func (c *Contract) SubmitBid(ctx contractapi.TransactionContextInterface, migrationID, bid string) (*chaincode.Bid, error) {
	b, err := chaincode.ParseBid(bid)
	if err != nil {
		return nil, err
	}
	return chaincode.SubmitBid(fabricState{ctx}, migrationID, b)
}

// Decide picks the destination; see the package function.
func (c *Contract) Decide(ctx contractapi.TransactionContextInterface, migrationID string) (*chaincode.Migration, error) {
	return chaincode.Decide(fabricState{ctx}, migrationID)
}

// ReportReady is called by the destination once the service runs there.
func (c *Contract) ReportReady(ctx contractapi.TransactionContextInterface, migrationID, clusterID string) (*chaincode.Migration, error) {
	return chaincode.ReportReady(fabricState{ctx}, migrationID, clusterID)
}

// ReportFailed is called by a destination that could not run the service.
func (c *Contract) ReportFailed(ctx contractapi.TransactionContextInterface, migrationID, clusterID, reason string) (*chaincode.Migration, error) {
	return chaincode.ReportFailed(fabricState{ctx}, migrationID, clusterID, reason)
}

// Complete is called by the source once it has handed the service over.
func (c *Contract) Complete(ctx contractapi.TransactionContextInterface, migrationID string) (*chaincode.Migration, error) {
	return chaincode.Complete(fabricState{ctx}, migrationID)
}

// Abort is called by the source to give up a migration.
func (c *Contract) Abort(ctx contractapi.TransactionContextInterface, migrationID, reason string) (*chaincode.Migration, error) {
	return chaincode.Abort(fabricState{ctx}, migrationID, reason)
}

// InitLedger takes a LedgerConfig as JSON: Fabric's init transaction names the admin MSP.
func (c *Contract) InitLedger(ctx contractapi.TransactionContextInterface, config string) (*chaincode.LedgerConfig, error) {
	cfg, err := chaincode.ParseLedgerConfig(config)
	if err != nil {
		return nil, err
	}
	return chaincode.InitLedger(fabricState{ctx}, cfg)
}

// AdmitCluster takes an AdmissionInput as JSON: the admin admits, a member votes.
func (c *Contract) AdmitCluster(ctx contractapi.TransactionContextInterface, admission string) (*chaincode.Admission, error) {
	a, err := chaincode.ParseAdmission(admission)
	if err != nil {
		return nil, err
	}
	return chaincode.AdmitCluster(fabricState{ctx}, a)
}

// RemoveCluster ends a cluster's membership.
func (c *Contract) RemoveCluster(ctx contractapi.TransactionContextInterface, clusterID, reason string) (*chaincode.Admission, error) {
	return chaincode.RemoveCluster(fabricState{ctx}, clusterID, reason)
}

// ExpireMigration ends a migration left open past its deadline and grace.
func (c *Contract) ExpireMigration(ctx contractapi.TransactionContextInterface, migrationID string) (*chaincode.Migration, error) {
	return chaincode.ExpireMigration(fabricState{ctx}, migrationID)
}

// CompactMigration deletes a finished migration after the retention window.
func (c *Contract) CompactMigration(ctx contractapi.TransactionContextInterface, migrationID string) (*chaincode.Finished, error) {
	return chaincode.CompactMigration(fabricState{ctx}, migrationID)
}

// MarkClusterDead marks a cluster silent past the ledger's dead-after window dead.
func (c *Contract) MarkClusterDead(ctx contractapi.TransactionContextInterface, clusterID string) (*chaincode.Cluster, error) {
	return chaincode.MarkClusterDead(fabricState{ctx}, clusterID)
}

// RehomeService moves a service homed at a dead cluster back to its migration's source.
func (c *Contract) RehomeService(ctx contractapi.TransactionContextInterface, origin string) (*chaincode.Home, error) {
	return chaincode.RehomeService(fabricState{ctx}, origin)
}

// GetHome returns where the service of an origin runs.
func (c *Contract) GetHome(ctx contractapi.TransactionContextInterface, origin string) (*chaincode.Home, error) {
	return chaincode.GetHome(fabricState{ctx}, origin)
}

// ListHomes returns every service's home, by origin.
func (c *Contract) ListHomes(ctx contractapi.TransactionContextInterface) ([]*chaincode.Home, error) {
	return chaincode.ListHomes(fabricState{ctx})
}

// GetLedgerConfig returns the ledger's configuration.
func (c *Contract) GetLedgerConfig(ctx contractapi.TransactionContextInterface) (*chaincode.LedgerConfig, error) {
	return chaincode.GetLedgerConfig(fabricState{ctx})
}

// GetAdmission returns a cluster id's admission.
func (c *Contract) GetAdmission(ctx contractapi.TransactionContextInterface, clusterID string) (*chaincode.Admission, error) {
	return chaincode.GetAdmission(fabricState{ctx}, clusterID)
}

// ListAdmissions returns every admission, by cluster id.
func (c *Contract) ListAdmissions(ctx contractapi.TransactionContextInterface) ([]*chaincode.Admission, error) {
	return chaincode.ListAdmissions(fabricState{ctx})
}

// ListFinishedMigrations returns the final migrations not compacted yet, by id.
func (c *Contract) ListFinishedMigrations(ctx contractapi.TransactionContextInterface) ([]chaincode.Finished, error) {
	return chaincode.ListFinishedMigrations(fabricState{ctx})
}

// GetCluster returns one cluster.
func (c *Contract) GetCluster(ctx contractapi.TransactionContextInterface, id string) (*chaincode.Cluster, error) {
	return chaincode.GetCluster(fabricState{ctx}, id)
}

// ListClusters returns every cluster, by id.
func (c *Contract) ListClusters(ctx contractapi.TransactionContextInterface) ([]*chaincode.Cluster, error) {
	return chaincode.ListClusters(fabricState{ctx})
}

// GetMigration returns one migration with its bids.
func (c *Contract) GetMigration(ctx contractapi.TransactionContextInterface, id string) (*chaincode.Migration, error) {
	return chaincode.GetMigration(fabricState{ctx}, id)
}

// ListOpenMigrations returns the migrations that are not final, by id.
func (c *Contract) ListOpenMigrations(ctx contractapi.TransactionContextInterface) ([]*chaincode.Migration, error) {
	return chaincode.ListOpenMigrations(fabricState{ctx})
}

// fabricState adapts a Fabric transaction context to State.
type fabricState struct {
	ctx contractapi.TransactionContextInterface
}

func (s fabricState) GetState(key string) ([]byte, error) { return s.ctx.GetStub().GetState(key) }
func (s fabricState) PutState(key string, value []byte) error {
	return s.ctx.GetStub().PutState(key, value)
}
func (s fabricState) DelState(key string) error { return s.ctx.GetStub().DelState(key) }
func (s fabricState) TxID() string              { return s.ctx.GetStub().GetTxID() }
func (s fabricState) SetEvent(name string, payload []byte) error {
	return s.ctx.GetStub().SetEvent(name, payload)
}

func (s fabricState) RangeState(startKey, endKey string, fn func(key string, value []byte) error) error {
	return s.rangeIterator(s.ctx.GetStub().GetStateByRange(startKey, endKey))(fn)
}

func (fabricState) rangeIterator(it shim.StateQueryIteratorInterface, err error) func(fn func(key string, value []byte) error) error {
	return func(fn func(key string, value []byte) error) error {
		if err != nil {
			return err
		}
		defer it.Close()
		for it.HasNext() {
			kv, err := it.Next()
			if err != nil {
				return err
			}
			if err := fn(kv.Key, kv.Value); err != nil {
				return err
			}
		}
		return nil
	}
}

func (s fabricState) TxTimestamp() (time.Time, error) {
	ts, err := s.ctx.GetStub().GetTxTimestamp()
	if err != nil {
		return time.Time{}, err
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, fmt.Errorf("transaction timestamp: %w", err)
	}
	return ts.AsTime(), nil
}

func (s fabricState) CallerMSPID() (string, error) {
	ci := s.ctx.GetClientIdentity()
	if ci == nil {
		return "", fmt.Errorf("no client identity in the transaction")
	}
	return ci.GetMSPID()
}
