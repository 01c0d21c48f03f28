package localfleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/manifests"
	"github.com/edgemigrate/edgemigrate/mtls"
	"github.com/edgemigrate/edgemigrate/webhook"
)

// probeImage is the image of the dry-run pod that proves the webhook is called.
const probeImage = "registry.k8s.io/pause:3.10"

// Edge is one cluster of the fleet with its edgemigrate processes.
type Edge struct {
	Site
	*localcluster.Cluster
	// LocatorURL is the descheduler's public endpoint, HTTPS with the edge's Identity:
	// locator API, gateway and /readyz; nothing answers there while the descheduler is off.
	// With several replicas it is a TCP front forwarding to the ready one.
	LocatorURL string
	// ExtenderURL is the scheduler extender (verbs, /readyz, /metrics).
	ExtenderURL string
	// WebhookURL is the webhook's HTTPS base; the API server calls WebhookURL+webhook.Path.
	WebhookURL string
	// MSPID is the cluster's MSP on the ledger, the Organization of its Identity.
	MSPID string
	// Identity is the cluster's certificate (CommonName = ID), key and the fleet's CA.
	Identity mtls.Files

	fleet                *Fleet
	index                int
	defaultSchedulerPort int
	replicaURLs          []string // each descheduler replica's own HTTPS address
	front                *front   // the public endpoint when there are several replicas

	mu       sync.Mutex
	members  []*member // in start order
	ended    []*localcluster.Process
	stopping bool
}

// Names of an edge's processes for KillProcess, StartProcess and Fleet.Targets; the
// descheduler's replicas are ReplicaName(i).
const (
	ProcessExtender         = "extender"
	ProcessDefaultScheduler = "default-scheduler"
	ProcessWebhook          = "webhook"
	ProcessAPIServer        = "kube-apiserver"
)

// ReplicaName is the process name of descheduler replica i.
func ReplicaName(i int) string { return fmt.Sprintf("descheduler-%d", i) }

// member is one process of an edge that a test may kill and start again, by name.
type member struct {
	name string
	// launch starts the process; await waits until it serves.
	launch func() (*localcluster.Process, error)
	await  func(ctx context.Context, p *localcluster.Process) error
	// health is the liveness URL the supervisor probes (Options.Supervise).
	health   string
	proc     *localcluster.Process // nil while not running
	restarts int
}

// errRunning is StartProcess's error for a process that already runs.
var errRunning = errors.New("already running")

// start brings up edgemigrate in the edge's running cluster.
func (e *Edge) start(ctx context.Context, nodes []*corev1.Node) error {
	replicas := e.fleet.opts.DeschedulerReplicas
	extra := 0
	if replicas > 1 {
		extra = replicas
	}
	ports, err := localcluster.FreePorts(4 + extra)
	if err != nil {
		return err
	}
	e.ExtenderURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	e.WebhookURL = fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	e.LocatorURL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	e.defaultSchedulerPort = ports[3]
	e.replicaURLs = []string{e.LocatorURL}
	if replicas > 1 {
		e.replicaURLs = nil
		for _, port := range ports[4:] {
			e.replicaURLs = append(e.replicaURLs, fmt.Sprintf("https://127.0.0.1:%d", port))
		}
	}
	e.mu.Lock()
	e.members = e.newMembers()
	e.mu.Unlock()

	if err := e.installObjects(ctx); err != nil {
		return err
	}
	if err := e.StartProcess(ctx, ProcessExtender); err != nil {
		return err
	}
	if err := e.startSchedulers(ctx); err != nil {
		return err
	}
	if err := e.startWebhook(ctx); err != nil {
		return err
	}
	if err := e.AddNodes(ctx, nodes...); err != nil {
		return err
	}
	if replicas > 1 {
		var hosts []string
		for _, u := range e.replicaURLs {
			hosts = append(hosts, hostPort(u))
		}
		fr, err := startFront(hostPort(e.LocatorURL), hosts, e.fleet.probeTLS())
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.front = fr
		e.mu.Unlock()
	}
	if e.fleet.opts.NoDescheduler {
		return nil
	}
	return e.StartDescheduler(ctx)
}

