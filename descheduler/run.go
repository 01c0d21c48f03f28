package descheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"github.com/google/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned"
	"github.com/edgemigrate/edgemigrate/gateway"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/fabric"
	"github.com/edgemigrate/edgemigrate/ledger/remote"
	"github.com/edgemigrate/edgemigrate/locator"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// LeaseName is the descheduler's leader-election Lease in its namespace.
const LeaseName = "edgemigrate-descheduler"

// Kubernetes client rates: a migration's steps come in bursts.
const clientQPS, clientBurst = 50, 100

// Run connects to the cluster and the ledger, serves the locator and the gateway and, while it holds the
// Lease, runs the controller. It returns when ctx ends or leadership is lost.
func Run(ctx context.Context, o *Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig %q: %w", o.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	ln, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.ListenAddress, err)
	}
	return Serve(ctx, o, cfg, ln)
}

// Serve is Run on a given listener and configuration.
func Serve(ctx context.Context, o *Options, restCfg *rest.Config, ln net.Listener) error {
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithName("descheduler")
	ctx = klog.NewContext(ctx, logger)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	// The cluster identity: generated into its Secret in self-signed mode.
	if o.SelfSignedIdentity {
		ss := newSelfSignedIdentity(kube, o)
		if err := ss.ensure(ctx); err != nil {
			return err
		}
		withFiles := *o // the caller's options stay as given
		withFiles.Identity = ss.files(o.Identity.CAFile)
		o = &withFiles
		go ss.run(ctx)
	}
	id, err := loadIdentity(ctx, o)
	if err != nil {
		return err
	}
	l, err := dialLedger(ctx, o, id)
	if err != nil {
		return err
	}
	defer l.Close()
	migs, err := versioned.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("creating the Migration client: %w", err)
	}
	reg := serve.NewRegistry()
	tokens, err := locator.NewSecretTokens(kube, o.Namespace, o.ClientTokensSecret)
	if err != nil {
		return err
	}
	go tokens.Run(ctx)

	var ctrl atomic.Pointer[Controller]
	var leading atomic.Bool
	// One Auth: failed authentications on the locator and the gateway share a budget.
	auth, err := locator.NewAuth(locator.AuthOptions{Tokens: tokens})
	if err != nil {
		return err
	}
	var loc *locator.Locator
	loc, err = locator.New(locator.Options{
		Auth: auth,
		Resolver: resolverFunc(func(id string) (locator.Route, bool) {
			if c := ctrl.Load(); c != nil {
				return c.Resolve(id)
			}
			return locator.Route{}, false
		}),
		OnLocation: func(ctx context.Context, id string, p geo.Point) {
			if c := ctrl.Load(); c != nil {
				c.OnLocation(klog.NewContext(ctx, logger), id, p)
			}
		},
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Options{
		Auth: auth, ClusterID: cfg.ClusterID, RequestTimeout: cfg.GatewayRequestTimeout, MaxBodyBytes: cfg.GatewayMaxBodyBytes,
		Router: leaderRouter(cfg.ClusterID, &ctrl, &leading), Registerer: reg,
	})
	if err != nil {
		return err
	}
	c, err := New(cfg, Deps{Kube: kube, Migrations: migs, Ledger: l, Clock: clock.RealClock{},
		Locations: locationsOf{loc.Locations()}, Registerer: reg, InFlight: gw, RestConfig: restCfg, Identity: id, ClientTokens: tokens})
	if err != nil {
		return err
	}
	// Only the leader answers clients: location updates must reach the replica that acts.
	engine := serve.NewEngine(reg, func() error {
		if !leading.Load() {
			return errors.New("not the leader")
		}
		if err := c.Readiness(); err != nil {
			return err
		}
		if !tokens.HasSynced() {
			return errors.New("client tokens not read yet")
		}
		return nil
	}, serve.WithLiveness(func() error {
		// A standby is live: it waits for the Lease. The leader is live while its
		// controller works.
		if !leading.Load() {
			return nil
		}
		return c.Liveness()
	}))
	loc.Register(engine)
	gw.Register(engine)
	// Bundles go to the chosen destination only (checked per request against the ledger).
	c.RegisterBundles(engine)
	serveErr := make(chan error, 1)
	// HTTPS with the cluster identity: peers present their certificates, cars none.
	var tlsConfig *tls.Config
	if id != nil {
		tlsConfig = id.ServerConfig(tls.VerifyClientCertIfGiven)
	}
	go func() { serveErr <- serve.Serve(ctx, ln, engine, tlsConfig) }()

	// A controller that stops while leading (it cannot register, or Run fails) gives up
	// the Lease at once, and Serve returns its error: the process exits non-zero, and a
	// standby or a restart takes over, instead of a leader that holds the Lease and works
	// no more.
	var runErr atomic.Pointer[error]
	leCtx, giveUp := context.WithCancel(ctx)
	defer giveUp()
	lead := func(ctx context.Context) {
		leading.Store(true)
		c.metrics.leader.Set(1)
		ctrl.Store(c)
		if err := c.Run(ctx); err != nil && ctx.Err() == nil {
			err = fmt.Errorf("the descheduler stopped while leading: %w", err)
			logger.Error(err, "Giving up the Lease")
			runErr.Store(&err)
			giveUp()
		}
	}
	le := cfg.LeaderElection
	if !le.LeaderElect {
		lead(leCtx)
		cancel()
		serr := <-serveErr
		if err := runErr.Load(); err != nil {
			return *err
		}
		return serr
	}
	host, _ := os.Hostname()
	identity := host + "_" + uuid.NewString()
	lock, err := resourcelock.New(le.ResourceLock, le.ResourceNamespace, le.ResourceName,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: identity})
	if err != nil {
		return fmt.Errorf("creating the leader-election lock: %w", err)
	}
	lost := make(chan struct{})
	// ReleaseOnCancel: when leCtx ends (shutdown, or giveUp) the Lease's holder is
	// cleared, so a standby need not wait for it to expire.
	leaderelection.RunOrDie(leCtx, leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: "edgemigrate-descheduler",
		LeaseDuration: le.LeaseDuration.Duration, RenewDeadline: le.RenewDeadline.Duration, RetryPeriod: le.RetryPeriod.Duration,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: lead,
			OnStoppedLeading: func() {
				leading.Store(false)
				c.metrics.leader.Set(0)
				close(lost)
			},
			OnNewLeader: func(id string) {
				if id != identity {
					logger.Info("Another replica leads", "leader", id)
				}
			},
		},
	})
	cancel()
	err = <-serveErr
	if rerr := runErr.Load(); rerr != nil {
		return *rerr
	}
	select {
	case <-lost:
		if ctx.Err() == nil || !errors.Is(ctx.Err(), context.Canceled) {
			return errors.New("lost the descheduler Lease")
		}
	default:
	}
	return err
}

