// Command edgemigrate runs edgemigrate's parts: the scheduler extender, the admission
// webhook, the migration controller and the ledger. It is the binary the chart runs; the
// demo is cmd/edgemigrate-demo, and TestProductLinksNoDemo keeps its packages out of here.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/cmd/edgemigrate/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.NewCommand().ExecuteContext(ctx)
	stop()
	klog.Flush()
	if err != nil {
		os.Exit(1)
	}
}
