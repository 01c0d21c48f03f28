package app

import (
	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/ledger/remote"
)

// newLedgerCommand serves an embedded ledger over mutual TLS.
func newLedgerCommand() *cobra.Command {
	opts := remote.NewServerOptions()
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Serve an embedded migration ledger over mutual TLS; clients act as their certificate's MSP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return remote.RunServer(cmd.Context(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.AddCommand(newLedgerMembershipCommands()...) // init, admit, remove
	return cmd
}
