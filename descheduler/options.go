package descheduler

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/component-base/config/options"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/gateway"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/mtls"
	"github.com/edgemigrate/edgemigrate/policy"
)

// Ledger backends.
const (
	BackendRemote = "remote"
	BackendFabric = "fabric"
)

// Options configure the descheduler of one cluster.
type Options struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster configuration.
	Kubeconfig string
	// Namespace is the descheduler's own: its Lease, the client-token Secret and the ledger
	// checkpoint live there.
	Namespace string
	// ClusterID is this cluster's id on the ledger.
	ClusterID string
	// Location is the cluster's site, "lat,lon".
	Location string
	// CoverageRadius and CoverageHysteresis (metres): a client is covered within the radius
	// and counts as gone only beyond radius + hysteresis, so a car on the border does not flap.
	CoverageRadius, CoverageHysteresis float64
	// PublicEndpoint is where clients reach this cluster's locator.
	PublicEndpoint string
	// ListenAddress serves the locator API, /healthz, /readyz and /metrics.
	ListenAddress string

	LedgerBackend string
	// LedgerURL reaches an `edgemigrate ledger` server (https, mutual TLS with Identity).
	LedgerURL string
	// Fabric settings, for LedgerBackend fabric.
	FabricPeer, FabricTLSCA, FabricServerName, FabricMSPID, FabricCert, FabricKey, FabricChannel, FabricChaincode string

	// ClientTokensSecret holds one bearer token per client id.
	ClientTokensSecret string

	// Identity is the cluster's certificate, key and the CA bundle peers are
	// verified against: the public endpoint's HTTPS, the remote ledger's and peers' mutual
	// TLS. Without it the public endpoint is plain HTTP on loopback only.
	Identity mtls.Files
	// SelfSignedIdentity generates the identity, with a CA of the cluster's own, into the
	// Secret api.ClusterIdentitySecret (when absent; renewed when due), writes it into
	// SelfSignedIdentityDir and uses it; Identity.CAFile, when set, still names the bundle
	// peers are verified against. SelfSignedMSPID is its Organization; SelfSignedHosts are
	// SANs beside the public endpoint's host.
	SelfSignedIdentity    bool
	SelfSignedIdentityDir string
	SelfSignedMSPID       string
	SelfSignedHosts       []string

	// LeaderElection: --leader-elect and --leader-elect-*, as every Kubernetes controller
	// has them. The Lease defaults to LeaseName-<cluster id> in --namespace.
	LeaderElection componentbaseconfig.LeaderElectionConfiguration

	DryRun                                                              bool
	MaxConcurrentMigrations                                             int
	OffloadAfter, BidTimeout, MigrationTimeout, DestinationReadyTimeout time.Duration
	CapacityReportInterval                                              time.Duration
	// RegisterTimeout bounds how long registration retries a ledger it cannot reach
	// before the descheduler gives up its Lease and exits (waiting for admission is not
	// bounded: the ledger answered).
	RegisterTimeout time.Duration
	// ResyncInterval is how often everything is reconciled again even without events.
	ResyncInterval time.Duration
	// DrainTimeout bounds the wait for a source's in-flight gateway requests before its copy
	// is removed.
	DrainTimeout time.Duration
	// GatewayRequestTimeout and GatewayMaxBodyBytes bound each request the gateway proxies.
	GatewayRequestTimeout time.Duration
	GatewayMaxBodyBytes   int64
	// VerifyTimeout (never zero copies): how long a source retries a request through
	// the destination's gateway before it aborts instead of removing its copy.
	VerifyTimeout time.Duration
	Jetson        jetson.Flags
	SchedulerName string

	// Hosting peers' services.
	// PolicyFile is the destination policy (policy.Config YAML); empty is policy.Default.
	PolicyFile string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = api.SystemNamespace
	}
	return &Options{
		Namespace:          ns,
		CoverageRadius:     1000,
		CoverageHysteresis: 100,
		ListenAddress:      ":8090",
		LedgerBackend:      BackendRemote,
		FabricChannel:      "edgemigrate",
		FabricChaincode:    "edgemigrate",
		ClientTokensSecret: api.ClientTokensSecret,
		LeaderElection: componentbaseconfig.LeaderElectionConfiguration{
			LeaderElect:   true,
			LeaseDuration: metav1.Duration{Duration: 15 * time.Second},
			RenewDeadline: metav1.Duration{Duration: 10 * time.Second},
			RetryPeriod:   metav1.Duration{Duration: 2 * time.Second},
			ResourceLock:  resourcelock.LeasesResourceLock,
		},
		MaxConcurrentMigrations: 4,
		OffloadAfter:            2 * time.Second,
		BidTimeout:              2 * time.Second,
		MigrationTimeout:        2 * time.Minute,
		DestinationReadyTimeout: time.Minute,
		CapacityReportInterval:  30 * time.Second,
		RegisterTimeout:         2 * time.Minute,
		ResyncInterval:          10 * time.Second,
		DrainTimeout:            30 * time.Second,
		GatewayRequestTimeout:   gateway.DefaultRequestTimeout,
		GatewayMaxBodyBytes:     gateway.DefaultMaxBodyBytes,
		VerifyTimeout:           30 * time.Second,
		Jetson:                  jetson.DefaultFlags(),
		SchedulerName:           api.SchedulerName,
	}
}

