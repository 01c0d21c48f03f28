// Command classifier is the MNIST digit classifier image: `classifier [--listen :8080]
// [--model /model/mnist.weights]` loads the weights `make images` trained and put in the
// image, then answers POST /infer {"pixels":[784 ints]} with the digit (internal/inference/mnist).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/internal/inference/mnist"
	"github.com/edgemigrate/edgemigrate/internal/inference/service"
)

func main() {
	klog.InitFlags(nil)
	listen := flag.String("listen", ":8080", "address to serve on")
	model := flag.String("model", mnist.ImagePath, "weights file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background().WithName("classifier"))
	if err := run(ctx, *listen, *model); err != nil {
		fmt.Fprintln(os.Stderr, "classifier:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, model string) error {
	svc := &service.Service{Name: "classifier", Identity: service.IdentityFromEnv()}
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx, listen) }()
	data, err := os.ReadFile(model)
	if err != nil {
		return fmt.Errorf("loading the model: %w", err)
	}
	m, err := mnist.Decode(data)
	if err != nil {
		return fmt.Errorf("loading the model %s: %w", model, err)
	}
	svc.SetReady(m.Infer)
	klog.FromContext(ctx).Info("Model loaded", "path", model, "hidden", m.Hidden)
	return <-errc
}
