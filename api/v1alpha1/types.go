package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons a migration is started, as on the ledger.
const (
	ReasonClientMobility        = "ClientMobility"
	ReasonInsufficientResources = "InsufficientResources"
	ReasonManual                = "Manual"
)

// Roles a cluster plays in a migration.
const (
	// RoleSource: the cluster runs the service and wants it moved.
	RoleSource = "Source"
	// RoleDestination: the ledger picked this cluster to run the service.
	RoleDestination = "Destination"
)

// Phases. A source migration goes Pending → Proposed → Decided → Ready → Completed, or ends
// Failed (no cluster can host it: the service stays) or Aborted (deadline; the service stays).
// A destination migration goes Creating → Ready → Completed, or Failed (it could not run the
// service and gave it back to the ledger) or Aborted (the source gave up).
const (
	PhasePending   = "Pending"
	PhaseProposed  = "Proposed"
	PhaseDecided   = "Decided"
	PhaseCreating  = "Creating"
	PhaseReady     = "Ready"
	PhaseCompleted = "Completed"
	PhaseFailed    = "Failed"
	PhaseAborted   = "Aborted"
)

// Kinds of workload a migration moves.
const (
	KindDeployment = "Deployment"
	KindPod        = "Pod"
)

// Migration moves one workload (a Deployment or a bare Pod) of its namespace to another edge
// cluster. The source cluster's descheduler creates one when a trigger fires (a user may
// create one too, reason Manual); the destination's descheduler creates its own to track its
// part, named after the ledger id.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mig
type Migration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MigrationSpec   `json:"spec"`
	Status MigrationStatus `json:"status,omitempty"`
}

// MigrationSpec says what to move and why.
type MigrationSpec struct {
	// Workload is the Deployment or Pod to move, in the Migration's namespace.
	Workload WorkloadReference `json:"workload"`
	// Reason is ClientMobility, InsufficientResources or Manual.
	Reason string `json:"reason"`
	// ClientID is the connected client the workload serves, if any.
	ClientID string `json:"clientID,omitempty"`
	// ClientLocation is where the client was when the migration started.
	ClientLocation *Location `json:"clientLocation,omitempty"`
	// LedgerID is the migration's id on the ledger. The source derives it from the object's
	// UID; a destination migration carries the source's.
	LedgerID string `json:"ledgerID,omitempty"`
}

// WorkloadReference names a workload in the Migration's namespace.
type WorkloadReference struct {
	// Kind is Deployment or Pod.
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Location is a point on Earth in decimal degrees.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// MigrationStatus is what the descheduler knows and has done.
type MigrationStatus struct {
	// Role is Source or Destination.
	Role string `json:"role,omitempty"`
	// Phase: see the Phase constants.
	Phase string `json:"phase,omitempty"`
	// Reason and Message say why the migration is in its phase, for people.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// LedgerID is the migration's id on the ledger.
	LedgerID string `json:"ledgerID,omitempty"`
	// Source and Destination are cluster ids.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`
	// DestinationEndpoint is where the destination's locator answers clients.
	DestinationEndpoint string `json:"destinationEndpoint,omitempty"`
	// Replicas is how many replicas moved (1 for a Pod).
	Replicas int32 `json:"replicas,omitempty"`
	// Bids as recorded on the ledger, sorted by cluster.
	Bids []Bid `json:"bids,omitempty"`
	// Excluded are destinations that failed and will not be chosen again.
	Excluded []string `json:"excluded,omitempty"`
	// Timestamps of each phase reached.
	StartTime      *metav1.Time `json:"startTime,omitempty"`
	ProposedTime   *metav1.Time `json:"proposedTime,omitempty"`
	DecidedTime    *metav1.Time `json:"decidedTime,omitempty"`
	ReadyTime      *metav1.Time `json:"readyTime,omitempty"`
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Conditions: SourceRemoved, and others for people.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Bid is one cluster's self-evaluation, as recorded on the ledger.
type Bid struct {
	Cluster      string `json:"cluster"`
	CanHost      bool   `json:"canHost"`
	CoversClient bool   `json:"coversClient"`
	// Score is 0–100, higher is better.
	Score string `json:"score"`
}

// Final reports whether the migration can no longer change.
func (m *Migration) Final() bool {
	switch m.Status.Phase {
	case PhaseCompleted, PhaseFailed, PhaseAborted:
		return true
	}
	return false
}

// MigrationList is a list of Migrations.
type MigrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Migration `json:"items"`
}