// AddFlags binds o to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig path; empty for in-cluster configuration")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "own namespace (default $POD_NAMESPACE): Lease, client-token Secret, ledger checkpoint")
	fs.StringVar(&o.ClusterID, "cluster-id", o.ClusterID, "this cluster's id on the ledger (a DNS label)")
	fs.StringVar(&o.Location, "location", o.Location, "this cluster's site as LAT,LON in decimal degrees, e.g. 35.8880,128.6110")
	fs.Float64Var(&o.CoverageRadius, "coverage-radius", o.CoverageRadius, "radius (metres) within which this cluster serves clients")
	fs.Float64Var(&o.CoverageHysteresis, "coverage-hysteresis", o.CoverageHysteresis, "metres beyond the radius before a client counts as gone (no flapping on the border)")
	fs.StringVar(&o.PublicEndpoint, "public-endpoint", o.PublicEndpoint, "URL where clients and peer clusters reach this cluster's locator and gateway, e.g. https://10.0.0.5:8090")
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address of the locator API, /healthz, /readyz and /metrics")
	fs.StringVar(&o.LedgerBackend, "ledger-backend", o.LedgerBackend, "remote (an `edgemigrate ledger` server) or fabric")
	fs.StringVar(&o.LedgerURL, "ledger-url", o.LedgerURL, "remote: URL of the ledger server")
	fs.StringVar(&o.FabricPeer, "fabric-peer", o.FabricPeer, "fabric: host:port of a peer's Gateway service")
	fs.StringVar(&o.FabricTLSCA, "fabric-tls-ca", o.FabricTLSCA, "fabric: PEM of the CA of the peer's TLS certificate (empty: no TLS)")
	fs.StringVar(&o.FabricServerName, "fabric-server-name", o.FabricServerName, "fabric: name in the peer's TLS certificate, when it differs from the host")
	fs.StringVar(&o.FabricMSPID, "fabric-msp-id", o.FabricMSPID, "fabric: MSP id of this cluster's identity")
	fs.StringVar(&o.FabricCert, "fabric-cert", o.FabricCert, "fabric: PEM certificate of this cluster's identity")
	fs.StringVar(&o.FabricKey, "fabric-key", o.FabricKey, "fabric: PEM private key of this cluster's identity")
	fs.StringVar(&o.FabricChannel, "fabric-channel", o.FabricChannel, "fabric: channel name")
	fs.StringVar(&o.FabricChaincode, "fabric-chaincode", o.FabricChaincode, "fabric: chaincode name")
	fs.StringVar(&o.ClientTokensSecret, "client-tokens-secret", o.ClientTokensSecret, "Secret in --namespace mapping client id to its bearer token")
	// Cluster identity.
	fs.StringVar(&o.Identity.CertFile, "tls-cert-file", o.Identity.CertFile,
		"PEM certificate of this cluster's identity (CommonName = --cluster-id, Organization = MSP id), reloaded when it changes")
	fs.StringVar(&o.Identity.KeyFile, "tls-key-file", o.Identity.KeyFile, "PEM private key of --tls-cert-file")
	fs.StringVar(&o.Identity.CAFile, "tls-ca-file", o.Identity.CAFile, "PEM bundle of the CAs that peer clusters and the remote ledger are verified against")
	fs.BoolVar(&o.SelfSignedIdentity, "self-signed-identity", o.SelfSignedIdentity,
		"generate the cluster identity with a CA of its own into Secret "+api.ClusterIdentitySecret+" in --namespace (when absent; renewed when due) and use it")
	fs.StringVar(&o.SelfSignedIdentityDir, "self-signed-identity-dir", o.SelfSignedIdentityDir, "writable directory for the self-signed identity's files")
	fs.StringVar(&o.SelfSignedMSPID, "self-signed-msp-id", o.SelfSignedMSPID, "MSP id (Organization) of the self-signed identity")
	fs.StringSliceVar(&o.SelfSignedHosts, "self-signed-hosts", o.SelfSignedHosts, "DNS names or IPs of the self-signed identity beside --public-endpoint's host")
	options.BindLeaderElectionFlags(&o.LeaderElection, fs)
	fs.BoolVar(&o.DryRun, "dry-run", o.DryRun, "decide and record Migrations, but neither propose, bid nor move anything")
	fs.IntVar(&o.MaxConcurrentMigrations, "max-concurrent-migrations", o.MaxConcurrentMigrations, "most source migrations in flight at once; more wait Pending")
	fs.DurationVar(&o.OffloadAfter, "offload-after", o.OffloadAfter, "how long an opted-in pod may stay unschedulable before its workload is offloaded")
	fs.DurationVar(&o.BidTimeout, "bid-timeout", o.BidTimeout, "how long the ledger waits for bids before deciding without the missing ones")
	fs.DurationVar(&o.MigrationTimeout, "migration-timeout", o.MigrationTimeout, "a migration whose destination is not Ready by then is aborted; the service stays")
	fs.DurationVar(&o.DestinationReadyTimeout, "destination-ready-timeout", o.DestinationReadyTimeout, "how long a destination waits for its copy to be Ready before it deletes it and reports failure")
	fs.DurationVar(&o.CapacityReportInterval, "capacity-report-interval", o.CapacityReportInterval, "how often free capacity is reported to the ledger (it also keeps the cluster live for bidding)")
	fs.DurationVar(&o.RegisterTimeout, "register-timeout", o.RegisterTimeout, "how long registration retries a ledger it cannot reach before the descheduler releases its Lease and exits, so a standby or a restart takes over (waiting for admission is not bounded)")
	fs.DurationVar(&o.ResyncInterval, "resync-interval", o.ResyncInterval, "how often every migration is reconciled even without events")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout, "how long a source waits for its clients' requests in flight through the gateway to finish before it removes its copy")
	// The source removes its copy only once the destination serves.
	fs.DurationVar(&o.VerifyTimeout, "verify-timeout", o.VerifyTimeout, "how long a source retries a request to the service through the destination's public endpoint before it aborts the migration and keeps its copy")
	fs.DurationVar(&o.GatewayRequestTimeout, "gateway-request-timeout", o.GatewayRequestTimeout, "most time the gateway gives a proxied request, answer included (504 beyond)")
	fs.Int64Var(&o.GatewayMaxBodyBytes, "gateway-max-body-bytes", o.GatewayMaxBodyBytes, "largest request body the gateway proxies (413 beyond)")
	o.Jetson.AddFlags(fs)
	fs.StringVar(&o.SchedulerName, "scheduler-name", o.SchedulerName, "the scheduler whose unschedulable pods may be offloaded")
	// Hosting peers' services.
	fs.StringVar(&o.PolicyFile, "policy-file", o.PolicyFile, "YAML file of the terms on which this cluster hosts peers' services (namespaces, registries, limits); empty: the built-in default")
}

