package chart

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/api"
	edgemigratev1alpha1 "github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned/typed/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/cmd/edgemigrate/app"
	"github.com/edgemigrate/edgemigrate/descheduler"
	"github.com/edgemigrate/edgemigrate/extender"
	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
	"github.com/edgemigrate/edgemigrate/ledger/remote"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/mtls"
	"github.com/edgemigrate/edgemigrate/webhook"
)

var shared clustertest.Shared

func TestMain(m *testing.M) { clustertest.Main(m, 1, localcluster.Options{Name: "chart"}, &shared) }

const crdName = "migrations.edgemigrate.io"

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// TestE2EHelmInstall installs the chart (self-signed webhook TLS, plugin mode) into a real
// API server, runs the webhook's own code as the chart's webhook ServiceAccount to see the
// caBundle written, the real edgemigrate-scheduler with the installed configuration as the
// scheduler's ServiceAccount, upgrades to extender mode and binds with the extender as that
// ServiceAccount, checks each component's rights with SubjectAccessReviews, and uninstalls.
// kwok stands in for kubelets and there is no scheduler, so the chart's pods never run:
// the test never waits for them.
func TestE2EHelmInstall(t *testing.T) {
	c := shared.Require(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	if out, err := helm(t, "install", release, chartDir, "--namespace", namespace, "--create-namespace",
		"--kubeconfig", c.Kubeconfig, "--timeout", "2m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			_, _ = helm(t, "uninstall", release, "--namespace", namespace, "--kubeconfig", c.Kubeconfig)
		}
	})

	t.Run("CRD established", func(t *testing.T) {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			crd, err := dyn.Resource(crdGVR).Get(ctx, crdName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds := unstructuredSlice(crd.Object, "status", "conditions")
			return slices.ContainsFunc(conds, func(c map[string]any) bool {
				return c["type"] == "Established" && c["status"] == "True"
			}), nil
		})
		if err != nil {
			t.Fatalf("CRD %s not Established: %v", crdName, err)
		}
		// Served: a Migration list answers.
		migrations := schema.GroupVersionResource{Group: "edgemigrate.io", Version: "v1alpha1", Resource: "migrations"}
		if _, err := dyn.Resource(migrations).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("listing Migrations: %v", err)
		}
	})

	t.Run("webhook writes the caBundle as its ServiceAccount", func(t *testing.T) {
		mwcs := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
		cfg, err := mwcs.Get(ctx, webhookName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the chart's MutatingWebhookConfiguration: %v", err)
		}
		if len(cfg.Webhooks) != 1 || len(cfg.Webhooks[0].ClientConfig.CABundle) != 0 {
			t.Fatalf("installed configuration: %d webhooks, caBundle %q; want one, without a bundle yet", len(cfg.Webhooks), cfg.Webhooks[0].ClientConfig.CABundle)
		}
		// The webhook binary's code, with the chart's flags, and only the chart's RBAC: it
		// cannot sync its informers or write the bundle unless the ClusterRole allows it.
		client := clientAs(t, c.Config, webhookName)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := webhook.NewOptions()
		opts.Address = ln.Addr().String()
		opts.SelfSigned = true
		opts.ClusterID = "edge-1"
		opts.WebhookConfigName = webhookName
		opts.InstallNamespace = namespace
		opts.SelfSignedHosts = []string{webhookName + "." + namespace + ".svc", webhookName + "." + namespace + ".svc.cluster.local"}
		whCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- webhook.Serve(whCtx, opts, client, ln) }()
		defer func() {
			stop()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("webhook: %v", err)
			}
		}()

		var bundle []byte
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			select {
			case err := <-done:
				return false, fmt.Errorf("webhook stopped: %w", err)
			default:
			}
			cfg, err := mwcs.Get(ctx, webhookName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			bundle = cfg.Webhooks[0].ClientConfig.CABundle
			return len(bundle) > 0, nil
		})
		if err != nil {
			t.Fatalf("caBundle never written: %v", err)
		}
		// The bundle is the CA of what the webhook serves, for the chart's Service name.
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundle) {
			t.Fatalf("caBundle holds no PEM certificate: %q", bundle)
		}
		conn, err := tls.Dial("tcp", opts.Address, &tls.Config{RootCAs: pool, ServerName: webhookName + "." + namespace + ".svc"})
		if err != nil {
			t.Fatalf("the caBundle does not verify the webhook's certificate: %v", err)
		}
		conn.Close()
	})

	t.Run("plugin mode: edgemigrate-scheduler schedules as the scheduler's ServiceAccount", func(t *testing.T) {
		d, err := c.Client.AppsV1().Deployments(namespace).Get(ctx, schedulerName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cs := d.Spec.Template.Spec.Containers; len(cs) != 1 || cs[0].Command[0] != localcluster.SchedulerBinary {
			t.Fatalf("installed scheduler pod runs %+v, want %s alone", cs, localcluster.SchedulerBinary)
		}
		runInstalledScheduler(ctx, t, c)
		node := localcluster.JetsonNode("xavier-plugin", localcluster.AGXXavier, localcluster.NodeOptions{})
		if err := c.AddNodes(ctx, node); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
		ns := clustertest.Namespace(t, c, nil)
		for name, gpu := range map[string]string{"model": "2Gi", "too-big": "64Gi"} {
			if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{api.AnnotationGPUMemory: gpu}},
				Spec: corev1.PodSpec{SchedulerName: api.SchedulerName, Containers: []corev1.Container{{
					Name: "model", Image: localcluster.DefaultImages[0].Names[0],
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}},
				}}},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// The one that fits is bound to the Jetson; the one that does not waits, with the
		// plugin's reason.
		var reason string
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "model", metav1.GetOptions{})
			if err != nil || p.Spec.NodeName != node.Name {
				return false, nil
			}
			evs, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=too-big,reason=FailedScheduling"})
			if err != nil || len(evs.Items) == 0 {
				return false, nil
			}
			reason = evs.Items[0].Message
			return true, nil
		})
		if err != nil {
			t.Fatalf("edgemigrate-scheduler did not place the pods: %v", err)
		}
		if !strings.Contains(reason, "unified memory") {
			t.Errorf("FailedScheduling %q does not give the plugin's reason", reason)
		}
		if p, _ := c.Client.CoreV1().Pods(ns).Get(ctx, "too-big", metav1.GetOptions{}); p.Spec.NodeName != "" {
			t.Errorf("a pod needing 64Gi of a 32 GB Jetson was bound to %s", p.Spec.NodeName)
		}
	})

	t.Run("extender mode: helm upgrade", func(t *testing.T) {
		if out, err := helm(t, "upgrade", release, chartDir, "--namespace", namespace, "--kubeconfig", c.Kubeconfig,
			"--reuse-values", "--set", "scheduler.mode=extender", "--timeout", "2m"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		d, err := c.Client.AppsV1().Deployments(namespace).Get(ctx, schedulerName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cs := d.Spec.Template.Spec.Containers; len(cs) != 2 || cs[0].Command[0] != "kube-scheduler" || cs[1].Name != "extender" {
			t.Fatalf("scheduler pod after the upgrade runs %+v, want kube-scheduler and the extender", cs)
		}
		cm, err := c.Client.CoreV1().ConfigMaps(namespace).Get(ctx, schedulerName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := render(t, "--set", "scheduler.mode=extender").must(t, "ConfigMap", schedulerName).typed.(*corev1.ConfigMap); cm.Data["scheduler-config.yaml"] != want.Data["scheduler-config.yaml"] {
			t.Errorf("installed configuration is not extender mode's:\n%s", cm.Data["scheduler-config.yaml"])
		}
	})

	t.Run("extender binds as the scheduler's ServiceAccount", func(t *testing.T) {
		// The extender with the chart's arguments and only the scheduler's RBAC (the sidecar
		// shares its pod's ServiceAccount) binds a pod.
		fs := pflag.NewFlagSet("extender", pflag.ContinueOnError)
		eo := app.NewExtenderOptions()
		eo.AddFlags(fs)
		if err := fs.Parse(containerArgs(t, render(t, "--set", "scheduler.mode=extender"), schedulerName, "extender")[1:]); err != nil {
			t.Fatal(err)
		}
		cfg, err := eo.Config()
		if err != nil {
			t.Fatal(err)
		}
		ext, err := extender.New(clientAs(t, c.Config, schedulerName), cfg, serve.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		extCtx, stop := context.WithCancel(ctx)
		defer stop()
		if err := ext.Start(extCtx); err != nil {
			t.Fatal(err)
		}
		node := localcluster.JetsonNode("xavier-chart", localcluster.AGXXavier, localcluster.NodeOptions{})
		if err := c.AddNodes(ctx, node); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
		ns := clustertest.Namespace(t, c, nil)
		pod, err := c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "model", Namespace: ns, Annotations: map[string]string{api.AnnotationGPUMemory: "2Gi"}},
			Spec: corev1.PodSpec{SchedulerName: api.SchedulerName, Containers: []corev1.Container{{
				Name: "model", Image: localcluster.DefaultImages[0].Names[0],
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}},
			}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		args := extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: ns, PodUID: pod.UID, Node: node.Name}
		var bindErr error
		// Until the informers have synced and seen the new node.
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			if ext.Ready() != nil {
				return false, nil
			}
			bindErr = ext.Bind(ctx, args)
			return bindErr == nil, nil
		})
		if err != nil {
			t.Fatalf("extender never bound the pod: %v (last: %v)", err, bindErr)
		}
		got, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.NodeName != node.Name {
			t.Errorf("pod bound to %q, want %q", got.Spec.NodeName, node.Name)
		}
	})

	t.Run("descheduler runs as its ServiceAccount", func(t *testing.T) {
		// The real descheduler, with the chart's arguments and only the chart's RBAC, syncs
		// its informers, takes its Lease, registers on a ledger and fails a Migration that
		// names no workload, with an Event: every verb of a run it can reach without a
		// neighbour cluster.
		store, err := embedded.Open(filepath.Join(t.TempDir(), "ledger.db"), embedded.Options{NoSync: true, AdminMSP: "ChartMSP"})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		// The ledger over mutual TLS: the descheduler acts as its certificate's MSP.
		ca, err := mtls.NewCA("chart-fleet-ca")
		if err != nil {
			t.Fatal(err)
		}
		// The policy file is the chart's ConfigMap, as the pod would mount it.
		r := render(t)
		policyFile := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(policyFile, []byte(r.must(t, "ConfigMap", api.PolicyConfigMap).typed.(*corev1.ConfigMap).Data["policy.yaml"]), 0o600); err != nil {
			t.Fatal(err)
		}
		ledgerFiles, err := ca.WriteIdentity(filepath.Join(t.TempDir(), "ledger"), "ledger", "LedgerMSP", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ledgerID, err := mtls.Load(ledgerFiles)
		if err != nil {
			t.Fatal(err)
		}
		handler, err := remote.NewHandler(store, remote.HandlerOptions{Limits: remote.DefaultLimits()})
		if err != nil {
			t.Fatal(err)
		}
		ledgerSrv := httptest.NewUnstartedServer(handler)
		ledgerSrv.TLS = ledgerID.ServerConfig(tls.VerifyClientCertIfGiven)
		ledgerSrv.StartTLS()
		defer ledgerSrv.Close()
		fs := pflag.NewFlagSet("descheduler", pflag.ContinueOnError)
		do := descheduler.NewOptions()
		do.AddFlags(fs)
		args := containerArgs(t, r, deschedulerName, "descheduler")[1:]
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		// The chart's identity paths name the mounted Secret; here the files of a test CA.
		identity, err := ca.WriteIdentity(filepath.Join(t.TempDir(), "identity"), do.ClusterID, "ChartMSP", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		// The ledger's admin (the same operator here) admits the chart's cluster.
		if _, err := store.Client("ChartMSP").AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: do.ClusterID, MSPID: "ChartMSP"}); err != nil {
			t.Fatal(err)
		}
		if err := fs.Parse([]string{"--ledger-url=" + ledgerSrv.URL, "--namespace=" + namespace, "--policy-file=" + policyFile,
			"--tls-cert-file=" + identity.CertFile, "--tls-key-file=" + identity.KeyFile, "--tls-ca-file=" + identity.CAFile}); err != nil {
			t.Fatal(err)
		}
		probe, err := mtls.AnonymousClient(ca.PEM(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- descheduler.Serve(runCtx, do, restConfigAs(c.Config, deschedulerName), ln) }()
		defer func() {
			stop()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("descheduler: %v", err)
			}
		}()
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			select {
			case err := <-done:
				done <- err // for the deferred wait
				return false, fmt.Errorf("descheduler stopped: %v", err)
			default:
			}
			resp, err := probe.Get("https://" + ln.Addr().String() + "/readyz")
			if err != nil {
				return false, nil
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
		if err != nil {
			t.Fatalf("descheduler never ready under the chart's RBAC: %v", err)
		}
		if _, err := store.Client("ChartMSP").GetCluster(ctx, do.ClusterID); err != nil {
			t.Errorf("cluster %s not registered: %v", do.ClusterID, err)
		}
		ns := clustertest.Namespace(t, c, nil)
		migs, err := edgemigratev1alpha1.NewForConfig(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := migs.Migrations(ns).Create(ctx, &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: "ghost", Namespace: ns},
			Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindPod, Name: "ghost"}, Reason: v1alpha1.ReasonManual}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			m, err := migs.Migrations(ns).Get(ctx, "ghost", metav1.GetOptions{})
			return err == nil && m.Status.Phase == v1alpha1.PhaseFailed && m.Status.Reason == "WorkloadNotFound", nil
		})
		if err != nil {
			m, _ := migs.Migrations(ns).Get(ctx, "ghost", metav1.GetOptions{})
			t.Fatalf("the Migration of a missing pod did not fail as WorkloadNotFound: %v (status %+v)", err, m.Status)
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		for _, tc := range []struct {
			sa      string
			attrs   authorizationv1.ResourceAttributes
			allowed bool
		}{
			// The descheduler scales down and evicts workloads anywhere, and reads only its own
			// Secret; it creates a peer's objects only as a hosted namespace's edgemigrate-host.
			{deschedulerName, ra("create", "", "pods", "eviction", "default", ""), true},
			{deschedulerName, ra("patch", "apps", "deployments", "", "default", ""), true},
			{deschedulerName, ra("delete", "apps", "deployments", "", "default", ""), false},
			{deschedulerName, ra("create", "apps", "deployments", "", "default", ""), false},
			{deschedulerName, ra("create", "", "pods", "", "default", ""), false},
			{deschedulerName, ra("create", "", "services", "", "default", ""), false},
			{deschedulerName, ra("create", "", "configmaps", "", "default", ""), false},
			{deschedulerName, ra("impersonate", "", "serviceaccounts", "", "cars", api.HostServiceAccount), true},
			{deschedulerName, ra("impersonate", "", "serviceaccounts", "", "kube-system", "default"), false},
			{deschedulerName, ra("impersonate", "", "users", "", "", "admin"), false},
			{deschedulerName, ra("impersonate", "", "groups", "", "", "system:masters"), false},
			{deschedulerName, ra("bind", "rbac.authorization.k8s.io", "clusterroles", "", "", api.HostClusterRole), true},
			{deschedulerName, ra("bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "admin"), false},
			{deschedulerName, ra("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", api.HostClusterRole), false},
			{deschedulerName, ra("create", "edgemigrate.io", "migrations", "", "default", ""), true},
			{deschedulerName, ra("update", "edgemigrate.io", "migrations", "status", "default", ""), true},
			{deschedulerName, ra("get", "", "secrets", "", namespace, clientTokens), true},
			{deschedulerName, ra("update", "coordination.k8s.io", "leases", "", namespace, ""), true},
			{deschedulerName, ra("get", "", "secrets", "", "", ""), false},
			{deschedulerName, ra("list", "", "secrets", "", "default", ""), false},
			{deschedulerName, ra("get", "", "secrets", "", "kube-system", clientTokens), false},
			{deschedulerName, ra("delete", "apps", "daemonsets", "", "default", ""), false},
			{deschedulerName, ra("delete", "", "nodes", "", "", ""), false},
			{deschedulerName, ra("create", "", "pods", "binding", "default", ""), false},
			{deschedulerName, ra("update", "coordination.k8s.io", "leases", "", "kube-system", ""), false},
			// The webhook writes its own configuration and nothing else.
			{webhookName, ra("patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", webhookName), true},
			{webhookName, ra("update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", webhookName), true},
			{webhookName, ra("list", "", "nodes", "", "", ""), true},
			{webhookName, ra("watch", "apps", "replicasets", "", "", ""), true},
			{webhookName, ra("patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "other-webhook"), false},
			{webhookName, ra("delete", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", webhookName), false},
			{webhookName, ra("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", ""), false},
			{webhookName, ra("update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", webhookName), false},
			{webhookName, ra("get", "", "secrets", "", namespace, ""), false},
			{webhookName, ra("create", "", "pods", "", "default", ""), false},
			{webhookName, ra("patch", "apps", "deployments", "", "default", ""), false},
			// The scheduler and its extender sidecar bind; they touch no Secrets or workloads.
			{schedulerName, ra("create", "", "pods", "binding", "default", ""), true},
			{schedulerName, ra("update", "coordination.k8s.io", "leases", "", namespace, "edgemigrate-scheduler"), true},
			{schedulerName, ra("get", "", "configmaps", "", "kube-system", "extension-apiserver-authentication"), true},
			{schedulerName, ra("update", "coordination.k8s.io", "leases", "", namespace, deschedulerName), false},
			{schedulerName, ra("get", "", "secrets", "", "", ""), false},
			{schedulerName, ra("patch", "apps", "deployments", "", "default", ""), false},
			{schedulerName, ra("create", "", "pods", "eviction", "default", ""), false},
		} {
			a := tc.attrs
			name := fmt.Sprintf("%s %s %s/%s/%s ns=%q name=%q", tc.sa, a.Verb, a.Group, a.Resource, a.Subresource, a.Namespace, a.Name)
			t.Run(name, func(t *testing.T) {
				sar, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
					Spec: authorizationv1.SubjectAccessReviewSpec{
						User:               serviceAccountUser(tc.sa),
						Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
						ResourceAttributes: &a,
					},
				}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if sar.Status.Allowed != tc.allowed {
					t.Errorf("allowed = %v, want %v (%s)", sar.Status.Allowed, tc.allowed, sar.Status.Reason)
				}
			})
		}
	})

	t.Run("uninstall leaves only the CRD", func(t *testing.T) {
		before, err := releaseObjects(ctx, c.Client.Discovery(), dyn)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Deployment " + namespace + "/" + webhookName, "MutatingWebhookConfiguration " + webhookName,
			"ClusterRole " + deschedulerName, "RoleBinding kube-system/" + schedulerName + "-edgemigrate-system-auth-reader"} {
			if !slices.Contains(before, want) {
				t.Fatalf("before uninstall, the release's objects %q lack %s: the search would prove nothing", before, want)
			}
		}
		out, err := helm(t, "uninstall", release, "--namespace", namespace, "--kubeconfig", c.Kubeconfig, "--wait", "--timeout", "2m")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		uninstalled = true
		// Pods and EndpointSlices carry the release's labels too; the garbage collector
		// removes them after their owners.
		var left []string
		err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			left, err = releaseObjects(ctx, c.Client.Discovery(), dyn)
			return len(left) == 0, err
		})
		if err != nil {
			t.Errorf("after uninstall, objects of the release remain: %q (%v)", left, err)
		}
		if _, err := dyn.Resource(crdGVR).Get(ctx, crdName, metav1.GetOptions{}); err != nil {
			t.Errorf("the CRD must outlive the release (Migrations are user data): %v", err)
		}
		if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("MutatingWebhookConfiguration after uninstall: %v, want NotFound", err)
		}
	})
}

