package app

import (
	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/descheduler"
)

func newDeschedulerCommand() *cobra.Command {
	o := descheduler.NewOptions()
	cmd := &cobra.Command{
		Use:   "descheduler",
		Short: "Run the migration controller of one edge cluster and its client locator API",
		Long: `The descheduler moves this cluster's inference services to a neighbour when a client
drives out of coverage or the cluster is full, bids on its neighbours' migrations, and tells
clients where their service runs (GET /v1/clients/{id}/endpoint, /redirect).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return descheduler.Run(cmd.Context(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