func (o *Options) hasIdentity() bool { return o.Identity != (mtls.Files{}) || o.SelfSignedIdentity }

// validateTLS: with an identity the public endpoint is https; without one it is
// plain HTTP on loopback, for development on one machine.
func (o *Options) validateTLS(public *url.URL) []error {
	var errs []error
	if o.hasIdentity() {
		switch {
		case o.SelfSignedIdentity:
			if o.Identity.CertFile != "" || o.Identity.KeyFile != "" {
				errs = append(errs, errors.New("--self-signed-identity makes the certificate: no --tls-cert-file or --tls-key-file"))
			}
			if o.SelfSignedIdentityDir == "" || o.SelfSignedMSPID == "" {
				errs = append(errs, errors.New("--self-signed-identity needs --self-signed-identity-dir and --self-signed-msp-id"))
			}
		case o.Identity.CertFile == "" || o.Identity.KeyFile == "" || o.Identity.CAFile == "":
			errs = append(errs, errors.New("--tls-cert-file, --tls-key-file and --tls-ca-file go together"))
		}
		if public.Scheme != "https" {
			errs = append(errs, fmt.Errorf("--public-endpoint %q: the endpoint serves HTTPS with the cluster identity; want https", o.PublicEndpoint))
		}
		return errs
	}
	if err := mtls.RequireTLS(o.PublicEndpoint); err != nil || public.Scheme != "http" {
		errs = append(errs, fmt.Errorf("--public-endpoint %q without the cluster identity (--tls-cert-file ...): plain HTTP, on loopback only", o.PublicEndpoint))
	}
	if host, _, err := net.SplitHostPort(o.ListenAddress); err != nil || !mtls.IsLoopback(host) {
		errs = append(errs, fmt.Errorf("--listen-address %q without the cluster identity: plain HTTP listens on loopback only", o.ListenAddress))
	}
	return errs
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !dnsLabel.MatchString(o.ClusterID) || len(o.ClusterID) > 40 {
		add("--cluster-id %q: want a DNS label of at most 40 characters (migration ids are derived from it)", o.ClusterID)
	}
	if o.Namespace == "" {
		add("--namespace is required")
	}
	if _, err := geo.ParsePoint(o.Location); err != nil {
		add("--location: %v", err)
	}
	if !(o.CoverageRadius >= 0) || !(o.CoverageHysteresis >= 0) {
		add("--coverage-radius and --coverage-hysteresis must be non-negative")
	}
	if u, err := url.Parse(o.PublicEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("--public-endpoint %q: want an https URL such as https://10.0.0.5:8090", o.PublicEndpoint)
	} else {
		errs = append(errs, o.validateTLS(u)...)
	}
	switch o.LedgerBackend {
	case BackendRemote:
		if o.LedgerURL == "" {
			add("--ledger-url is required with --ledger-backend=remote")
		} else if u, err := url.Parse(o.LedgerURL); err != nil || u.Scheme != "https" {
			add("--ledger-url %q: want an https URL (the remote ledger speaks mutual TLS only)", o.LedgerURL)
		}
		if !o.hasIdentity() {
			add("--ledger-backend=remote needs the cluster identity (--tls-cert-file, --tls-key-file, --tls-ca-file): the ledger knows clusters by their certificates")
		}
	case BackendFabric:
		if o.FabricPeer == "" || o.FabricMSPID == "" || o.FabricCert == "" || o.FabricKey == "" {
			add("--ledger-backend=fabric needs --fabric-peer, --fabric-msp-id, --fabric-cert and --fabric-key")
		}
	default:
		add("--ledger-backend %q: want remote or fabric", o.LedgerBackend)
	}
	if o.MaxConcurrentMigrations < 1 {
		add("--max-concurrent-migrations must be at least 1")
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"--offload-after", o.OffloadAfter}, {"--bid-timeout", o.BidTimeout}, {"--migration-timeout", o.MigrationTimeout},
		{"--destination-ready-timeout", o.DestinationReadyTimeout}, {"--capacity-report-interval", o.CapacityReportInterval},
		{"--resync-interval", o.ResyncInterval}, {"--drain-timeout", o.DrainTimeout}, {"--gateway-request-timeout", o.GatewayRequestTimeout},
		{"--verify-timeout", o.VerifyTimeout}, {"--register-timeout", o.RegisterTimeout}} {
		if d.value <= 0 {
			add("%s must be positive", d.flag)
		}
	}
	if max := chaincode.MaxBidTimeoutMillis * time.Millisecond; o.BidTimeout < time.Millisecond || o.BidTimeout > max {
		add("--bid-timeout %s: want 1ms to %s (the ledger's bounds)", o.BidTimeout, max)
	}
	if o.GatewayMaxBodyBytes <= 0 {
		add("--gateway-max-body-bytes must be positive")
	}
	if _, _, err := o.Jetson.Parse(); err != nil {
		errs = append(errs, err)
	}
	if o.SchedulerName == "" {
		add("--scheduler-name must not be empty")
	}
	if le := o.LeaderElection; le.LeaderElect {
		if le.ResourceLock != resourcelock.LeasesResourceLock {
			add("--leader-elect-resource-lock %q: want %s", le.ResourceLock, resourcelock.LeasesResourceLock)
		}
		// What leaderelection.NewLeaderElector would refuse with a panic.
		if le.RetryPeriod.Duration <= 0 || le.RenewDeadline.Duration <= time.Duration(leaderelection.JitterFactor*float64(le.RetryPeriod.Duration)) ||
			le.LeaseDuration.Duration <= le.RenewDeadline.Duration {
			add("--leader-elect-lease-duration %s, --leader-elect-renew-deadline %s, --leader-elect-retry-period %s: want lease > renew deadline > %v × retry period > 0",
				le.LeaseDuration.Duration, le.RenewDeadline.Duration, le.RetryPeriod.Duration, leaderelection.JitterFactor)
		}
	}
	return errors.Join(errs...)
}

