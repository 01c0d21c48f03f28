// Package localcluster starts real, independent Kubernetes clusters on 127.0.0.1: etcd,
// kube-apiserver, kube-controller-manager, optionally kube-scheduler, and kwok, which plays
// the kubelets of fake Jetson nodes. The tests and `edgemigrate-demo` use it; the binaries
// are the pinned ones `make tools` builds into bin/.
package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"
)

const (
	// serviceIP is the first address of the service range: the in-cluster API server address.
	serviceIP       = "10.96.0.1"
	serviceCIDR     = "10.96.0.0/16"
	kwokNodeKey     = "kwok.x-k8s.io/node"
	kwokNodeValue   = "fake"
	logTailLines    = 40
	startAttempts   = 3 // a port taken between allocation and bind is retried with new ports
	portInUseNeedle = "address already in use"
)

// Options configure clusters. The zero value starts a cluster without a scheduler.
type Options struct {
	// Name of the cluster; StartN appends -0, -1, …. Default "edge".
	Name string
	// BinDir holds the binaries; default FindBinDir().
	BinDir string
	// Dir is the parent of the cluster's working directory (certificates, etcd data, logs);
	// default the system temporary directory.
	Dir string
	// Scheduler, when set, starts kube-scheduler with this configuration. The client
	// connection is filled in; leader election is off unless the configuration turns it on.
	Scheduler *schedconfig.KubeSchedulerConfiguration
	// NoKwok leaves nodes without a kubelet stand-in.
	NoKwok bool
	// ReadyTimeout bounds how long each component may take to become ready. Default 60s.
	ReadyTimeout time.Duration
	// StopGrace is how long a component may take to exit after SIGTERM before it is killed.
	// Default 30s.
	StopGrace time.Duration
	// KeepDir keeps the working directory after Stop (it is always kept when Start fails).
	KeepDir bool
	// RealNodes starts that many real nodes beside kwok's fake ones (at most 8): each a
	// kubelet, containerd and kube-proxy in network and mount namespaces of its own, pulling
	// the images of `make images` from a registry the cluster runs. They need Linux, root,
	// containerd, runc, the CNI plugins and iptables (ErrRealNodesUnavailable otherwise).
	RealNodes int
}

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = "edge"
	}
	if o.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return err
		}
		o.BinDir = dir
	} else if err := checkBinDir(o.BinDir); err != nil {
		return err
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	if o.StopGrace == 0 {
		o.StopGrace = 30 * time.Second
	}
	if o.RealNodes < 0 || o.RealNodes > maxRealNodes {
		return fmt.Errorf("%d real nodes asked for: between 0 and %d", o.RealNodes, maxRealNodes)
	}
	if o.RealNodes > 0 {
		for _, name := range realNodeBinaries {
			if _, err := os.Stat(filepath.Join(o.BinDir, name)); err != nil {
				return fmt.Errorf("%w: %s is missing from %s", ErrToolsMissing, name, o.BinDir)
			}
		}
	}
	return nil
}

// Cluster is one running cluster.
type Cluster struct {
	Name string
	// Dir is the working directory: pki/, etcd/, logs/, kubeconfig.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig (system:masters).
	Kubeconfig string
	// Config is the admin client configuration.
	Config *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface

	opts  Options
	pki   *clusterPKI
	ports ports

	mu      sync.Mutex
	procs   []*process // running, in start order
	stopped []*process

	// Real nodes (Options.RealNodes): the cluster's network slot, registry and nodes.
	net           *realNet
	cniDir        string
	imagesDir     string
	nodeAPIServer string // the API server as the nodes reach it, through the bridge
	registry      *Registry
	dns           *clusterDNS
	dnsStop       chan struct{}
	realNodes     []*RealNode
}

type ports struct {
	etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok int
}

// StartN starts n clusters at once, named opts.Name-0 … opts.Name-(n-1). If any fails, the
// others are stopped and the first error is returned.
func StartN(ctx context.Context, n int, opts Options) ([]*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	clusters := make([]*Cluster, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o := opts
			o.Name = fmt.Sprintf("%s-%d", opts.Name, i)
			clusters[i], errs[i] = Start(ctx, o)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		StopAll(clusters)
		return nil, err
	}
	return clusters, nil
}

// StopAll stops clusters in parallel; nil entries are ignored.
func StopAll(clusters []*Cluster) {
	var wg sync.WaitGroup
	for _, c := range clusters {
		if c != nil {
			wg.Go(c.Stop)
		}
	}
	wg.Wait()
}

