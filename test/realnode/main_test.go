// Package realnode runs containers: end-to-end tests on local clusters whose nodes include
// real ones (a kubelet, containerd and kube-proxy each, pulling the images of `make images`
// from the cluster's registry). They need root and Debian's containerd, runc, CNI plugins and
// iptables; without them they skip, saying so, unless EDGEMIGRATE_REQUIRE_REAL_NODES=1.
package realnode

import (
	"testing"

	schedconfig "k8s.io/kube-scheduler/config/v1"

	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// shared: two clusters with a real node each, at once, as two edge clusters of the demo.
var shared clustertest.Shared

func TestMain(m *testing.M) {
	clustertest.Main(m, 2, localcluster.Options{
		Name:      "realnode",
		Scheduler: &schedconfig.KubeSchedulerConfiguration{},
		RealNodes: 1,
	}, &shared)
}