// Config is the descheduler's runtime configuration: Options validated and parsed once.
// The controller reads only this.
type Config struct {
	// ClusterID is this cluster's id on the ledger.
	ClusterID string
	// Namespace is the descheduler's own (the ledger checkpoint lives there).
	Namespace string
	// Coverage is the cluster's site and the area where it serves clients.
	Coverage geo.Coverage
	// PublicEndpoint is where clients reach this cluster's locator.
	PublicEndpoint string
	// LeaderElection has its Lease's name and namespace filled in.
	LeaderElection componentbaseconfig.LeaderElectionConfiguration

	DryRun                  bool
	MaxConcurrentMigrations int
	OffloadAfter            time.Duration
	BidTimeout              time.Duration
	MigrationTimeout        time.Duration
	DestinationReadyTimeout time.Duration
	CapacityReportInterval  time.Duration
	RegisterTimeout         time.Duration
	ResyncInterval          time.Duration
	DrainTimeout            time.Duration
	GatewayRequestTimeout   time.Duration
	GatewayMaxBodyBytes     int64
	VerifyTimeout           time.Duration
	Jetson                  jetson.Config
	Policy                  jetson.Policy
	SchedulerName           string

	// Hosting is the destination policy, read from --policy-file.
	Hosting *policy.Config
}