// newMembers describes the edge's processes: how each starts and when it serves.
func (e *Edge) newMembers() []*member {
	timeout := e.fleet.opts.ReadyTimeout
	ms := []*member{
		{
			name: ProcessExtender, health: e.ExtenderURL + "/healthz",
			launch: func() (*localcluster.Process, error) {
				return e.run(ProcessExtender, "extender", "--listen-address", hostPort(e.ExtenderURL), "--kubeconfig", e.Kubeconfig)
			},
			await: func(ctx context.Context, p *localcluster.Process) error {
				return p.WaitReady(ctx, e.ExtenderURL+"/readyz", timeout)
			},
		},
		{
			name: ProcessDefaultScheduler, health: fmt.Sprintf("https://127.0.0.1:%d/healthz", e.defaultSchedulerPort),
			launch: func() (*localcluster.Process, error) {
				return e.fleet.startProcess(e.ID+"-"+ProcessDefaultScheduler, filepath.Join(e.fleet.opts.BinDir, "kube-scheduler"), []string{
					"--config=" + e.defaultSchedulerConfig(),
					"--authentication-kubeconfig=" + e.Kubeconfig,
					"--authorization-kubeconfig=" + e.Kubeconfig,
					"--bind-address=127.0.0.1",
					"--secure-port=" + strconv.Itoa(e.defaultSchedulerPort),
					"--v=1",
				})
			},
			await: func(ctx context.Context, p *localcluster.Process) error {
				return p.WaitReady(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", e.defaultSchedulerPort), timeout)
			},
		},
		{
			name: ProcessWebhook, health: e.WebhookURL + "/healthz",
			launch: func() (*localcluster.Process, error) {
				return e.run(ProcessWebhook, "webhook",
					"--address", hostPort(e.WebhookURL),
					"--self-signed", "--self-signed-hosts", "127.0.0.1",
					"--cluster-id", e.ID,
					"--kubeconfig", e.Kubeconfig,
					"--install-namespace", SystemNamespace,
					"--webhook-config-name", webhookConfigName(),
				)
			},
			await: func(ctx context.Context, p *localcluster.Process) error {
				if err := p.WaitReady(ctx, e.WebhookURL+"/readyz", timeout); err != nil {
					return err
				}
				return e.waitWebhookCalled(ctx, p)
			},
		},
	}
	for i, u := range e.replicaURLs {
		ms = append(ms, &member{
			name: ReplicaName(i), health: u + "/healthz",
			launch: func() (*localcluster.Process, error) {
				return e.run(ReplicaName(i), e.deschedulerArgs(hostPort(u))...)
			},
			// A standby is never ready: that a replica serves is all its start waits for.
			await: func(ctx context.Context, p *localcluster.Process) error {
				return e.fleet.waitAnswers(ctx, p, u+"/healthz")
			},
		})
	}
	return ms
}

// installObjects creates what the descheduler expects to find: its namespace, the
// client-token Secret, the hosting objects (ClusterRole edgemigrate-host, the
// ValidatingAdmissionPolicy) and the Migration CRD.
func (e *Edge) installObjects(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", SystemNamespace, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ClientTokensSecret, Namespace: SystemNamespace},
		StringData: e.fleet.ClientTokens,
	}
	if _, err := e.Client.CoreV1().Secrets(SystemNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Secret %s/%s: %w", SystemNamespace, ClientTokensSecret, err)
	}
	if err := manifests.InstallHosting(ctx, e.Client); err != nil {
		return err
	}
	return applyCRD(ctx, e.Config, manifests.MigrationCRDYAML, e.fleet.opts.ReadyTimeout)
}

// startSchedulers starts edgemigrate-scheduler, configured by manifests/scheduler-config.yaml
// with the extender at ExtenderURL, and a separate default scheduler. Two processes, as in a
// real cluster: extenders apply to every profile of a kube-scheduler, so one process with two
// profiles would send every other pod to the extender too.
func (e *Edge) startSchedulers(ctx context.Context) error {
	cfg, err := manifests.SchedulerConfig()
	if err != nil {
		return err
	}
	cfg.Extenders[0].URLPrefix = e.ExtenderURL
	// One replica: waiting for a lease only slows the start.
	cfg.LeaderElection.LeaderElect = ptr.To(false)
	if err := e.StartScheduler(ctx, cfg); err != nil {
		return fmt.Errorf("starting %s: %w", api.SchedulerName, err)
	}

	def := schedconfig.KubeSchedulerConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: schedconfig.SchemeGroupVersion.String(), Kind: "KubeSchedulerConfiguration"},
	}
	def.LeaderElection.LeaderElect = ptr.To(false)
	def.ClientConnection.Kubeconfig = e.Kubeconfig
	data, err := yaml.Marshal(def)
	if err != nil {
		return fmt.Errorf("encoding default scheduler configuration: %w", err)
	}
	if err := os.WriteFile(e.defaultSchedulerConfig(), data, 0o600); err != nil {
		return fmt.Errorf("writing default scheduler configuration: %w", err)
	}
	return e.StartProcess(ctx, ProcessDefaultScheduler)
}

