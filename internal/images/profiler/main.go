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
	"github.com/edgemigrate/edgemigrate/internal/inference/service"
)

func main() {
	klog.InitFlags(nil)
	listen := flag.String("listen", ":8080", "address to serve on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background().WithName("profiler"))
	// The rules need nothing loaded: ready from the start.
	svc := &service.Service{Name: "profiler", Identity: service.IdentityFromEnv()}
	svc.SetReady(profile.Infer)
	if err := svc.Run(ctx, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "profiler:", err)
		os.Exit(1)
	}
}
