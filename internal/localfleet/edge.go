package localfleet

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

	mu                                          sync.Mutex
	extender, defaultScheduler, hook, deschedlr *localcluster.Process
	ended                                       []*localcluster.Process // stopped or killed
}

// start brings up edgemigrate in the edge's running cluster.
func (e *Edge) start(ctx context.Context, nodes []*corev1.Node) error {
	ports, err := localcluster.FreePorts(4)
	if err != nil {
		return err
	}
	e.ExtenderURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	e.WebhookURL = fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	e.LocatorURL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	e.defaultSchedulerPort = ports[3]

	if err := e.installObjects(ctx); err != nil {
		return err
	}
	if err := e.startExtender(ctx); err != nil {
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
	if e.fleet.opts.NoDescheduler {
		return nil
	}
	return e.StartDescheduler(ctx)
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

func (e *Edge) startExtender(ctx context.Context) error {
	p, err := e.run("extender", "extender",
		"--listen-address", hostPort(e.ExtenderURL),
		"--kubeconfig", e.Kubeconfig,
	)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.extender = p
	e.mu.Unlock()
	return p.WaitReady(ctx, e.ExtenderURL+"/readyz", e.fleet.opts.ReadyTimeout)
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
	path := filepath.Join(e.fleet.Dir, e.ID+"-default-scheduler.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing default scheduler configuration: %w", err)
	}
	p, err := e.fleet.startProcess(e.ID+"-default-scheduler", filepath.Join(e.fleet.opts.BinDir, "kube-scheduler"), []string{
		"--config=" + path,
		"--authentication-kubeconfig=" + e.Kubeconfig,
		"--authorization-kubeconfig=" + e.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(e.defaultSchedulerPort),
		"--v=1",
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.defaultScheduler = p
	e.mu.Unlock()
	return p.WaitReady(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", e.defaultSchedulerPort), e.fleet.opts.ReadyTimeout)
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
	p, err := e.run("webhook", "webhook",
		"--address", hostPort(e.WebhookURL),
		"--self-signed", "--self-signed-hosts", "127.0.0.1",
		"--cluster-id", e.ID,
		"--kubeconfig", e.Kubeconfig,
		"--install-namespace", SystemNamespace,
		"--webhook-config-name", cfg.Name,
	)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.hook = p
	e.mu.Unlock()
	if err := p.WaitReady(ctx, e.WebhookURL+"/readyz", e.fleet.opts.ReadyTimeout); err != nil {
		return err
	}
	return e.waitWebhookCalled(ctx, p)
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

// deschedulerArgs are the descheduler's flags: this edge's site, endpoints and ledger
// identity, short leader-election and bidding times for tests, then Options.DeschedulerArgs.
func (e *Edge) deschedulerArgs() []string {
	args := []string{
		"descheduler",
		"--kubeconfig", e.Kubeconfig,
		"--namespace", SystemNamespace,
		"--cluster-id", e.ID,
		"--location", e.Point().String(),
		"--coverage-radius", formatFloat(e.RadiusM),
		"--coverage-hysteresis", formatFloat(e.RadiusM / 10),
		"--public-endpoint", e.LocatorURL,
		"--listen-address", hostPort(e.LocatorURL),
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

// StartDescheduler starts the descheduler with the fleet's flags (again, after
// KillDescheduler or StopDescheduler) and waits until it is ready.
func (e *Edge) StartDescheduler(ctx context.Context) error {
	e.mu.Lock()
	if e.deschedlr != nil {
		e.mu.Unlock()
		return fmt.Errorf("edge %s already runs the descheduler (pid %d)", e.ID, e.deschedlr.PID())
	}
	e.mu.Unlock()
	p, err := e.run("descheduler", e.deschedulerArgs()...)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.deschedlr = p
	e.mu.Unlock()
	return p.WaitReady(ctx, e.LocatorURL+"/readyz", e.fleet.opts.ReadyTimeout)
}

// KillDescheduler kills the descheduler with SIGKILL, as a crash would: no lease release,
// no cleanup. It does nothing when the descheduler is not running.
func (e *Edge) KillDescheduler() {
	if p := e.takeDescheduler(); p != nil {
		p.Kill()
	}
}

// StopDescheduler stops the descheduler gracefully (SIGTERM, then SIGKILL after a grace).
func (e *Edge) StopDescheduler() {
	if p := e.takeDescheduler(); p != nil {
		p.Stop(stopGrace)
	}
}

// DeschedulerPID is the running descheduler's process id, 0 when none runs.
func (e *Edge) DeschedulerPID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deschedlr == nil {
		return 0
	}
	return e.deschedlr.PID()
}

func (e *Edge) takeDescheduler() *localcluster.Process {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.deschedlr
	e.deschedlr = nil
	if p != nil {
		e.ended = append(e.ended, p)
	}
	return p
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
	for _, p := range append(slices.Clone(e.ended), e.extender, e.defaultScheduler, e.hook, e.deschedlr) {
		if p != nil {
			pids = append(pids, p.PID())
		}
	}
	return pids
}

// stop stops edgemigrate's processes together, then the cluster.
func (e *Edge) stop() {
	e.mu.Lock()
	procs := []*localcluster.Process{e.deschedlr, e.hook, e.extender, e.defaultScheduler}
	e.ended = append(e.ended, procs...)
	e.deschedlr, e.hook, e.extender, e.defaultScheduler = nil, nil, nil, nil
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		if p != nil {
			wg.Go(func() {
				began := time.Now()
				p.Stop(stopGrace)
				klog.V(2).InfoS("Stopped", "process", p.Name(), "pid", p.PID(), "took", time.Since(began))
			})
		}
	}
	wg.Wait()
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
