package app

import (
	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/descheduler"
)

func newDeschedulerCommand() *cobra.Command {
	o := descheduler.NewOptions()
	cmd := &cobra.Command{
		Use:   "descheduler",
		Short: "Run the migration controller of one edge cluster, its client locator API and its edge gateway",
		Long: `The descheduler moves this cluster's inference services to a neighbour when a client
drives out of coverage or the cluster is full, bids on its neighbours' migrations, tells
clients where their service runs (GET /v1/clients/{id}/endpoint, /redirect), and carries
their requests to it (ANY /v1/clients/{id}/service/...: proxied to a Ready pod here, or
redirected to the cluster that runs it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return descheduler.Run(cmd.Context(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
