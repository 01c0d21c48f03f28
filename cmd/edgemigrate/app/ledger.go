package app

import (
	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/ledger/remote"
)

// newLedgerCommand serves an embedded ledger over mutual TLS: `edgemigrate ledger` and
// `edgemigrate ledger serve` are the same server.
func newLedgerCommand() *cobra.Command {
	cmd := newLedgerServeCommand("ledger", "Serve an embedded migration ledger over mutual TLS; clients act as their certificate's MSP")
	cmd.AddCommand(newLedgerServeCommand("serve", "Serve an embedded migration ledger over mutual TLS (the same as `edgemigrate ledger`)"))
	cmd.AddCommand(newLedgerMembershipCommands()...) // init, admit, remove
	return cmd
}

func newLedgerServeCommand(use, short string) *cobra.Command {
	opts := remote.NewServerOptions()
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return remote.RunServer(cmd.Context(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}
