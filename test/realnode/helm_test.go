package realnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/ledger/remote"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/mtls"
)

const (
	chartDir         = "../../charts/edgemigrate"
	release          = "edgemigrate"
	releaseNamespace = "edgemigrate-system"
)

// TestE2ERealNodeHelmInstall installs the chart with its default image (what `make images`
// built, from the cluster's registry) on a cluster whose only node is real, and every
// component's pod becomes Ready by its probes: the webhook (self-signed, writing its
// caBundle), the second scheduler (plugin mode, the default: the edgemigrate-scheduler image
// alone), and one of the two descheduler
// replicas, the leader (through its ServiceAccount token and in-cluster config; it talks to a
// ledger on the host), while the other stands by unready. Then an opted-in pod is mutated
// by the webhook pod, called by the API server through its Service, and placed on the real
// node by edgemigrate-scheduler. `helm test` passes, its pod running the project's image.
func TestE2ERealNodeHelmInstall(t *testing.T) {
	c := shared.Require(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	helmBin := helmPath(t)

	// The shared ledger, on the host's address on the nodes' bridge.
	// over mutual TLS: one CA issues the ledger's and the cluster's identities.
	dir := t.TempDir()
	ca, err := mtls.NewCA("realnode-fleet-ca")
	if err != nil {
		t.Fatal(err)
	}
	ledgerFiles, err := ca.WriteIdentity(filepath.Join(dir, "ledger"), "ledger", "LedgerMSP", c.RealNodeHostIP())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(c.RealNodeHostIP(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	ledgerCtx, stopLedger := context.WithCancel(ctx)
	ledgerDone := make(chan error, 1)
	go func() {
		o := remote.NewServerOptions()
		o.DBPath, o.TLS, o.NoSync = filepath.Join(dir, "ledger.db"), ledgerFiles, true
		ledgerDone <- remote.Serve(ledgerCtx, o, ln)
	}()
	t.Cleanup(func() {
		stopLedger()
		if err := <-ledgerDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("ledger: %v", err)
		}
	})

	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The cluster identity Secret the chart's default (identity.mode=secret) mounts.
	certPEM, keyPEM, err := ca.Issue("edge-a", "EdgeAMSP", "edgemigrate-locator."+releaseNamespace+".svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Secrets(releaseNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: api.ClusterIdentitySecret},
		Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": ca.PEM()},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	args := []string{"install", release, chartDir, "--namespace", releaseNamespace, "--kubeconfig", c.Kubeconfig,
		// Not --wait: it would wait for both descheduler replicas, and only the leader is Ready.
		"--set", "clusterId=edge-a",
		"--set", "ledger.remote.url=https://" + ln.Addr().String(),
		// The node is amd64 (its kubelet says so): select Jetsons by their GPU product alone.
		"--set", "jetson.nodeSelector=" + api.LabelGPUProduct,
		"--set-string", "nodeSelector." + strings.ReplaceAll(localcluster.RealNodeLabel, ".", `\.`) + "=true",
		"--set", "tolerations[0].key=" + localcluster.RealNodeTaint, "--set", "tolerations[0].operator=Exists",
	}
	if out, err := exec.CommandContext(ctx, helmBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("helm install: %v\n%s\n%s", err, out, describePods(ctx, c, releaseNamespace))
	}
	t.Cleanup(func() {
		_ = exec.Command(helmBin, "uninstall", release, "--namespace", releaseNamespace, "--kubeconfig", c.Kubeconfig, "--wait").Run()
	})

	// Every component runs on the real node, from the project's images.
	var ready map[string]int
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Client.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready = map[string]int{}
		for _, p := range pods.Items {
			if podReady(&p) {
				ready[p.Labels["app.kubernetes.io/component"]]++
			}
			if p.Spec.NodeName != "" && p.Spec.NodeName != c.RealNodes()[0].Name {
				return false, fmt.Errorf("pod %s on node %q", p.Name, p.Spec.NodeName)
			}
			if cs := p.Spec.Containers; p.Labels["app.kubernetes.io/component"] == "scheduler" &&
				(len(cs) != 1 || !strings.HasPrefix(cs[0].Image, images.Registry+"/"+images.EdgemigrateScheduler+":")) {
				return false, fmt.Errorf("scheduler pod %s runs %+v, want the edgemigrate-scheduler image alone", p.Name, cs)
			}
		}
		return ready["webhook"] == 1 && ready["scheduler"] == 1 && ready["descheduler"] == 1, nil
	})
	if err != nil {
		t.Fatalf("chart's pods not Ready (%v): %v\n%s", ready, err, describePods(ctx, c, releaseNamespace))
	}
	// The descheduler holds its Lease, through its ServiceAccount and the in-cluster config.
	lease, err := c.Client.CoordinationV1().Leases(releaseNamespace).Get(ctx, "edgemigrate-descheduler-edge-a", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || !strings.HasPrefix(*lease.Spec.HolderIdentity, "edgemigrate-descheduler-") {
		t.Errorf("descheduler's Lease: %v %+v", err, lease)
	}

	t.Run("helm test", func(t *testing.T) { helmTest(ctx, t, c, helmBin) })

	// An opted-in pod: the webhook pod mutates it, edgemigrate-scheduler places it.
	ns := clustertest.Namespace(t, c, map[string]string{api.LabelNamespaceEnabled: "true"})
	pod := testServicePod("model")
	pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	pod.Annotations = map[string]string{api.AnnotationGPUMemory: "256Mi"}
	pod.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
	created, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.SchedulerName != api.SchedulerName || created.Annotations[api.AnnotationSourceCluster] != "edge-a" {
		t.Fatalf("the webhook pod did not mutate the pod (failurePolicy Ignore admits it unchanged): scheduler %q, annotations %v",
			created.Spec.SchedulerName, created.Annotations)
	}
	running := waitPod(ctx, t, c, ns, "model", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if running.Spec.NodeName != c.RealNodes()[0].Name {
		t.Errorf("opted-in pod on %q", running.Spec.NodeName)
	}

	t.Run("upgrade replaces the descheduler", func(t *testing.T) { upgradeDescheduler(ctx, t, c, helmBin) })
}

// upgradeDescheduler changes the descheduler's pod template with `helm upgrade` and sees
// the rollout finish: both replicas replaced and a new one leading. Rolled (RollingUpdate),
// it could not: no new replica is Ready while the old leader runs.
func upgradeDescheduler(ctx context.Context, t *testing.T, c *localcluster.Cluster, helmBin string) {
	const flag = "-v=3"
	if out, err := exec.CommandContext(ctx, helmBin, "upgrade", release, chartDir, "--namespace", releaseNamespace, "--kubeconfig", c.Kubeconfig,
		"--reuse-values", "--set", "descheduler.extraArgs={"+flag+"}").CombinedOutput(); err != nil {
		t.Fatalf("helm upgrade: %v\n%s", err, out)
	}
	var state string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Client.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=descheduler"})
		if err != nil {
			return false, nil
		}
		lease, err := c.Client.CoordinationV1().Leases(releaseNamespace).Get(ctx, "edgemigrate-descheduler-edge-a", metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			return false, nil
		}
		upgraded, ready, leader := 0, 0, false
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && slices.Contains(p.Spec.Containers[0].Args, flag) {
				upgraded++
			}
			if podReady(&p) {
				ready++
			}
			leader = leader || (slices.Contains(p.Spec.Containers[0].Args, flag) && strings.HasPrefix(*lease.Spec.HolderIdentity, p.Name+"_"))
		}
		state = fmt.Sprintf("%d pods, %d upgraded, %d Ready, Lease held by %s", len(pods.Items), upgraded, ready, *lease.Spec.HolderIdentity)
		return len(pods.Items) == 2 && upgraded == 2 && ready == 1 && leader, nil
	})
	if err != nil {
		t.Fatalf("descheduler not replaced (%s): %v\n%s", state, err, describePods(ctx, c, releaseNamespace))
	}
	t.Logf("descheduler upgraded: %s", state)
}