// Start starts one cluster and returns when every component is ready and the controller
// manager has created the default ServiceAccount (so pods can be created at once).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		c, err := start(ctx, opts)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), portInUseNeedle) || ctx.Err() != nil {
			break
		}
		klog.InfoS("Port taken while starting cluster, retrying with new ports", "cluster", opts.Name, "attempt", attempt)
	}
	return nil, lastErr
}

func start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	parent := opts.Dir
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "edgemigrate-"+opts.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("creating working directory for cluster %s: %w", opts.Name, err)
	}
	c := &Cluster{Name: opts.Name, Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), opts: opts}
	defer func() {
		if err != nil {
			err = fmt.Errorf("starting cluster %s (files in %s): %w", opts.Name, dir, err)
			c.stopProcesses()
		}
	}()
	for _, sub := range []string{"logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("creating %s directory: %w", sub, err)
		}
	}
	var extraIPs []net.IP
	if opts.RealNodes > 0 {
		if c.cniDir, err = RealNodeRequirements(); err != nil {
			return nil, err
		}
		if c.imagesDir, err = imagesDir(opts.BinDir); err != nil {
			return nil, err
		}
		if c.net, err = allocateRealNet(); err != nil {
			return nil, err
		}
		extraIPs = append(extraIPs, net.ParseIP(c.net.hostIP))
	}
	if c.pki, err = newPKI(filepath.Join(dir, "pki"), opts.Name, extraIPs...); err != nil {
		return nil, err
	}
	if err := c.allocatePorts(); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		return nil, err
	}

	if err := c.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := c.startControllerManager(ctx); err != nil {
		return nil, err
	}
	if opts.Scheduler != nil {
		if err := c.StartScheduler(ctx, opts.Scheduler); err != nil {
			return nil, err
		}
	}
	if !opts.NoKwok {
		if err := c.startKwok(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.waitDefaultServiceAccount(ctx, metav1.NamespaceDefault); err != nil {
		return nil, err
	}
	if opts.RealNodes > 0 {
		if err := c.startRealNodes(ctx); err != nil {
			return nil, err
		}
	}
	klog.InfoS("Cluster ready", "cluster", c.Name, "server", c.Config.Host, "kubeconfig", c.Kubeconfig)
	return c, nil
}

func (c *Cluster) allocatePorts() error {
	ps, err := FreePorts(6)
	if err != nil {
		return err
	}
	c.ports = ports{etcdClient: ps[0], etcdPeer: ps[1], apiserver: ps[2], controllerManager: ps[3], scheduler: ps[4], kwok: ps[5]}
	return nil
}

// FreePorts asks the kernel for n distinct free ports on 127.0.0.1. They are free when
// returned, not reserved: Start retries when one is taken before its component binds it.
func FreePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("allocating a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) writeKubeconfig() error {
	host := "https://127.0.0.1:" + strconv.Itoa(c.ports.apiserver)
	c.Config = &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: c.pki.caPEM, CertData: c.pki.adminCertPEM, KeyData: c.pki.adminKeyPEM,
		},
		// Tests and the demo create objects in bursts; client-side throttling only slows them.
		QPS: 200, Burst: 400,
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	c.Client = client
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: c.pki.adminCertPEM, ClientKeyData: c.pki.adminKeyPEM}
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
	cfg.CurrentContext = c.Name
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcdClient)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcdPeer)
	p, err := c.run("etcd",
		"--name=etcd",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=etcd="+peer,
		"--unsafe-no-fsync", // throw-away data: durability only costs time here
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, client+"/health", false)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	authorization := "RBAC"
	var nodeFlags []string
	if c.opts.RealNodes > 0 {
		// Kubelets are authorized as nodes; the API server reaches them by address (never
		// through a resolver), with the admin's certificate, and calls webhooks and
		// aggregated APIs at their pods' addresses: the host has no route to Service IPs.
		authorization = "Node,RBAC"
		nodeFlags = []string{
			"--kubelet-preferred-address-types=InternalIP,Hostname",
			"--kubelet-client-certificate=" + c.pki.AdminCert,
			"--kubelet-client-key=" + c.pki.AdminKey,
			"--enable-aggregator-routing=true",
		}
	}
	p, err := c.run("kube-apiserver", append([]string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", c.ports.etcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.ports.apiserver),
		"--tls-cert-file=" + c.pki.ServingCert,
		"--tls-private-key-file=" + c.pki.ServingKey,
		"--client-ca-file=" + c.pki.CACert,
		"--requestheader-client-ca-file=" + c.pki.FrontProxyCA,
		"--requestheader-allowed-names=" + FrontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + c.pki.FrontProxyClientCert,
		"--proxy-client-key-file=" + c.pki.FrontProxyClientKey,
		"--service-account-key-file=" + c.pki.SAPublic,
		"--service-account-signing-key-file=" + c.pki.SAPrivate,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--authorization-mode=" + authorization,
		"--allow-privileged=true",
		// The endpoint reconciler would publish 127.0.0.1 as the kubernetes Service's endpoint,
		// which the API server refuses for a loopback advertise address.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=1",
	}, nodeFlags...)...)
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, c.Config.Host+"/readyz", true)
}