// runInstalledScheduler runs bin/edgemigrate-scheduler with the installed ConfigMap's
// configuration, as the scheduler's ServiceAccount (impersonated), until the test ends, and
// waits until it holds its Lease.
func runInstalledScheduler(ctx context.Context, t *testing.T, c *localcluster.Cluster) {
	t.Helper()
	dir, err := localcluster.FindBinDir()
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, localcluster.SchedulerBinary))
	}
	if err != nil {
		if os.Getenv(clustertest.RequireToolsEnv) != "1" {
			t.Skip("SKIP: plugin mode needs bin/edgemigrate-scheduler (make scheduler): " + err.Error())
		}
		t.Fatal(err)
	}
	cm, err := c.Client.CoreV1().ConfigMaps(namespace).Get(ctx, schedulerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg schedconfig.KubeSchedulerConfiguration
	if err := yaml.UnmarshalStrict([]byte(cm.Data["scheduler-config.yaml"]), &cfg); err != nil {
		t.Fatalf("the installed configuration: %v", err)
	}
	kc, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range kc.AuthInfos {
		ai.Impersonate = serviceAccountUser(schedulerName)
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	tmp := t.TempDir()
	kubeconfig, configFile := filepath.Join(tmp, "kubeconfig"), filepath.Join(tmp, "scheduler-config.yaml")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	cfg.ClientConnection.Kubeconfig = kubeconfig
	data, err := yaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	runCtx, stop := context.WithCancel(ctx)
	var out bytes.Buffer
	cmd := exec.CommandContext(runCtx, filepath.Join(dir, localcluster.SchedulerBinary), "--config="+configFile,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("edgemigrate-scheduler:\n%s", out.String())
		}
	})
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := c.Client.CoordinationV1().Leases(namespace).Get(ctx, cfg.LeaderElection.ResourceName, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
	if err != nil {
		t.Fatalf("edgemigrate-scheduler never took Lease %s/%s: %v", namespace, cfg.LeaderElection.ResourceName, err)
	}
}

