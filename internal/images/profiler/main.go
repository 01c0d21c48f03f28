// Command profiler is the driver-behaviour profiler image: `profiler [--listen :8080]`
// answers POST /infer {"samples":[{"t","speed","accel","yawRate"},…]} with the window's
// profile, score and events (internal/inference/profile: rules with documented thresholds).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/internal/inference/profile"
	"github.com/edgemigrate/edgemigrate/internal/inference/serve"
)

func main() {
	klog.InitFlags(nil)
	listen := flag.String("listen", ":8080", "address to serve on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background().WithName("profiler"))
	// The rules need nothing loaded: ready from the start.
	svc := &serve.Service{Name: "profiler", Identity: serve.IdentityFromEnv()}
	svc.SetReady(profile.Infer)
	if err := serve.Run(ctx, *listen, svc.Handler(), serve.DefaultDrain); err != nil {
		fmt.Fprintln(os.Stderr, "profiler:", err)
		os.Exit(1)
	}
}
