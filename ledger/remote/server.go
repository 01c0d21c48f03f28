package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// ServerOptions configure `edgemigrate ledger`: one embedded ledger served over mutual TLS
// to the clusters of one operator or a demo. Across operators the ledger is Fabric.
type ServerOptions struct {
	// Listen is the address to serve on.
	Listen string
	// DBPath is the bbolt file holding the ledger's state and event log.
	DBPath string
	// TLS is the server's certificate and the CA bundle clients are verified against; a
	// client's MSP id is its certificate's first Organization.
	TLS mtls.Files
	// AllowedMSPs, when set, narrows the clients served to these MSP ids.
	AllowedMSPs []string
	// Limits bound each identity's calls and event streams.
	Limits Limits
	// NoSync trades durability against power loss for speed (see embedded.Options).
	NoSync bool
	// AdminMSP is the ledger's admin, named when the file is created: it admits
	// clusters (chaincode.AdmitCluster). Empty: the first client sets the ledger up (InitLedger).
	AdminMSP string
	// DeadAfter is how long a cluster may stay silent before any member may mark it dead
	// (chaincode.MarkClusterDead), written with AdminMSP when the file is created; 0 means
	// chaincode.DefaultDeadAfter.
	DeadAfter time.Duration
}

// NewServerOptions returns the defaults.
func NewServerOptions() *ServerOptions {
	return &ServerOptions{Listen: "127.0.0.1:7070", DBPath: "edgemigrate-ledger.db", Limits: DefaultLimits()}
}

// AddFlags binds the options to flags.
func (o *ServerOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", o.Listen, "address to serve the ledger on (mutual TLS), e.g. 0.0.0.0:7070 for other machines")
	fs.StringVar(&o.DBPath, "db", o.DBPath, "file holding the ledger's state and event log")
	fs.StringVar(&o.TLS.CertFile, "tls-cert-file", o.TLS.CertFile, "PEM certificate the server presents (reloaded when it changes)")
	fs.StringVar(&o.TLS.KeyFile, "tls-key-file", o.TLS.KeyFile, "PEM private key of --tls-cert-file")
	fs.StringVar(&o.TLS.CAFile, "tls-ca-file", o.TLS.CAFile,
		"PEM bundle of the CAs whose client certificates are served; a client acts as its certificate's first Organization (MSP id)")
	fs.StringSliceVar(&o.AllowedMSPs, "allowed-msps", o.AllowedMSPs, "serve only these MSP ids (default: every MSP the CA bundle certifies)")
	fs.Float64Var(&o.Limits.PerSecond, "rate-limit-per-second", o.Limits.PerSecond, "calls per second each MSP may make (token bucket; 429 with Retry-After beyond)")
	fs.IntVar(&o.Limits.Burst, "rate-limit-burst", o.Limits.Burst, "burst of each MSP's token bucket")
	fs.IntVar(&o.Limits.MaxStreams, "max-event-streams", o.Limits.MaxStreams, "event streams each MSP may hold open at once")
	fs.BoolVar(&o.NoSync, "no-sync", o.NoSync, "skip the disk sync at each commit (tests and demos)")
	fs.StringVar(&o.AdminMSP, "admin-msp", o.AdminMSP, "MSP id of the ledger's admin, which admits clusters (set when the ledger file is created; without it the first client's InitLedger names one)")
	fs.DurationVar(&o.DeadAfter, "dead-after", o.DeadAfter, fmt.Sprintf(
		"how long a cluster may stay silent (no registration or capacity report) before any other member may mark it dead, whole seconds up to 24h; written with --admin-msp when the ledger file is created and fixed after (0: %s)", chaincode.DefaultDeadAfter))
}

// Validate reports every missing or invalid option.
func (o *ServerOptions) Validate() error {
	var errs []error
	if o.Listen == "" {
		errs = append(errs, errors.New("--listen is required"))
	}
	if o.DBPath == "" {
		errs = append(errs, errors.New("--db is required"))
	}
	if o.TLS.CertFile == "" || o.TLS.KeyFile == "" || o.TLS.CAFile == "" {
		errs = append(errs, errors.New("--tls-cert-file, --tls-key-file and --tls-ca-file are required: clients are identified by their certificates"))
	}
	if err := o.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := chaincode.DeadAfterSeconds(o.DeadAfter); err != nil {
		errs = append(errs, fmt.Errorf("--dead-after: %w", err))
	}
	if o.DeadAfter != 0 && o.AdminMSP == "" {
		errs = append(errs, errors.New("--dead-after is written with --admin-msp when the ledger is set up; without --admin-msp, pass it to `edgemigrate ledger init`"))
	}
	return errors.Join(errs...)
}

// RunServer listens on o.Listen and serves until ctx ends.
func RunServer(ctx context.Context, o *ServerOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Listen, err)
	}
	return Serve(ctx, o, ln)
}

// Serve opens the ledger and serves it on ln over TLS, with /healthz, /readyz and /metrics,
// until ctx ends; then it closes the ledger. Client certificates are verified when given
// and required for /v1/ (the health endpoints stay reachable by probes without one).
func Serve(ctx context.Context, o *ServerOptions, ln net.Listener) error {
	if err := o.Validate(); err != nil {
		ln.Close()
		return err
	}
	id, err := mtls.Load(o.TLS)
	if err != nil {
		ln.Close()
		return err
	}
	reg := serve.NewRegistry()
	store, err := embedded.Open(o.DBPath, embedded.Options{NoSync: o.NoSync, Registerer: reg, AdminMSP: o.AdminMSP, DeadAfter: o.DeadAfter})
	if err != nil {
		ln.Close()
		return fmt.Errorf("opening ledger %s: %w", o.DBPath, err)
	}
	defer store.Close()
	h, err := NewHandler(store, HandlerOptions{Limits: o.Limits, AllowedMSPs: o.AllowedMSPs, Registerer: reg})
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go id.Run(ctx, mtls.ReloadInterval)
	engine := serve.NewEngine(reg, func() error { return nil })
	engine.Any("/v1/*path", gin.WrapH(h))
	klog.FromContext(ctx).Info("Serving the embedded ledger over mutual TLS", "address", ln.Addr().String(), "db", o.DBPath,
		"allowedMSPs", o.AllowedMSPs, "deadAfter", o.DeadAfter, "perSecond", o.Limits.PerSecond, "burst", o.Limits.Burst)
	return serve.Serve(ctx, ln, engine, id.ServerConfig(tls.VerifyClientCertIfGiven))
}
