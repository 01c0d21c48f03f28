package api

// The edge gateway: each cluster's public endpoint proxies a client's requests to its
// service, ANY /v1/clients/{id}/service/..., or redirects them to the cluster that runs it.
const (
	// AnnotationServicePort on a pod names the container port (name or number) the gateway
	// sends its client's requests to; without it, the container port named ServicePortName.
	AnnotationServicePort = Group + "/service-port"
	// ServicePortName is the container port the gateway uses by default.
	ServicePortName = "http"
	// HeaderCluster, on a gateway's answer, is the id of the cluster whose pod answered.
	HeaderCluster = "X-Edgemigrate-Cluster"
	// HeaderPod, on a gateway's answer, is namespace/name of the pod that answered.
	HeaderPod = "X-Edgemigrate-Pod"
	// EnvCluster is the environment variable in which an inference service finds the id
	// of the cluster it runs in; its manifest sets it from the pod's AnnotationSourceCluster
	// (the cluster that admitted the pod) with the downward API.
	EnvCluster = "EDGEMIGRATE_CLUSTER"
)