func (c *Cluster) startControllerManager(ctx context.Context) error {
	p, err := c.run("kube-controller-manager", append(c.secureServingFlags(c.ports.controllerManager),
		"--kubeconfig="+c.Kubeconfig,
		// nodeipam would allocate pod CIDRs to nodes; kwok assigns fake pod IPs itself.
		"--controllers=*,-nodeipam",
		"--service-account-private-key-file="+c.pki.SAPrivate,
		"--root-ca-file="+c.pki.CACert,
		"--cluster-signing-cert-file="+c.pki.CACert,
		"--cluster-signing-key-file="+c.pki.CAKey,
		"--service-cluster-ip-range="+serviceCIDR,
		"--leader-elect=false",
	)...)
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.ports.controllerManager), false)
}

// StartScheduler starts kube-scheduler with cfg; the client connection is filled in. A
// cluster runs at most one scheduler started here: stop it first to change configuration.
func (c *Cluster) StartScheduler(ctx context.Context, cfg *schedconfig.KubeSchedulerConfiguration) error {
	if c.process("kube-scheduler") != nil {
		return fmt.Errorf("cluster %s already runs kube-scheduler", c.Name)
	}
	cfg = cfg.DeepCopy()
	cfg.APIVersion = schedconfig.SchemeGroupVersion.String()
	cfg.Kind = "KubeSchedulerConfiguration"
	cfg.ClientConnection.Kubeconfig = c.Kubeconfig
	if cfg.LeaderElection.LeaderElect == nil {
		off := false
		cfg.LeaderElection.LeaderElect = &off
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding scheduler configuration: %w", err)
	}
	path := filepath.Join(c.Dir, "kube-scheduler.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing scheduler configuration: %w", err)
	}
	p, err := c.run("kube-scheduler", append(c.secureServingFlags(c.ports.scheduler), "--config="+path)...)
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.ports.scheduler), false)
}

// secureServingFlags are what kube-controller-manager and kube-scheduler share: their HTTPS
// endpoint on loopback, with authentication and authorization delegated to the API server.
func (c *Cluster) secureServingFlags(port int) []string {
	return []string{
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		// /debug/pprof (admin credentials only) is how scheduler throughput is diagnosed.
		"--profiling=true",
		"--v=1",
	}
}

// StopScheduler stops the kube-scheduler started by Options.Scheduler or StartScheduler.
func (c *Cluster) StopScheduler() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.procs {
		if p.name == "kube-scheduler" {
			p.stop(c.opts.StopGrace)
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			return
		}
	}
}

// KillAPIServer kills the cluster's kube-apiserver with SIGKILL, as a crash would, and
// returns once it is gone; etcd and every client keep running (they retry on their own).
// It does nothing when the API server is not running.
func (c *Cluster) KillAPIServer() {
	if p := c.take("kube-apiserver"); p != nil {
		p.kill()
	}
}

// StartAPIServer starts the cluster's kube-apiserver again, after KillAPIServer, on the same
// port with the same certificates and etcd, and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if c.process("kube-apiserver") != nil {
		return fmt.Errorf("cluster %s already runs kube-apiserver", c.Name)
	}
	return c.startAPIServer(ctx)
}

// take removes the running component name from the running ones, keeping it among those
// stopped (its pid stays in PIDs); nil when none runs.
func (c *Cluster) take(name string) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.procs {
		if p.name == name {
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			c.stopped = append(c.stopped, p)
			return p
		}
	}
	return nil
}

func (c *Cluster) startKwok(ctx context.Context) error {
	addr := fmt.Sprintf("127.0.0.1:%d", c.ports.kwok)
	p, err := c.run("kwok",
		"--kubeconfig="+c.Kubeconfig,
		"--config="+filepath.Join(c.opts.BinDir, KwokStagesFile),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeKey+"="+kwokNodeValue,
		"--node-lease-duration-seconds=40",
		"--server-address="+addr,
		"--cidr=10.244.0.1/16", // fake pod IPs: recorded in status, never routed
		"--node-ip=127.0.0.1",
	)
	if err != nil {
		return err
	}
	return c.waitReady(ctx, p, "http://"+addr+"/healthz", false)
}

