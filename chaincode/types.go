// Package chaincode is the migration ledger's contract: a state machine that records edge
// clusters, migration requests and bids, and picks each migration's destination
// deterministically. The logic is written once against State, so the same code runs inside
// Hyperledger Fabric (through package chaincode/contract and fabric-contract-api-go) and
// inside the embedded ledger of package ledger/embedded.
package chaincode

import "time"

// ContractName is the contract's name on the channel; it is also the chaincode's default
// contract, so clients may call its transactions without the "edgemigrate:" prefix.
const ContractName = "edgemigrate"

// Migration states. A migration starts Proposed; Completed, Aborted and Rejected are final.
const (
	StateProposed  = "Proposed"
	StateDecided   = "Decided"
	StateReady     = "Ready"
	StateCompleted = "Completed"
	StateAborted   = "Aborted"
	// StateRejected: no cluster that bid can host the service; it stays at the source.
	StateRejected = "Rejected"
)

// Migration reasons, as in the Migration CRD.
const (
	ReasonClientMobility        = "ClientMobility"
	ReasonInsufficientResources = "InsufficientResources"
	ReasonManual                = "Manual"
)

// Event names: one chaincode event per transition, named for it.
const (
	EventClusterRegistered  = "ClusterRegistered"
	EventCapacityReported   = "CapacityReported"
	EventMigrationProposed  = "MigrationProposed"
	EventBidSubmitted       = "BidSubmitted"
	EventMigrationDecided   = "MigrationDecided"
	EventMigrationReady     = "MigrationReady"
	EventDestinationFailed  = "DestinationFailed"
	EventMigrationCompleted = "MigrationCompleted"
	EventMigrationAborted   = "MigrationAborted"
	// EventMigrationExpired: a member ended a migration left open past its deadline and
	// ExpiryGrace; its state is Aborted.
	EventMigrationExpired = "MigrationExpired"
	// EventMigrationCompacted: a finished migration's state was deleted after RetentionWindow.
	EventMigrationCompacted = "MigrationCompacted"
	EventLedgerInitialised  = "LedgerInitialised"
	// EventAdmissionVoted: a member voted to admit a cluster that a majority has not admitted yet.
	EventAdmissionVoted  = "AdmissionVoted"
	EventClusterAdmitted = "ClusterAdmitted"
	EventClusterRemoved  = "ClusterRemoved"
	// EventClusterDead: a member marked a cluster dead, silent longer than the ledger's
	// dead-after window; EventClusterRevived: a dead cluster registered or reported again.
	EventClusterDead    = "ClusterDead"
	EventClusterRevived = "ClusterRevived"
	// EventServiceRehomed: the service of an origin went back to the source of the
	// migration that had put it on a cluster now dead.
	EventServiceRehomed = "ServiceRehomed"
)

// Time rules. Every transaction is stamped by the client that submits it (on Fabric, the
// proposal's timestamp), so no timestamp may let its signer decide anything for others.
const (
	// LiveWindow is how recently a cluster must have registered or reported capacity to
	// count as live: it may bid, and Decide waits for its bid (or the deadline).
	LiveWindow = 2 * time.Minute
	// MaxClockSkew is the difference between members' clocks the contract tolerates: a
	// cluster's liveness lasts this much longer, and expiry and compaction wait this much
	// longer than their windows, so a member whose clock is behind is not cut off by
	// another's that is ahead.
	MaxClockSkew = 30 * time.Second
	// ExpiryGrace is how long after its deadline a migration that is still Proposed or
	// Decided may be expired by any member.
	ExpiryGrace = 10 * time.Minute
	// RetentionWindow is how long a finished migration stays on the ledger before any
	// member may compact it.
	RetentionWindow = 24 * time.Hour
	// DefaultDeadAfter is the dead-after window of a ledger configured without one.
	DefaultDeadAfter = LiveWindow
	// MaxDeadAfterSeconds bounds LedgerConfig.DeadAfterSeconds (a day).
	MaxDeadAfterSeconds = 86400
	// MaxBidTimeoutMillis bounds Proposal.BidTimeoutMillis (10 minutes).
	MaxBidTimeoutMillis = 600_000
)

// Location is a point on Earth in decimal degrees.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Resources is an amount of compute: capacity, free resources or a workload's demand.
type Resources struct {
	CPUMilli       int64 `json:"cpuMilli"`
	MemoryBytes    int64 `json:"memoryBytes"`
	GPUSlots       int64 `json:"gpuSlots"`
	GPUMemoryBytes int64 `json:"gpuMemoryBytes"`
}

// ClusterRegistration is RegisterCluster's argument.
type ClusterRegistration struct {
	ID              string    `json:"id"`
	Location        Location  `json:"location"`
	CoverageRadiusM float64   `json:"coverageRadiusM"`
	Capacity        Resources `json:"capacity"`
	// Endpoint is where the cluster's client locator answers (an http or https URL):
	// where a source sends a migrated service's clients.
	Endpoint string `json:"endpoint,omitempty" metadata:",optional"`
}