func (e *Edge) defaultSchedulerConfig() string {
	return filepath.Join(e.fleet.Dir, e.ID+"-default-scheduler.yaml")
}

// startWebhook installs manifests/webhook.yaml's MutatingWebhookConfiguration pointed at
// WebhookURL, starts the webhook in self-signed mode (it writes the caBundle) and waits
// until the API server actually calls it.
func (e *Edge) startWebhook(ctx context.Context) error {
	cfg, err := manifests.WebhookConfiguration()
	if err != nil {
		return err
	}
	for i := range cfg.Webhooks {
		cfg.Webhooks[i].ClientConfig.Service = nil
		cfg.Webhooks[i].ClientConfig.URL = ptr.To(e.WebhookURL + webhook.Path)
	}
	if _, err := e.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	return e.StartProcess(ctx, ProcessWebhook)
}

// webhookConfigName is the name of manifests/webhook.yaml's MutatingWebhookConfiguration.
func webhookConfigName() string {
	cfg, err := manifests.WebhookConfiguration()
	if err != nil {
		panic(fmt.Sprintf("the embedded webhook manifest: %v", err)) // read before, when the fleet installed it
	}
	return cfg.Name
}

// waitWebhookCalled dry-runs the creation of an opted-in pod until the API server returns
// it mutated: then the caBundle is in place and the webhook is reachable. (failurePolicy
// Ignore admits the pod unchanged until then.)
func (e *Edge) waitWebhookCalled(ctx context.Context, p *localcluster.Process) error {
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "edgemigrate-webhook-probe", Namespace: metav1.NamespaceDefault,
			Annotations: map[string]string{api.AnnotationMigrate: "true"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: probeImage}}},
	}
	last := "no answer yet"
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, e.fleet.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		if done, _ := p.Exited(); done {
			return false, errors.New("webhook exited")
		}
		got, err := e.Client.CoreV1().Pods(probe.Namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if got.Spec.SchedulerName != api.SchedulerName || got.Annotations[api.AnnotationSourceCluster] != e.ID {
			last = fmt.Sprintf("probe pod not mutated (schedulerName %q)", got.Spec.SchedulerName)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the API server never called the webhook: %w (last: %s); webhook's last log lines:\n%s", err, last, p.Tail(logTailLines))
	}
	return nil
}

// deschedulerArgs are the flags of a descheduler replica serving on listen: this edge's
// site, public endpoint and ledger identity, short leader-election and bidding times for
// tests, then Options.DeschedulerArgs.
func (e *Edge) deschedulerArgs(listen string) []string {
	args := []string{
		"descheduler",
		"--kubeconfig", e.Kubeconfig,
		"--namespace", SystemNamespace,
		"--cluster-id", e.ID,
		"--location", e.Point().String(),
		"--coverage-radius", formatFloat(e.RadiusM),
		"--coverage-hysteresis", formatFloat(e.RadiusM / 10),
		"--public-endpoint", e.LocatorURL,
		"--listen-address", listen,
		"--client-tokens-secret", ClientTokensSecret,
		"--tls-cert-file", e.Identity.CertFile, "--tls-key-file", e.Identity.KeyFile, "--tls-ca-file", e.Identity.CAFile,
		"--leader-elect=true",
		// Short enough that a restarted descheduler takes over quickly, long enough that a
		// renewal on a loaded 2-core machine does not lose the Lease (3 s did, at load 9).
		"--leader-elect-lease-duration", "8s",
		"--leader-elect-renew-deadline", "6s",
		"--leader-elect-retry-period", "1s",
		"--bid-timeout", "1s",
		"--capacity-report-interval", "5s",
	}
	if e.fleet.opts.LedgerArgs != nil {
		args = append(args, e.fleet.opts.LedgerArgs(e.index)...)
	} else {
		args = append(args, "--ledger-backend", "remote", "--ledger-url", e.fleet.LedgerURL)
	}
	return append(args, e.fleet.opts.DeschedulerArgs...)
}

