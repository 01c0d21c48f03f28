// Command edgemigrate-scheduler is kube-scheduler with the Jetson unified-memory plugin
// compiled in: the same flags and KubeSchedulerConfiguration as the kube-scheduler of the
// same version, plus the plugin jetsonplugin.Name for profiles that enable it.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as kube-scheduler offers
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/edgemigrate/edgemigrate/scheduler/jetsonplugin"
)

func main() {
	command := app.NewSchedulerCommand(app.WithPlugin(jetsonplugin.Name, jetsonplugin.New))
	command.Use = "edgemigrate-scheduler"
	os.Exit(cli.Run(command))
}