// Cluster is a registered edge cluster, bound to the MSP that registered it.
type Cluster struct {
	ID              string    `json:"id"`
	MSPID           string    `json:"mspId"`
	Location        Location  `json:"location"`
	CoverageRadiusM float64   `json:"coverageRadiusM"`
	Capacity        Resources `json:"capacity"`
	Endpoint        string    `json:"endpoint,omitempty" metadata:",optional"`
	Free            Resources `json:"free"`
	RegisteredAt    string    `json:"registeredAt"`
	LastReportAt    string    `json:"lastReportAt"`
	// Dead is set by MarkClusterDead, cleared when the cluster registers or reports again.
	Dead      bool   `json:"dead,omitempty" metadata:",optional"`
	DeadSince string `json:"deadSince,omitempty" metadata:",optional"`
}

// Home is where the ledger says the service of an origin runs: set when a migration of it
// completes, moved back to that migration's source when its destination is dead.
type Home struct {
	// Origin is WorkloadMetadata.Origin: "<cluster>/<namespace>/<uid>" of the first copy.
	Origin  string `json:"origin"`
	Cluster string `json:"cluster"`
	// MigrationID and Source are the completed migration that put the service on Cluster;
	// empty once re-homed.
	MigrationID string `json:"migrationId,omitempty" metadata:",optional"`
	Source      string `json:"source,omitempty" metadata:",optional"`
	// RehomedFrom is the dead cluster the service left, when it was re-homed.
	RehomedFrom string `json:"rehomedFrom,omitempty" metadata:",optional"`
	Since       string `json:"since"`
}

// LedgerConfig is InitLedger's argument: who governs membership.
type LedgerConfig struct {
	// AdminMSP admits and removes clusters on its own; without it, admission takes a
	// majority of the member MSPs.
	AdminMSP string `json:"adminMsp"`
	// DeadAfterSeconds is how long a cluster may stay silent before any member may mark it
	// dead; 0 means DefaultDeadAfter.
	DeadAfterSeconds int64 `json:"deadAfterSeconds,omitempty" metadata:",optional"`
}

// AdmissionInput is AdmitCluster's argument: cluster id ClusterID may be registered by MSPID.
type AdmissionInput struct {
	ClusterID string `json:"clusterId"`
	MSPID     string `json:"mspId"`
}

// Admission is a cluster id granted to an MSP, or, while votes gather, the votes for it.
type Admission struct {
	ClusterID string `json:"clusterId"`
	// MSPID is the MSP admitted, or while pending the one of the last vote.
	MSPID    string `json:"mspId"`
	Admitted bool   `json:"admitted"`
	// Votes are the member MSPs' votes while pending, one per voter (a later one replaces
	// it), sorted by voter: a vote for another MSP does not block the others.
	Votes []Vote `json:"votes,omitempty" metadata:",optional"`
	// AdmittedBy is the admin MSP, or "majority".
	AdmittedBy string `json:"admittedBy,omitempty" metadata:",optional"`
	TxID       string `json:"txId"`
	Time       string `json:"time"`
}

// Vote is a member MSP's vote to admit a cluster id for an MSP.
type Vote struct {
	Voter string `json:"voter"`
	MSPID string `json:"mspId"`
}

// WorkloadMetadata describes the running service being migrated: what bidders need to
// evaluate themselves, never the manifest (that travels off the ledger, as a bundle whose
// digest the proposal carries).
type WorkloadMetadata struct {
	SourceIP    string `json:"sourceIP,omitempty" metadata:",optional"`
	ContainerID string `json:"containerID,omitempty" metadata:",optional"`
	// Image and ImageSizeBytes are the first container's, as the seed shares them.
	Image          string `json:"image"`
	ImageSizeBytes int64  `json:"imageSizeBytes"`
	// Images are every container's image (init containers included), in pod spec order.
	Images []Image `json:"images,omitempty" metadata:",optional"`
	// CPUMilli..GPUMemoryBytes are the demand of one replica.
	CPUMilli       int64 `json:"cpuMilli"`
	MemoryBytes    int64 `json:"memoryBytes"`
	GPUSlots       int64 `json:"gpuSlots"`
	GPUMemoryBytes int64 `json:"gpuMemoryBytes"`
	// Replicas is how many replicas run (1 for a Pod).
	Replicas int32 `json:"replicas,omitempty" metadata:",optional"`
	// Requires names what must already exist at the destination: it never travels.
	Requires Requirements `json:"requires" metadata:",optional"`
	// Origin is "<cluster>/<namespace>/<uid>" of the service's first copy: a destination
	// takes over a parked copy only for the same origin.
	Origin string `json:"origin,omitempty" metadata:",optional"`
}

// Image is one container image of a workload.
type Image struct {
	Name string `json:"name"`
	// SizeBytes is 0 when the source does not know it.
	SizeBytes int64 `json:"sizeBytes,omitempty" metadata:",optional"`
}

