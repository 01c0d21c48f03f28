package api

// Group is edgemigrate's API group: CRDs, annotation and label prefixes.
const Group = "edgemigrate.io"

// Opt-in, set by users.
const (
	// LabelNamespaceEnabled="true" on a namespace opts every pod in it in.
	LabelNamespaceEnabled = Group + "/enabled"
	// AnnotationMigrate="true" opts a pod in, "false" opts it out (overriding the namespace).
	AnnotationMigrate = Group + "/migrate"
	// AnnotationGPUMemory is the pod's declared GPU working set, a quantity such as "4Gi".
	// On Jetson it comes out of the same memory as the CPU's.
	AnnotationGPUMemory = Group + "/gpu-memory"
	// AnnotationClientID binds a pod to the connected client (car) it serves.
	AnnotationClientID = Group + "/client-id"
)

// Written by the webhook.
const (
	// AnnotationSourceCluster is the id of the cluster where the pod was admitted.
	AnnotationSourceCluster = Group + "/source-cluster"
	// AnnotationWorkload is kind/namespace/name of the owner that would be migrated.
	AnnotationWorkload = Group + "/workload"
	// AnnotationDemand is the pod's demand: cpu, memory, gpu slots, gpu-memory.
	AnnotationDemand = Group + "/demand"
)

// Written on migrated objects.
const (
	AnnotationMigrationID  = Group + "/migration-id"
	AnnotationMigratedFrom = Group + "/migrated-from"
	AnnotationMigratedTo   = Group + "/migrated-to"
)

// SchedulerName is the name of the second scheduler that consults the extender.
const SchedulerName = "edgemigrate-scheduler"

// SchedulerPluginName is the Jetson plugin's name in edgemigrate-scheduler's profiles (plugin
// mode); the chart's edgemigrate.schedulerPlugin says the same.
const SchedulerPluginName = "JetsonUnifiedMemory"

// Names of edgemigrate's own objects.
const (
	// SystemNamespace is where edgemigrate runs by default.
	SystemNamespace = "edgemigrate-system"
	// ClientTokensSecret holds, in the descheduler's namespace, one bearer token per client
	// id: the locator accepts a client's location only with its token.
	ClientTokensSecret = "edgemigrate-client-tokens"
)
