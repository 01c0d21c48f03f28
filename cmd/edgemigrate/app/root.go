// Package app builds the edgemigrate command line: one subcommand per part, each a thin
// layer over its package's Options.
package app

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// NewCommand returns the root command with every subcommand.
func NewCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "edgemigrate",
		Short: "Move inference services between edge Kubernetes clusters of NVIDIA Jetson boards",
		// A wrong flag deserves usage; a failure at run time deserves only its error.
		SilenceUsage: true,
	}
	AddLoggingFlags(root)
	root.AddCommand(
		newVersionCommand(),
		newLedgerCommand(),
		newWebhookCommand(),
		newExtenderCommand(),
		newDeschedulerCommand(),
		newCheckCommand(),
		newCarCommand(),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version := "(devel)"
			if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
				version = info.Main.Version
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "edgemigrate", version)
			return err
		},
	}
}