// Requirements are objects a workload references that stay where they are: the destination
// hosts the service only if they exist there (names only, in the workload's namespace).
type Requirements struct {
	// Secrets are referenced by volumes, env, envFrom or imagePullSecrets; sorted.
	Secrets        []string `json:"secrets,omitempty" metadata:",optional"`
	ServiceAccount string   `json:"serviceAccount,omitempty" metadata:",optional"`
	PriorityClass  string   `json:"priorityClass,omitempty" metadata:",optional"`
	RuntimeClass   string   `json:"runtimeClass,omitempty" metadata:",optional"`
}

// Proposal is ProposeMigration's argument.
type Proposal struct {
	ID string `json:"id"`
	// Source is the id of the cluster that runs the service now.
	Source string `json:"source"`
	// Workload is kind/namespace/name of the owner to migrate.
	Workload string           `json:"workload"`
	Metadata WorkloadMetadata `json:"metadata"`
	// BundleDigest is "sha256:" and the hex SHA-256 of the service bundle the source serves
	// to the chosen destination (over mutual TLS, at its public endpoint).
	BundleDigest   string    `json:"bundleDigest,omitempty" metadata:",optional"`
	Reason         string    `json:"reason"`
	ClientLocation *Location `json:"clientLocation,omitempty" metadata:",optional"`
	// BidTimeoutMillis is how long bids are awaited, 1 to MaxBidTimeoutMillis: the ledger
	// sets the migration's Deadline to the proposal's own timestamp plus this, so that
	// every deadline is in ledger time rather than in one cluster's clock.
	BidTimeoutMillis int64 `json:"bidTimeoutMillis"`
}

// BidInput is SubmitBid's argument: a cluster's self-evaluation for a migration.
type BidInput struct {
	ClusterID    string  `json:"clusterId"`
	CanHost      bool    `json:"canHost"`
	CoversClient bool    `json:"coversClient"`
	Score        float64 `json:"score"`
	// Reason says why the bidder cannot host (a missing Secret, its policy, no room).
	Reason string `json:"reason,omitempty" metadata:",optional"`
}

// Bid is a recorded bid.
type Bid struct {
	ClusterID    string  `json:"clusterId"`
	CanHost      bool    `json:"canHost"`
	CoversClient bool    `json:"coversClient"`
	Score        float64 `json:"score"`
	Reason       string  `json:"reason,omitempty" metadata:",optional"`
	TxID         string  `json:"txId"`
	SubmittedAt  string  `json:"submittedAt"`
}

// Decision is the chosen destination.
type Decision struct {
	Destination string  `json:"destination"`
	Score       float64 `json:"score"`
	TxID        string  `json:"txId"`
	DecidedAt   string  `json:"decidedAt"`
}

// HistoryEntry records one transition of a migration.
type HistoryEntry struct {
	Event string `json:"event"`
	State string `json:"state"`
	MSPID string `json:"mspId"`
	TxID  string `json:"txId"`
	Time  string `json:"time"`
	Note  string `json:"note,omitempty" metadata:",optional"`
}

// Migration is a migration request and everything decided about it.
type Migration struct {
	ID             string           `json:"id"`
	Source         string           `json:"source"`
	Workload       string           `json:"workload"`
	Metadata       WorkloadMetadata `json:"metadata"`
	BundleDigest   string           `json:"bundleDigest,omitempty" metadata:",optional"`
	Reason         string           `json:"reason"`
	ClientLocation *Location        `json:"clientLocation,omitempty" metadata:",optional"`
	// Deadline (RFC 3339) is the proposal's timestamp plus its BidTimeoutMillis: after it
	// the source may decide without waiting for every live cluster.
	Deadline string `json:"deadline"`
	State    string `json:"state"`
	// StateReason says why a migration was rejected or aborted.
	StateReason string `json:"stateReason,omitempty" metadata:",optional"`
	// Bids are kept sorted by cluster id, one per cluster.
	Bids []Bid `json:"bids,omitempty" metadata:",optional"`
	// Excluded are clusters that reported failure; they are never chosen again.
	Excluded []string       `json:"excluded,omitempty" metadata:",optional"`
	Decision *Decision      `json:"decision,omitempty" metadata:",optional"`
	History  []HistoryEntry `json:"history"`
}

// Final reports whether the migration can no longer change.
func (m *Migration) Final() bool {
	switch m.State {
	case StateCompleted, StateAborted, StateRejected:
		return true
	}
	return false
}

// Event is the payload of every chaincode event.
type Event struct {
	Type        string `json:"type"`
	ClusterID   string `json:"clusterId,omitempty"`
	MigrationID string `json:"migrationId,omitempty"`
	// State is the migration's state after the transition.
	State       string `json:"state,omitempty"`
	Destination string `json:"destination,omitempty"`
	// Origin names the service of a ServiceRehomed event.
	Origin string `json:"origin,omitempty"`
	MSPID  string `json:"mspId"`
	TxID   string `json:"txId"`
	Time   string `json:"time"`
}
