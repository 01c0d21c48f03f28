package app

import (
	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/dashboard"
	"github.com/edgemigrate/edgemigrate/demo"
)

func newDemoCommand() *cobra.Command {
	o := demo.Options{Clusters: 2, Address: dashboard.DefaultAddress}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch both migration scenarios happen on local edge clusters, with a live dashboard",
		Long: `demo starts edge clusters of fake Jetson AGX Xavier boards on 127.0.0.1 (binaries from
` + "`make tools`" + `), the ledger, and in every cluster the extender, the schedulers, the webhook and
the descheduler. A simulated car drives through every cluster's coverage and back while its
inference service follows it; then one cluster is filled and offloads a new service to a
neighbour. The terminal prints every migration's timeline; the dashboard draws it live.
Ctrl-C stops every process the demo started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return demo.Run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.Clusters, "clusters", o.Clusters, "number of edge clusters, on a line 2 km apart")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "run this long, the scenarios always finished, then exit; 0 drives the route again and again until Ctrl-C")
	fs.StringVar(&o.Address, "address", o.Address, "address of the dashboard")
	return cmd
}