// Config validates the options and returns the runtime configuration.
func (o *Options) Config() (*Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	site, err := geo.ParsePoint(o.Location)
	if err != nil {
		return nil, fmt.Errorf("--location: %w", err)
	}
	jc, jpolicy, err := o.Jetson.Parse()
	if err != nil {
		return nil, err
	}
	hosting, err := policy.Load(o.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("--policy-file: %w", err)
	}
	hosting.OwnNamespace = o.Namespace
	le := o.LeaderElection
	if le.ResourceName == "" {
		le.ResourceName = LeaseName + "-" + o.ClusterID
	}
	if le.ResourceNamespace == "" {
		le.ResourceNamespace = o.Namespace
	}
	return &Config{
		ClusterID: o.ClusterID, Namespace: o.Namespace, PublicEndpoint: o.PublicEndpoint, LeaderElection: le,
		Coverage: geo.Coverage{Center: site, RadiusM: o.CoverageRadius, HysteresisM: o.CoverageHysteresis},
		DryRun:   o.DryRun, MaxConcurrentMigrations: o.MaxConcurrentMigrations,
		OffloadAfter: o.OffloadAfter, BidTimeout: o.BidTimeout, MigrationTimeout: o.MigrationTimeout,
		DestinationReadyTimeout: o.DestinationReadyTimeout, CapacityReportInterval: o.CapacityReportInterval,
		ResyncInterval: o.ResyncInterval, DrainTimeout: o.DrainTimeout, GatewayRequestTimeout: o.GatewayRequestTimeout,
		GatewayMaxBodyBytes: o.GatewayMaxBodyBytes, Jetson: jc, Policy: jpolicy, SchedulerName: o.SchedulerName,
		VerifyTimeout: o.VerifyTimeout, Hosting: hosting, RegisterTimeout: o.RegisterTimeout,
	}, nil
}