// Replicas is the number of descheduler replicas (Options.DeschedulerReplicas).
func (e *Edge) Replicas() int { return len(e.replicaURLs) }

// ReplicaURL is replica i's own HTTPS address (its /readyz, /healthz and /metrics); with one
// replica it is LocatorURL.
func (e *Edge) ReplicaURL(i int) string { return e.replicaURLs[i] }

// ReplicaPID is replica i's process id, 0 when it does not run.
func (e *Edge) ReplicaPID(i int) int { return e.PID(ReplicaName(i)) }

// StartDescheduler starts every descheduler replica that does not run (again, after
// KillDescheduler or StopDescheduler) and waits until one is ready. It fails when every
// replica already runs.
func (e *Edge) StartDescheduler(ctx context.Context) error {
	started := 0
	for i := range e.Replicas() {
		err := e.StartReplica(ctx, i)
		if errors.Is(err, errRunning) {
			continue
		}
		if err != nil {
			return err
		}
		started++
	}
	if started == 0 {
		return fmt.Errorf("edge %s already runs the descheduler (%d replicas)", e.ID, e.Replicas())
	}
	_, err := e.LeaderReplica(ctx)
	return err
}

// KillDescheduler kills every descheduler replica with SIGKILL, as a crash would: no lease
// release, no cleanup. Replicas not running are left alone.
func (e *Edge) KillDescheduler() {
	for i := range e.Replicas() {
		e.KillReplica(i)
	}
}

// StopDescheduler stops every replica gracefully (SIGTERM, then SIGKILL after a grace).
func (e *Edge) StopDescheduler() {
	var wg sync.WaitGroup
	for i := range e.Replicas() {
		wg.Go(func() { e.StopReplica(i) })
	}
	wg.Wait()
}

// DeschedulerPID is replica 0's process id, 0 when it does not run.
func (e *Edge) DeschedulerPID() int { return e.ReplicaPID(0) }

// StartReplica starts descheduler replica i and waits until it serves (a standby is
// never ready); an error wrapping "already running" when it runs.
func (e *Edge) StartReplica(ctx context.Context, i int) error {
	return e.StartProcess(ctx, ReplicaName(i))
}

// KillReplica kills descheduler replica i with SIGKILL; nothing when it does not run.
func (e *Edge) KillReplica(i int) { _ = e.KillProcess(ReplicaName(i)) }

// StopReplica stops descheduler replica i with SIGTERM, then SIGKILL after the grace.
func (e *Edge) StopReplica(i int) { _ = e.StopProcess(ReplicaName(i)) }

// LeaderReplica waits until a descheduler replica is ready (leading, registered on the
// ledger, its tokens read) and returns its index: the replica the public endpoint sends
// clients to.
func (e *Edge) LeaderReplica(ctx context.Context) (int, error) {
	client := e.fleet.probeClient()
	defer client.CloseIdleConnections()
	leader := -1
	var last []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, e.fleet.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		var now []string
		defer func() {
			if len(now) > 0 {
				last = now
			}
		}()
		for i, u := range e.replicaURLs {
			if e.ReplicaPID(i) == 0 {
				now = append(now, fmt.Sprintf("replica %d: not running", i))
				continue
			}
			status, body, err := probe(ctx, client, u+"/readyz")
			switch {
			case status == http.StatusOK:
				leader = i
				return true, nil
			case ctx.Err() != nil: // the wait ended during this probe: keep the last answer
				return false, nil
			case err != nil:
				now = append(now, fmt.Sprintf("replica %d: %v", i, err))
			default:
				now = append(now, fmt.Sprintf("replica %d: %d %s", i, status, body))
			}
		}
		return false, nil
	})
	if err != nil {
		var tails strings.Builder
		for i := range e.Replicas() {
			fmt.Fprintf(&tails, "----- %s %s -----\n%s\n", e.ID, ReplicaName(i),
				localcluster.TailFile(filepath.Join(e.fleet.logDir(), e.ID+"-"+ReplicaName(i)+".log"), logTailLines))
		}
		return -1, fmt.Errorf("no descheduler replica of %s ready within %s (%s): %w; last log lines:\n%s",
			e.ID, e.fleet.opts.ReadyTimeout, strings.Join(last, "; "), err, tails.String())
	}
	return leader, nil
}

// ProcessNames are the names KillProcess and StartProcess take: kube-apiserver, the
// extender, the default scheduler, the webhook and each descheduler replica.
func (e *Edge) ProcessNames() []string {
	names := []string{ProcessAPIServer}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.members {
		names = append(names, m.name)
	}
	return names
}

