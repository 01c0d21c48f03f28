package app

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	// Registers --logging-format=json.
	_ "k8s.io/component-base/logs/json/register"
)

// AddLoggingFlags gives cmd and its subcommands the logging flags of Kubernetes' own
// components (-v, --vmodule, --logging-format=text|json, --log-flush-frequency) and applies
// them before any of them runs, so operators configure edgemigrate's logs as they do
// kube-scheduler's.
func AddLoggingFlags(cmd *cobra.Command) {
	cfg := logsapi.NewLoggingConfiguration()
	logsapi.AddFlags(cfg, cmd.PersistentFlags())
	// The logging features at their defaults: contextual logging and the JSON format on,
	// alpha options off.
	gate := featuregate.NewFeatureGate()
	if err := logsapi.AddFeatureGates(gate); err != nil {
		panic(err) // a fresh gate: unreachable
	}
	next := cmd.PersistentPreRunE
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if err := logsapi.ValidateAndApply(cfg, gate); err != nil {
			return fmt.Errorf("configuring logging: %w", err)
		}
		if next != nil {
			return next(c, args)
		}
		return nil
	}
}
