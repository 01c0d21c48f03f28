// Package e2e tests the edgemigrate-scheduler build (plugin mode) as a cluster's
// kube-scheduler, configured as the chart's plugin mode says (schedtest.PluginConfig), with the scenarios the
// extender's tests run: the same placements, reasons and guarantees in both modes.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/edgemigrate/edgemigrate/extender/schedtest"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

var shared clustertest.Shared

// TestMain starts one cluster whose kube-scheduler is bin/edgemigrate-scheduler. Its
// periodic flush of waiting pods is an hour away, so a waiting pod comes back only through
// the plugin's queueing hints.
func TestMain(m *testing.M) {
	cfg, err := schedtest.PluginConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir, _, err := localcluster.TempBinDir(localcluster.SchedulerBinary, "--pod-max-in-unschedulable-pods-duration=1h")
	if err != nil {
		// Require skips, or fails when the tools are required, with this reason.
		shared.Err = err
		os.Exit(m.Run())
	}
	clustertest.Main(m, 1, localcluster.Options{Name: "plugin", BinDir: binDir, Scheduler: cfg}, &shared)
}

func env(t *testing.T) *schedtest.Env {
	return &schedtest.Env{Cluster: shared.Require(t)[0]}
}

func TestE2EPodsLandWhereTheFitModelSays(t *testing.T) {
	schedtest.PodsLandWhereTheFitModelSays(t, env(t))
}

func TestE2EBurstNeverOvercommits(t *testing.T) {
	schedtest.BurstNeverOvercommits(t, env(t))
}

func TestE2EOtherSchedulersPodsUntouched(t *testing.T) {
	schedtest.OtherSchedulersPodsUntouched(t, env(t))
}

func TestE2EWaitingPodScheduledWhenRoomFrees(t *testing.T) {
	schedtest.WaitingPodScheduledWhenRoomFrees(t, env(t))
}
