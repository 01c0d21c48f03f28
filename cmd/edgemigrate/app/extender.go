package app

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/extender"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// ExtenderOptions are the extender subcommand's settings.
type ExtenderOptions struct {
	// ListenAddress is where kube-scheduler calls the extender (and where /metrics is).
	ListenAddress string
	// MetricsAddress, when set, serves /healthz, /readyz and /metrics alone, for probes and
	// Prometheus when ListenAddress is loopback (the extender as a scheduler sidecar).
	MetricsAddress string
	// Kubeconfig is a kubeconfig path; empty means in-cluster configuration.
	Kubeconfig string
	// Jetson are the fit model's settings.
	Jetson jetson.Flags
	// AssumeTTL bounds how long a pod the extender bound counts before the informer sees it.
	AssumeTTL time.Duration
	// MaxBodyBytes limits request bodies.
	MaxBodyBytes int64
}

// NewExtenderOptions returns the defaults.
func NewExtenderOptions() *ExtenderOptions {
	return &ExtenderOptions{
		ListenAddress: ":8888",
		Jetson:        jetson.DefaultFlags(),
		AssumeTTL:     extender.DefaultAssumeTTL,
		MaxBodyBytes:  extender.DefaultMaxBodyBytes,
	}
}

// AddFlags binds the options to flags.
func (o *ExtenderOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address to serve the extender verbs, /healthz, /readyz and /metrics on")
	fs.StringVar(&o.MetricsAddress, "metrics-address", o.MetricsAddress, "optional second address serving only /healthz, /readyz and /metrics (for probes and Prometheus when --listen-address is loopback)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig path; empty for in-cluster configuration")
	o.Jetson.AddFlags(fs)
	fs.DurationVar(&o.AssumeTTL, "assume-ttl", o.AssumeTTL, "how long a pod bound by the extender counts against its node before the informer confirms the binding")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "largest request body accepted")
}

// Config checks the options and turns them into the extender's.
func (o *ExtenderOptions) Config() (extender.Options, error) {
	jc, policy, err := o.Jetson.Parse()
	if err != nil {
		return extender.Options{}, err
	}
	return extender.Options{
		Jetson:       jc,
		Policy:       policy,
		AssumeTTL:    o.AssumeTTL,
		MaxBodyBytes: o.MaxBodyBytes,
	}, nil
}

// Run serves the extender until ctx ends.
func (o *ExtenderOptions) Run(ctx context.Context) error {
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig %q: %w", o.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(extender.ClientConfig(restConfig))
	if err != nil {
		return fmt.Errorf("creating Kubernetes client: %w", err)
	}
	reg := serve.NewRegistry()
	ext, err := extender.New(client, cfg, reg)
	if err != nil {
		return err
	}
	if err := ext.Start(ctx); err != nil {
		return err
	}
	klog.InfoS("Serving scheduler extender", "address", o.ListenAddress, "policy", cfg.Policy,
		"memoryReserve", o.Jetson.MemoryReserve, "jetsonNodeSelector", o.Jetson.NodeSelector)
	if o.MetricsAddress == "" {
		return serve.ListenAndServe(ctx, o.ListenAddress, ext.Handler(reg), nil)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- serve.ListenAndServe(ctx, o.ListenAddress, ext.Handler(reg), nil) }()
	go func() { errs <- serve.ListenAndServe(ctx, o.MetricsAddress, serve.NewEngine(reg, ext.Ready), nil) }()
	// Either server ending (a port taken, or ctx) ends both.
	err = <-errs
	cancel()
	if err2 := <-errs; err == nil {
		err = err2
	}
	return err
}

func newExtenderCommand() *cobra.Command {
	o := NewExtenderOptions()
	cmd := &cobra.Command{
		Use:   "extender",
		Short: "Serve the kube-scheduler extender that counts Jetson GPU memory against the node's RAM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