// leaderRouter routes the gateway through the leading controller; other replicas answer
// 503: only the leader's informers and routes are current.
func leaderRouter(clusterID string, ctrl *atomic.Pointer[Controller], leading *atomic.Bool) gateway.Router {
	return gateway.RouterFunc(func(id string) gateway.Route {
		c := ctrl.Load()
		switch {
		case c == nil || !leading.Load():
			return gateway.Route{Kind: gateway.Unavailable, Cluster: clusterID, Reason: "not the leader"}
		case !c.Ready():
			return gateway.Route{Kind: gateway.Unavailable, Cluster: clusterID, Reason: "the descheduler is starting"}
		}
		return c.Route(id)
	})
}

type resolverFunc func(string) (locator.Route, bool)

func (f resolverFunc) Resolve(id string) (locator.Route, bool) { return f(id) }

type locationsOf struct{ l *locator.Locations }

func (s locationsOf) Location(id string) (geo.Point, bool) {
	loc, ok := s.l.Get(id)
	return loc.Point, ok
}

func dialLedger(ctx context.Context, o *Options, id *mtls.Identity) (ledger.Ledger, error) {
	switch o.LedgerBackend {
	case BackendFabric:
		return fabric.Dial(fabric.Config{PeerEndpoint: o.FabricPeer, TLSCACertPath: o.FabricTLSCA, ServerNameOverride: o.FabricServerName,
			MSPID: o.FabricMSPID, CertPath: o.FabricCert, KeyPath: o.FabricKey, Channel: o.FabricChannel, Chaincode: o.FabricChaincode})
	default:
		return remote.Dial(o.LedgerURL, id)
	}
}
