package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MigrationReason is why a migration started, as on the ledger.
//
// +kubebuilder:validation:Enum=ClientMobility;InsufficientResources;Manual
type MigrationReason string

// Reasons a migration is started.
const (
	ReasonClientMobility        MigrationReason = "ClientMobility"
	ReasonInsufficientResources MigrationReason = "InsufficientResources"
	ReasonManual                MigrationReason = "Manual"
)

// MigrationRole is the part a cluster plays in a migration.
//
// +kubebuilder:validation:Enum=Source;Destination
type MigrationRole string

// Roles a cluster plays in a migration.
const (
	// RoleSource: the cluster runs the service and wants it moved.
	RoleSource MigrationRole = "Source"
	// RoleDestination: the ledger picked this cluster to run the service.
	RoleDestination MigrationRole = "Destination"
)

// MigrationPhase is where a migration stands. A source migration goes Pending → Proposed →
// Decided → Ready → Completed, or ends Failed (no cluster can host it: the service stays) or
// Aborted (deadline; the service stays). A destination migration goes Creating → Ready →
// Completed, or Failed (it could not run the service and gave it back to the ledger) or
// Aborted (the source gave up).
//
// +kubebuilder:validation:Enum=Pending;Proposed;Decided;Creating;Ready;Completed;Failed;Aborted
type MigrationPhase string

// Phases.
const (
	PhasePending   MigrationPhase = "Pending"
	PhaseProposed  MigrationPhase = "Proposed"
	PhaseDecided   MigrationPhase = "Decided"
	PhaseCreating  MigrationPhase = "Creating"
	PhaseReady     MigrationPhase = "Ready"
	PhaseCompleted MigrationPhase = "Completed"
	PhaseFailed    MigrationPhase = "Failed"
	PhaseAborted   MigrationPhase = "Aborted"
)

// Condition types on Migrations.
const (
	// ConditionReady is True while a Ready copy of the workload runs at the destination
	// (phases Ready and Completed).
	ConditionReady = "Ready"
	// ConditionSourceRemoved is True once the source's copy is gone.
	ConditionSourceRemoved = "SourceRemoved"
	// ConditionDestinationVerified is True once a request through the destination's public
	// endpoint reached the service there: only then does the source remove its copy.
	ConditionDestinationVerified = "DestinationVerified"
	// ConditionLedgerReachable is False while this cluster cannot reach the ledger: the
	// migration waits (its source keeps its copy) and goes on when the ledger answers.
	ConditionLedgerReachable = "LedgerReachable"
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
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mig,categories=edgemigrate
// +kubebuilder:printcolumn:name=Role,type=string,JSONPath=`.status.role`
// +kubebuilder:printcolumn:name=Phase,type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name=Reason,type=string,JSONPath=`.spec.reason`
// +kubebuilder:printcolumn:name=Workload,type=string,JSONPath=`.spec.workload.name`,priority=1
// +kubebuilder:printcolumn:name=Destination,type=string,JSONPath=`.status.destination`
// +kubebuilder:printcolumn:name=Message,type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name=Age,type=date,JSONPath=`.metadata.creationTimestamp`
type Migration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MigrationSpec `json:"spec"`
	// +optional
	Status MigrationStatus `json:"status,omitempty"`
}

// MigrationSpec says what to move and why.
//
// +kubebuilder:validation:XValidation:rule="self.reason != 'ClientMobility' || has(self.clientLocation)",message="reason ClientMobility needs clientLocation"
type MigrationSpec struct {
	// Workload is the Deployment or Pod to move, in the Migration's namespace.
	// +required
	Workload WorkloadReference `json:"workload"`
	// Reason is ClientMobility, InsufficientResources or Manual.
	// +required
	Reason MigrationReason `json:"reason"`
	// ClientID is the connected client the workload serves, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ClientID string `json:"clientID,omitempty"`
	// ClientLocation is where the client was when the migration started.
	// +optional
	ClientLocation *Location `json:"clientLocation,omitempty"`
	// LedgerID is the migration's id on the ledger. The source derives it from the object's
	// UID; a destination migration carries the source's.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="ledgerID is immutable"
	LedgerID string `json:"ledgerID,omitempty"`
}

// WorkloadReference names a workload in the Migration's namespace.
type WorkloadReference struct {
	// Kind is Deployment or Pod.
	// +required
	// +kubebuilder:validation:Enum=Deployment;Pod
	Kind string `json:"kind"`
	// Name is the workload's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Location is a point on Earth in decimal degrees.
type Location struct {
	// +required
	// +kubebuilder:validation:Minimum=-90
	// +kubebuilder:validation:Maximum=90
	Lat float64 `json:"lat"`
	// +required
	// +kubebuilder:validation:Minimum=-180
	// +kubebuilder:validation:Maximum=180
	Lon float64 `json:"lon"`
}

// MigrationStatus is what the descheduler knows and has done.
type MigrationStatus struct {
	// ObservedGeneration is the spec generation the status was written for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Role is Source or Destination.
	// +optional
	Role MigrationRole `json:"role,omitempty"`
	// Phase: see MigrationPhase.
	// +optional
	Phase MigrationPhase `json:"phase,omitempty"`
	// Reason and Message say why the migration is in its phase, for people.
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// LedgerID is the migration's id on the ledger.
	// +optional
	LedgerID string `json:"ledgerID,omitempty"`
	// Source and Destination are cluster ids.
	// +optional
	Source string `json:"source,omitempty"`
	// +optional
	Destination string `json:"destination,omitempty"`
	// DestinationEndpoint is where the destination's locator answers clients.
	// +optional
	DestinationEndpoint string `json:"destinationEndpoint,omitempty"`
	// Replicas is how many replicas moved (1 for a Pod).
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// Bids as recorded on the ledger, sorted by cluster.
	// +optional
	// +listType=atomic
	Bids []Bid `json:"bids,omitempty"`
	// Excluded are destinations that failed and will not be chosen again.
	// +optional
	// +listType=atomic
	Excluded []string `json:"excluded,omitempty"`
	// Timestamps of each phase reached.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	ProposedTime *metav1.Time `json:"proposedTime,omitempty"`
	// +optional
	DecidedTime *metav1.Time `json:"decidedTime,omitempty"`
	// +optional
	ReadyTime *metav1.Time `json:"readyTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Conditions: Ready (a Ready copy runs at the destination) and SourceRemoved.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Bid is one cluster's self-evaluation, as recorded on the ledger.
type Bid struct {
	Cluster      string `json:"cluster"`
	CanHost      bool   `json:"canHost"`
	CoversClient bool   `json:"coversClient"`
	// Score is 0–100, higher is better.
	Score string `json:"score"`
	// Reason says why the cluster cannot host the service (a missing Secret, its policy,
	// no room), as it bid.
	// +optional
	Reason string `json:"reason,omitempty"`
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
//
// +kubebuilder:object:root=true
type MigrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Migration `json:"items"`
}
