package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/webhook/certs"
)

// ServiceName is the webhook's Service in manifests/webhook.yaml; the self-signed
// certificate names it by default.
const ServiceName = "edgemigrate-webhook"

// Options configure the webhook server.
type Options struct {
	// Address is where to listen, host:port.
	Address string
	// CertFile and KeyFile hold the serving certificate and key, reloaded when they change.
	CertFile, KeyFile string
	// CertReloadInterval is how often the files are checked for a change.
	CertReloadInterval time.Duration
	// SelfSigned generates a CA and serving certificate instead of reading files, and writes
	// the CA into WebhookConfigName's caBundle.
	SelfSigned bool
	// SelfSignedHosts are the self-signed certificate's DNS names and IPs; default the
	// Service's names in InstallNamespace.
	SelfSignedHosts []string
	// ClusterID is written as edgemigrate.io/source-cluster.
	ClusterID string
	// SchedulerName is the scheduler opted-in pods are given.
	SchedulerName string
	// Kubeconfig is the path of a kubeconfig; empty means in-cluster configuration.
	Kubeconfig string
	// WebhookConfigName is the MutatingWebhookConfiguration whose caBundle self-signed mode
	// writes.
	WebhookConfigName string
	// InstallNamespace is the webhook's own namespace: its pods are never mutated.
	InstallNamespace string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Address:            ":8443",
		CertReloadInterval: 10 * time.Second,
		SchedulerName:      api.SchedulerName,
		WebhookConfigName:  "edgemigrate-webhook",
		InstallNamespace:   api.SystemNamespace,
	}
}

// AddFlags binds o to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Address, "address", o.Address, "Address to serve HTTPS on (host:port).")
	fs.StringVar(&o.CertFile, "tls-cert-file", o.CertFile, "Serving certificate (PEM), reloaded when it changes.")
	fs.StringVar(&o.KeyFile, "tls-key-file", o.KeyFile, "Serving key (PEM), reloaded when it changes.")
	fs.DurationVar(&o.CertReloadInterval, "tls-reload-interval", o.CertReloadInterval, "How often to check the certificate files for a change.")
	fs.BoolVar(&o.SelfSigned, "self-signed", o.SelfSigned, "Generate a CA and serving certificate and write the CA into the webhook configuration's caBundle (for installs without cert-manager; one replica).")
	fs.StringSliceVar(&o.SelfSignedHosts, "self-signed-hosts", o.SelfSignedHosts, "DNS names and IPs of the self-signed certificate (default: the Service's names in --install-namespace).")
	fs.StringVar(&o.ClusterID, "cluster-id", o.ClusterID, "This cluster's id, written as "+api.AnnotationSourceCluster+".")
	fs.StringVar(&o.SchedulerName, "scheduler-name", o.SchedulerName, "Scheduler given to opted-in pods that use the default one.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path of a kubeconfig; empty for in-cluster configuration.")
	fs.StringVar(&o.WebhookConfigName, "webhook-config-name", o.WebhookConfigName, "MutatingWebhookConfiguration whose caBundle --self-signed writes.")
	fs.StringVar(&o.InstallNamespace, "install-namespace", o.InstallNamespace, "The webhook's own namespace; its pods are never mutated.")
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Address == "" {
		errs = append(errs, errors.New("--address is required"))
	}
	if o.ClusterID == "" {
		errs = append(errs, errors.New("--cluster-id is required"))
	}
	if o.SchedulerName == "" {
		errs = append(errs, errors.New("--scheduler-name must not be empty"))
	}
	if o.SelfSigned {
		if o.CertFile != "" || o.KeyFile != "" {
			errs = append(errs, errors.New("--self-signed and --tls-cert-file/--tls-key-file exclude each other"))
		}
		if o.WebhookConfigName == "" {
			errs = append(errs, errors.New("--self-signed needs --webhook-config-name"))
		}
	} else {
		if o.CertFile == "" || o.KeyFile == "" {
			errs = append(errs, errors.New("--tls-cert-file and --tls-key-file are required unless --self-signed"))
		}
		if o.CertReloadInterval <= 0 {
			errs = append(errs, errors.New("--tls-reload-interval must be positive"))
		}
	}
	return errors.Join(errs...)
}

// Run connects to the cluster, listens on o.Address and serves until ctx ends.
func Run(ctx context.Context, o *Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading client configuration: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Address, err)
	}
	return Serve(ctx, o, client, ln)
}

// Serve serves the webhook on ln until ctx ends: it syncs its caches, obtains its
// certificate (publishing the CA in self-signed mode), then answers admissions.
func Serve(ctx context.Context, o *Options, client kubernetes.Interface, ln net.Listener) error {
	defer ln.Close()
	if err := o.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	state, err := NewClusterState(client)
	if err != nil {
		return err
	}
	state.Start(ctx)
	if err := state.WaitForSync(ctx); err != nil {
		return err
	}

	var src certs.Source
	if o.SelfSigned {
		hosts := o.SelfSignedHosts
		if len(hosts) == 0 {
			svc := ServiceName + "." + o.InstallNamespace + ".svc"
			hosts = []string{svc, svc + ".cluster.local"}
		}
		publish := CABundlePublisher(client, o.WebhookConfigName)
		ss, err := certs.NewSelfSigned(ctx, certs.SelfSignedOptions{Hosts: hosts, Publish: publish})
		if err != nil {
			return fmt.Errorf("setting up the self-signed certificate: %w", err)
		}
		go ss.Run(ctx)
		go keepCABundle(ctx, publish, ss.CABundle)
		src = ss
	} else {
		fs, err := certs.NewFileSource(o.CertFile, o.KeyFile)
		if err != nil {
			return err
		}
		go fs.Run(ctx, o.CertReloadInterval)
		src = fs
	}

	reg := serve.NewRegistry()
	engine := serve.NewEngine(reg, state.Synced)
	NewHandler(Config{ClusterID: o.ClusterID, SchedulerName: o.SchedulerName, InstallNamespace: o.InstallNamespace}, state).
		Register(engine, NewMetrics(reg))
	klog.InfoS("Serving admission webhook", "address", ln.Addr().String(), "path", Path, "cluster", o.ClusterID, "scheduler", o.SchedulerName)
	return serve.Serve(ctx, ln, engine, certs.TLSConfig(src))
}

// caBundleCheckInterval is how often self-signed mode checks that its CA is still in the
// webhook configuration.
const caBundleCheckInterval = time.Minute

// keepCABundle writes the CA bundle again whenever something else replaced it (a
// re-applied manifest, a Helm upgrade): otherwise the API server would stop trusting the
// webhook until its next restart. The publisher writes only when the bundle differs.
func keepCABundle(ctx context.Context, publish func(context.Context, []byte) error, bundle func() []byte) {
	logger := klog.FromContext(ctx)
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := publish(ctx, bundle()); err != nil && ctx.Err() == nil {
			logger.Error(err, "Checking the CA bundle in the webhook configuration")
		}
	}, caBundleCheckInterval)
}
