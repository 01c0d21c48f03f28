// Package app builds the edgemigrate command line: one subcommand per part, each a thin
// layer over its package's Options.
package app

import (
	goflag "flag"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

// NewCommand returns the root command with every subcommand.
func NewCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "edgemigrate",
		Short: "Move inference services between edge Kubernetes clusters of NVIDIA Jetson boards",
		// A wrong flag deserves usage; a failure at run time deserves only its error.
		SilenceUsage: true,
	}
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	// Log verbosity is what operators tune; klog's file-output flags stay out of the way.
	for _, name := range []string{"v", "vmodule"} {
		root.PersistentFlags().AddGoFlag(klogFlags.Lookup(name))
	}
	root.AddCommand(
		newVersionCommand(),
		newLedgerCommand(),
		newWebhookCommand(),
		newExtenderCommand(),
		newDeschedulerCommand(),
		newDemoCommand(),
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