// run starts a component from the bin directory, logging to logs/<name>.log.
func (c *Cluster) run(name string, args ...string) (*process, error) {
	p, err := startProcess(name, filepath.Join(c.opts.BinDir, name), args, filepath.Join(c.Dir, "logs", name+".log"))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

func (c *Cluster) process(name string) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// waitReady polls url until it answers 200, the process exits, or the ready timeout passes.
// adminAuth presents the admin client certificate; other endpoints are probed anonymously,
// as a kubelet's probes would.
func (c *Cluster) waitReady(ctx context.Context, p *process, url string, adminAuth bool) error {
	tlsConfig := &tls.Config{InsecureSkipVerify: true} // components' self-signed serving certs
	if adminAuth {
		var err error
		if tlsConfig, err = rest.TLSConfigFor(c.Config); err != nil {
			return fmt.Errorf("building TLS configuration: %w", err)
		}
	}
	return p.waitReady(ctx, tlsConfig, url, c.opts.ReadyTimeout)
}

// waitReady polls url until it answers 200, the process exits or timeout passes; errors
// carry the end of the process's log.
func (p *process) waitReady(ctx context.Context, tlsConfig *tls.Config, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	lastProblem := "no answer yet"
	for {
		if done, werr := p.exited(); done {
			return fmt.Errorf("%s exited before becoming ready (%v); last log lines:\n%s", p.name, werr, p.tail(logTailLines))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			lastProblem = resp.Status
		} else {
			lastProblem = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s (%s: %s); last log lines:\n%s", p.name, timeout, url, lastProblem, p.tail(logTailLines))
		case <-ticker.C:
		}
	}
}

// waitDefaultServiceAccount waits until the controller manager has created namespace's
// default ServiceAccount: until then, pods cannot be created there.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context, namespace string) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, c.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		tail := "(controller manager not running)"
		if p := c.process("kube-controller-manager"); p != nil {
			tail = p.tail(logTailLines)
		}
		return fmt.Errorf("no default ServiceAccount in namespace %s within %s: %w; controller manager's last log lines:\n%s",
			namespace, c.opts.ReadyTimeout, err, tail)
	}
	return nil
}

// Stop stops every component (clients first, etcd last), waits until each has exited, and
// removes the working directory unless Options.KeepDir. It is safe to call more than once.
func (c *Cluster) Stop() {
	c.stopProcesses()
	if !c.opts.KeepDir {
		if err := os.RemoveAll(c.Dir); err != nil {
			klog.ErrorS(err, "Removing cluster directory", "cluster", c.Name, "dir", c.Dir)
		}
	}
}

func (c *Cluster) stopProcesses() {
	// Real nodes first: their pods are deleted through the API server.
	c.stopRealNodes()
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	if len(procs) == 0 {
		return
	}
	// Everything but etcd and the API server are clients of the API server: stop them
	// together, then the API server, then its storage.
	var server, storage []*process
	var clients []*process
	for _, p := range procs {
		switch p.name {
		case "etcd":
			storage = append(storage, p)
		case "kube-apiserver":
			server = append(server, p)
		default:
			clients = append(clients, p)
		}
	}
	for _, group := range [][]*process{clients, server, storage} {
		var wg sync.WaitGroup
		for _, p := range group {
			wg.Go(func() { p.stop(c.opts.StopGrace) })
		}
		wg.Wait()
	}
	c.mu.Lock()
	c.stopped = append(c.stopped, procs...)
	c.mu.Unlock()
	klog.InfoS("Cluster stopped", "cluster", c.Name)
}

// PIDs returns the process ids of every component this cluster has started, running or not.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, p := range append(append([]*process(nil), c.stopped...), c.procs...) {
		pids = append(pids, p.pid())
	}
	return pids
}

// LogTails returns the last lines of every component's log, for a failing test's output.
func (c *Cluster) LogTails(lines int) string {
	entries, err := os.ReadDir(filepath.Join(c.Dir, "logs"))
	if err != nil {
		return fmt.Sprintf("cluster %s: cannot read logs: %v", c.Name, err)
	}
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "----- cluster %s: %s (last %d lines) -----\n%s\n", c.Name, e.Name(), lines,
			tailFile(filepath.Join(c.Dir, "logs", e.Name()), lines))
	}
	return b.String()
}

// Namespace creates a namespace with a generated name and waits until its default
// ServiceAccount exists, so pods can be created in it at once.
func (c *Cluster) Namespace(ctx context.Context, prefix string, labels map[string]string) (string, error) {
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating namespace %s-*: %w", prefix, err)
	}
	if err := c.waitDefaultServiceAccount(ctx, ns.Name); err != nil {
		return "", err
	}
	return ns.Name, nil
}