// KillProcess kills the named process (see ProcessNames) with SIGKILL, as a crash would,
// and returns once it is gone; nothing happens when it does not run.
func (e *Edge) KillProcess(name string) error {
	if name == ProcessAPIServer {
		e.KillAPIServer()
		return nil
	}
	p, err := e.take(name)
	if p != nil {
		p.Kill()
	}
	return err
}

// StopProcess stops the named process with SIGTERM, then SIGKILL after a grace.
func (e *Edge) StopProcess(name string) error {
	if name == ProcessAPIServer {
		e.KillAPIServer() // etcd-backed and stateless: a crash and a stop are alike to its clients
		return nil
	}
	p, err := e.take(name)
	if p != nil {
		p.Stop(stopGrace)
	}
	return err
}

// StartProcess starts the named process again with the same flags, ports and files and
// waits until it serves; an error wrapping "already running" when it runs.
func (e *Edge) StartProcess(ctx context.Context, name string) error {
	if name == ProcessAPIServer {
		return e.StartAPIServer(ctx)
	}
	m, err := e.member(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return fmt.Errorf("edge %s is stopping", e.ID)
	}
	if m.proc != nil {
		pid := m.proc.PID()
		e.mu.Unlock()
		return fmt.Errorf("edge %s: %s (pid %d): %w", e.ID, name, pid, errRunning)
	}
	p, err := m.launch()
	if err != nil {
		e.mu.Unlock()
		return err
	}
	m.proc = p
	e.mu.Unlock()
	if e.fleet.opts.Supervise {
		go e.supervise(m, p)
	}
	return m.await(ctx, p)
}

// PID is the named process's id, 0 when it does not run.
func (e *Edge) PID(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.members {
		if m.name == name && m.proc != nil {
			return m.proc.PID()
		}
	}
	return 0
}

// Restarts is how often the supervisor (Options.Supervise) restarted the named process.
func (e *Edge) Restarts(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.members {
		if m.name == name {
			return m.restarts
		}
	}
	return 0
}

func (e *Edge) member(name string) (*member, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.members {
		if m.name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("edge %s has no process %q (it has %s and %v)", e.ID, name, ProcessAPIServer, e.memberNamesLocked())
}

func (e *Edge) memberNamesLocked() []string {
	var names []string
	for _, m := range e.members {
		names = append(names, m.name)
	}
	return names
}

// take removes the named process from the running ones (a supervisor leaves it dead) and
// returns it, nil when it does not run.
func (e *Edge) take(name string) (*localcluster.Process, error) {
	m, err := e.member(name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := m.proc
	m.proc = nil
	if p != nil {
		e.ended = append(e.ended, p)
	}
	return p, nil
}

// PIDs returns the process ids of every process of this edge, running or not: the
// cluster's components and edgemigrate's.
func (e *Edge) PIDs() []int {
	var pids []int
	if e.Cluster != nil {
		pids = e.Cluster.PIDs()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.ended {
		pids = append(pids, p.PID())
	}
	for _, m := range e.members {
		if m.proc != nil {
			pids = append(pids, m.proc.PID())
		}
	}
	return pids
}

// stop stops edgemigrate's processes together, then the public endpoint, then the cluster.
func (e *Edge) stop() {
	e.mu.Lock()
	e.stopping = true
	var procs []*localcluster.Process
	for _, m := range e.members {
		if m.proc != nil {
			procs = append(procs, m.proc)
			m.proc = nil
		}
	}
	e.ended = append(e.ended, procs...)
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			began := time.Now()
			p.Stop(stopGrace)
			klog.V(2).InfoS("Stopped", "process", p.Name(), "pid", p.PID(), "took", time.Since(began))
		})
	}
	wg.Wait()
	if e.front != nil {
		e.front.Close()
	}
	if e.Cluster != nil {
		began := time.Now()
		e.Cluster.Stop()
		klog.V(2).InfoS("Stopped", "cluster", e.ID, "took", time.Since(began))
	}
}

// run starts a subcommand of the edgemigrate binary, logging to logs/<edge>-<name>.log.
func (e *Edge) run(name string, args ...string) (*localcluster.Process, error) {
	return e.fleet.startProcess(e.ID+"-"+name, e.fleet.opts.Binary, args)
}

// hostPort is the host:port of a URL built by this package.
func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Host
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
