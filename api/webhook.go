package api

// Written by the webhook, in addition to those in keys.go.
const (
	// AnnotationNotMigratable marks a pod whose owner edgemigrate will not move. Its value is
	// "<Kind>: <reason>", for example "DaemonSet: one pod per node, placed by the DaemonSet".
	// Its presence is what counts; the reason is for people.
	AnnotationNotMigratable = Group + "/not-migratable"
	// NotMigratablePVC is the reason of a workload whose pods mount a PersistentVolumeClaim:
	// its data stays in this cluster, and a copy elsewhere would start without it. The
	// webhook writes it; a source refuses such a workload whatever the trigger.
	NotMigratablePVC = "uses PersistentVolumeClaim data"
	// AnnotationImageSize is the total size in bytes (a decimal integer) of the pod's distinct
	// container images, as nodes' status.images report them. Written only when every image
	// is known, so that it is never an undercount of what a destination would pull.
	AnnotationImageSize = Group + "/image-size"
)

// LabelMigrate="false" on a pod opts it out like AnnotationMigrate="false", and also spares
// the webhook call: the MutatingWebhookConfiguration's objectSelector can only see labels.
const LabelMigrate = AnnotationMigrate
