// Command edgemigrate-demo plays both migration scenarios on local edge clusters with a live
// dashboard (`make demo`). It is apart from cmd/edgemigrate, the binary the chart runs, so
// that the product carries none of the demo's cluster launchers; the clusters it starts run
// the edgemigrate binary beside it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/cmd/edgemigrate/app"
	"github.com/edgemigrate/edgemigrate/internal/dashboard"
	"github.com/edgemigrate/edgemigrate/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newCommand().ExecuteContext(ctx)
	stop()
	klog.Flush()
	if err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := demo.Options{Clusters: 2, Address: dashboard.DefaultAddress}
	cmd := &cobra.Command{
		Use:   "edgemigrate-demo",
		Short: "Watch both migration scenarios happen on local edge clusters, with a live dashboard",
		Long: `edgemigrate-demo starts edge clusters of fake Jetson AGX Xavier boards on 127.0.0.1
(binaries from ` + "`make tools`" + `), the ledger, and in every cluster the extender, the schedulers,
the webhook and the descheduler. A car drives through every cluster's coverage and back while
its inference service follows it; then one cluster is filled and offloads a new service to a
neighbour. Where the machine allows it (Linux, root, containerd, ` + "`make images`" + `) each cluster
also gets a real node, the car's service is the real classifier container and the car sends
it MNIST digits through the gateways all along, the dashboard showing every request; else
the services are simulated on kwok and the car sends none. The first lines say which. The terminal prints every migration's timeline; the dashboard draws
it live. Ctrl-C stops every process the demo started.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return demo.Run(cmd.Context(), o)
		},
	}
	app.AddLoggingFlags(cmd)
	fs := cmd.Flags()
	fs.IntVar(&o.Clusters, "clusters", o.Clusters, "number of edge clusters, on a line 2 km apart")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "run this long, the scenarios always finished, then exit; 0 drives the route again and again until Ctrl-C")
	fs.StringVar(&o.Address, "address", o.Address, "address of the dashboard")
	fs.BoolVar(&o.Kwok, "kwok", o.Kwok, "simulate the services on kwok even where real containers could run (Linux, root, make images)")
	fs.StringVar(&o.Binary, "binary", o.Binary, "the edgemigrate binary the clusters run; default edgemigrate beside this executable")
	return cmd
}
