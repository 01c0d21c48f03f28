package api

// Names of the trust between clusters: what travels with a service, and the identity and
// policy under which a destination hosts a peer's service.
const (
	// LabelMigrationID is on every object a destination created from a migration's bundle,
	// so that giving the migration back removes exactly those.
	LabelMigrationID = Group + "/migration-id"
	// AnnotationOrigin is "<cluster>/<namespace>/<uid>": where the service was first created
	// and its original UID. It travels in the bundle and is written on every copy and on a
	// parked source, so a parked copy is scaled up only for its own service.
	AnnotationOrigin = Group + "/origin"

	// BundlePath is where a source serves a migration's bundle on its public endpoint, over
	// mutual TLS, to the destination the ledger chose and no one else.
	BundlePath = "/v1/migrations/{id}/bundle"

	// HostServiceAccount is the ServiceAccount, one per hosted namespace, that the
	// descheduler impersonates to create a peer's objects; a RoleBinding of the same name
	// binds it to HostClusterRole in that namespace only.
	HostServiceAccount = "edgemigrate-host"
	// HostClusterRole holds exactly the kinds a bundle may contain.
	HostClusterRole = "edgemigrate-host"
	// HostValidatingPolicy is the ValidatingAdmissionPolicy (and its binding) that enforces
	// the hosting rules inside the API server for HostServiceAccount.
	HostValidatingPolicy = "edgemigrate-hosted-workloads"

	// ClusterIdentitySecret holds the cluster's identity certificate (tls.crt, tls.key) and
	// the CA bundle it trusts peers by (ca.crt).
	ClusterIdentitySecret = "edgemigrate-cluster-identity"
	// PolicyConfigMap holds the destination policy (key policy.yaml) the chart renders.
	PolicyConfigMap = "edgemigrate-policy"
)