// helmTest runs `helm test` on the installed release: its pod, from the image the components
// run (the same digest the kubelet pulled for the webhook), checks the webhook and the locator
// through their Services and succeeds.
func helmTest(ctx context.Context, t *testing.T, c *localcluster.Cluster, helmBin string) {
	// The pod is deleted once it succeeds (hook-delete-policy): watch it for what it ran.
	w, err := c.Client.CoreV1().Pods(releaseNamespace).Watch(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=test"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	out, err := exec.CommandContext(ctx, helmBin, "test", release, "--namespace", releaseNamespace, "--kubeconfig", c.Kubeconfig, "--timeout", "3m").CombinedOutput()
	if err != nil {
		t.Fatalf("helm test: %v\n%s\n%s", err, out, describePods(ctx, c, releaseNamespace))
	}
	var last *corev1.Pod
	for deleted := false; !deleted; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch of the test pod ended; last seen %+v", last)
			}
			if p, ok := ev.Object.(*corev1.Pod); ok {
				last, deleted = p, ev.Type == watch.Deleted
			}
		case <-ctx.Done():
			t.Fatalf("the test pod was not deleted after succeeding; last seen %+v", last)
		}
	}
	if last.Status.Phase != corev1.PodSucceeded || len(last.Status.ContainerStatuses) != 1 {
		t.Fatalf("test pod %s: phase %s, containers %+v", last.Name, last.Status.Phase, last.Status.ContainerStatuses)
	}
	if last.Spec.NodeName != c.RealNodes()[0].Name {
		t.Errorf("test pod ran on %q, not the real node", last.Spec.NodeName)
	}
	want := images.Registry + "/" + images.Edgemigrate + ":" + chartAppVersion()
	if got := last.Spec.Containers[0].Image; got != want {
		t.Errorf("test pod's image %q, want the project's %q", got, want)
	}
	// What containerd really ran: the digest it pulled for the webhook.
	webhooks, err := c.Client.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	if err != nil || len(webhooks.Items) == 0 || len(webhooks.Items[0].Status.ContainerStatuses) == 0 {
		t.Fatalf("webhook pod: %v %+v", err, webhooks)
	}
	ran, webhookRan := last.Status.ContainerStatuses[0].ImageID, webhooks.Items[0].Status.ContainerStatuses[0].ImageID
	if ran == "" || ran != webhookRan {
		t.Errorf("test pod ran image %q, the webhook %q: want the same project image", ran, webhookRan)
	}
	t.Logf("helm test passed: pod %s ran %s (%s) on %s", last.Name, want, ran, last.Spec.NodeName)
}

func helmPath(t *testing.T) string {
	t.Helper()
	dir, err := localcluster.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "helm")
}

// describePods says, for a failure message, what each pod of ns is waiting for.
func describePods(ctx context.Context, c *localcluster.Cluster, ns string) string {
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		status, _ := json.Marshal(p.Status.ContainerStatuses)
		b.WriteString(p.Name + " " + string(p.Status.Phase) + " on " + p.Spec.NodeName + ": " + string(status) + "\n")
		if logs, err := c.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To(int64(20)), Container: p.Spec.Containers[0].Name}).DoRaw(ctx); err == nil {
			b.Write(logs)
		}
	}
	return b.String()
}
