package api

// One copy of each service, always: the reasons a Migration ends with and the
// Events a descheduler records when it keeps a second copy from serving.
const (
	// ReasonAlreadyMigrating: a Migration of a workload that already has an open one (here,
	// as its source or as an arriving destination) ends Failed with this reason, naming the
	// other.
	ReasonAlreadyMigrating = "AlreadyMigrating"
	// ReasonNotMigratable: the workload cannot move at all (its data stays, or it is a pod
	// that its controller would recreate here).
	ReasonNotMigratable = "NotMigratable"
	// ReasonMigratedAway: the workload is parked here (AnnotationMigratedTo): the service
	// runs in another cluster, and a Migration of it starts there.
	ReasonMigratedAway = "MigratedAway"
)

// Event reasons.
const (
	// EventParkedScaleUp (Warning): a parked Deployment, scaled to zero by a migration, was
	// scaled up by someone else (by hand, GitOps) and was scaled back to zero.
	EventParkedScaleUp = "ParkedScaleUp"
	// EventDestinationDead (Warning): the cluster a service was moved to is dead on the
	// ledger; the source takes the service back.
	EventDestinationDead = "DestinationDead"
	// EventRehomed (Normal): the service runs here again: its parked copy was scaled back up,
	// or its Pod recreated from the bundle the source kept.
	EventRehomed = "Rehomed"
	// EventCannotRehome (Warning): the service is homed here again but nothing here can run
	// it (a bare Pod whose bundle is gone).
	EventCannotRehome = "CannotRehome"
	// EventSuperseded (Warning): a copy this cluster hosted as a destination was removed: the
	// ledger homes the service in another cluster (this one was dead or partitioned).
	EventSuperseded = "Superseded"
)
