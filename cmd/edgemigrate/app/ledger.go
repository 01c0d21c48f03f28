package app

import (
	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/ledger/remote"
)

// newLedgerCommand serves an embedded ledger to the processes of one machine.
func newLedgerCommand() *cobra.Command {
	opts := remote.NewServerOptions()
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Serve an embedded migration ledger over HTTP to the clusters of one machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return remote.RunServer(cmd.Context(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}