func ra(verb, group, resource, subresource, namespace, name string) authorizationv1.ResourceAttributes {
	return authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: subresource, Namespace: namespace, Name: name}
}

func serviceAccountUser(sa string) string { return "system:serviceaccount:" + namespace + ":" + sa }

// restConfigAs returns a configuration acting as the chart's ServiceAccount sa (the admin
// impersonates it).
func restConfigAs(admin *rest.Config, sa string) *rest.Config {
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: serviceAccountUser(sa),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return cfg
}

// clientAs returns a client acting as the chart's ServiceAccount sa.
func clientAs(t *testing.T, admin *rest.Config, sa string) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(restConfigAs(admin, sa))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// releaseObjects lists, in every resource the API server can list, the objects labelled
// with the release, as "Kind namespace/name".
func releaseObjects(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface) ([]string, error) {
	lists, err := disc.ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discovering resources: %w", err)
	}
	var out []string
	selector := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "list") {
				continue
			}
			objs, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, selector)
			if err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
					continue
				}
				return nil, fmt.Errorf("listing %s: %w", r.Name, err)
			}
			for _, o := range objs.Items {
				name := o.GetName()
				if o.GetNamespace() != "" {
					name = o.GetNamespace() + "/" + name
				}
				out = append(out, r.Kind+" "+name)
			}
		}
	}
	return out, nil
}

func unstructuredSlice(obj map[string]any, path ...string) []map[string]any {
	v, _ := walk(obj, path...)
	list, _ := v.([]any)
	var out []map[string]any
	for _, e := range list {
		if m, isMap := e.(map[string]any); isMap {
			out = append(out, m)
		}
	}
	return out
}
