package localfleet_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// TestE2EFleetTwoClusters: in each of two clusters an opted-in Deployment is mutated by that
// cluster's webhook and placed by edgemigrate-scheduler through that cluster's extender, a
// plain pod is placed by the default scheduler, the ledger answers with the identities the
// fleet wrote, and Stop leaves no process behind.
func TestE2EFleetTwoClusters(t *testing.T) {
	f := fleettest.Start(t, localfleet.Options{Clusters: 2, NoDescheduler: true, Log: testLog{t}})
	if len(f.Edges) != 2 || f.Edges[0].ID != "edge-a" || f.Edges[1].ID != "edge-b" {
		t.Fatalf("edges %v, want edge-a and edge-b", f.Edges)
	}

	t.Run("workloads", func(t *testing.T) {
		for _, e := range f.Edges {
			t.Run(e.ID, func(t *testing.T) {
				t.Parallel()
				exerciseEdge(t, e, f.ClientTokens)
			})
		}
	})

	t.Run("ledger", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		observer, err := f.Ledger(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer observer.Close()
		// Each cluster's certificate acts as its own MSP.
		for _, e := range f.Edges {
			l, err := f.LedgerAs(ctx, e.Identity)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.RegisterCluster(ctx, chaincode.ClusterRegistration{
				ID: e.ID, Location: chaincode.Location{Lat: e.Lat, Lon: e.Lon}, CoverageRadiusM: e.RadiusM,
				Capacity: chaincode.Resources{CPUMilli: 8000, MemoryBytes: 32 << 30, GPUSlots: 1},
			})
			l.Close()
			if err != nil {
				t.Fatalf("registering %s with its certificate: %v", e.ID, err)
			}
			if got.MSPID != e.MSPID {
				t.Errorf("%s registered by MSP %q, want %q", e.ID, got.MSPID, e.MSPID)
			}
		}
		clusters, err := observer.ListClusters(ctx)
		if err != nil {
			t.Fatalf("observer lists clusters: %v", err)
		}
		if len(clusters) != 2 || clusters[0].MSPID != "EdgeAMSP" || clusters[1].MSPID != "EdgeBMSP" {
			t.Errorf("observer sees %+v, want edge-a (EdgeAMSP) and edge-b (EdgeBMSP)", clusters)
		}
		// The observer owns no cluster: it may read, not act for one.
		if _, err := observer.ReportCapacity(ctx, "edge-a", chaincode.Resources{}); chaincode.CodeOf(err) != chaincode.CodeForbidden {
			t.Errorf("observer reporting capacity for edge-a: %v, want %s", err, chaincode.CodeForbidden)
		}
	})

	pids := f.PIDs()
	// Per cluster: etcd, apiserver, controller-manager, edgemigrate-scheduler, kwok, default
	// scheduler, extender, webhook; plus the ledger.
	if want := 2*8 + 1; len(pids) != want {
		t.Errorf("fleet started %d processes, want %d", len(pids), want)
	}
	dir := f.Dir
	f.Stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill -0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fleet directory %s left behind (stat: %v)", dir, err)
	}
}

func exerciseEdge(t *testing.T, e *localfleet.Edge, clientTokens map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// What the descheduler expects to find.
	resources, err := e.Client.Discovery().ServerResourcesForGroupVersion(api.Group + "/v1alpha1")
	if err != nil || !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "migrations" }) {
		t.Errorf("the API server does not serve migrations.%s/v1alpha1 (%v)", api.Group, err)
	}
	secret, err := e.Client.CoreV1().Secrets(localfleet.SystemNamespace).Get(ctx, localfleet.ClientTokensSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for id, token := range clientTokens {
		if string(secret.Data[id]) != token {
			t.Errorf("Secret %s lacks client %s's token", localfleet.ClientTokensSecret, id)
		}
	}
	ns := clustertest.Namespace(t, e.Cluster, nil)
	labels := map[string]string{"app": "inference"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "inference", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					api.AnnotationMigrate: "true", api.AnnotationGPUMemory: "4Gi",
				}},
				Spec: podSpec(),
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment: %v", err)
	}
	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns}, Spec: podSpec()}
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, plain, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating plain pod: %v", err)
	}

	opted := waitRunning(ctx, t, e, ns, "app=inference")
	if opted.Spec.SchedulerName != api.SchedulerName {
		t.Errorf("opted-in pod has schedulerName %q, want %s", opted.Spec.SchedulerName, api.SchedulerName)
	}
	if got := opted.Annotations[api.AnnotationSourceCluster]; got != e.ID {
		t.Errorf("opted-in pod's %s = %q, want %s", api.AnnotationSourceCluster, got, e.ID)
	}
	if got, want := opted.Annotations[api.AnnotationWorkload], "Deployment/"+ns+"/inference"; got != want {
		t.Errorf("opted-in pod's %s = %q, want %s", api.AnnotationWorkload, got, want)
	}
	if binds := extenderBinds(ctx, t, e.ExtenderURL); binds < 1 {
		t.Errorf("extender counted %v successful binds, want at least 1", binds)
	}

	waitRunning(ctx, t, e, ns, "") // the plain pod has no labels: wait until every pod runs
	p, err := e.Client.CoreV1().Pods(ns).Get(ctx, plain.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.SchedulerName != corev1.DefaultSchedulerName || p.Annotations[api.AnnotationSourceCluster] != "" {
		t.Errorf("plain pod was touched: schedulerName %q, annotations %v", p.Spec.SchedulerName, p.Annotations)
	}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		NodeSelector: map[string]string{corev1.LabelArchStable: "arm64"},
		Containers: []corev1.Container{{
			Name:  "model",
			Image: "nvcr.io/nvidia/l4t-ml:r35.2.1-py3",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
			},
		}},
	}
}

// waitRunning waits until every pod matching selector (at least one) is Running on a
// node, and returns the first.
func waitRunning(ctx context.Context, t *testing.T, e *localfleet.Edge, ns, selector string) corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	problem := "no pods yet"
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil || len(list.Items) == 0 {
			return false, nil
		}
		pods = list.Items
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" {
				problem = fmt.Sprintf("pod %s is %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("cluster %s: waiting for pods %q in %s to run: %v (last: %s)", e.ID, selector, ns, err, problem)
	}
	return pods[0]
}

// extenderBinds reads edgemigrate_extender_binds_total{result="bound"} from /metrics.
func extenderBinds(ctx context.Context, t *testing.T, base string) float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("reading extender metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `edgemigrate_extender_binds_total{result="bound"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", sc.Text(), err)
			}
			return f
		}
	}
	return 0
}

// testLog sends the fleet's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestE2EFleetFailedStartCleansUp: when a step fails after every kind of process has
// started (here: a node the API server refuses), Start stops them all, keeps the working
// directory for inspection and names it in the error.
func TestE2EFleetFailedStartCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: starts a real Kubernetes cluster; not run with -short")
	}
	bin := fleettest.Binary(t)
	parent := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	badNode := func(int) []*corev1.Node {
		return []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "Not_A_DNS_Name"}}}
	}
	f, err := localfleet.Start(ctx, localfleet.Options{Clusters: 1, Binary: bin, Dir: parent, NoDescheduler: true, Nodes: badNode})
	if err == nil {
		f.Stop()
		t.Fatal("Start succeeded with an invalid node")
	}
	if skip, _ := skippable(err); skip {
		t.Skip(err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "edgemigrate-fleet-") {
		t.Fatalf("parent directory holds %v, want the one kept fleet directory", entries)
	}
	dir := filepath.Join(parent, entries[0].Name())
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "Not_A_DNS_Name") {
		t.Errorf("error %q names neither the kept directory %s nor the bad node", err, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "edge-a-webhook.log")); err != nil {
		t.Errorf("webhook log not kept: %v", err)
	}
	// Every process of the fleet has the directory in its command line (kubeconfig, data
	// or configuration paths).
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range procs {
		cmdline, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(cmdline), dir) {
			t.Errorf("%s still runs: %s", path, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

// skippable reports a start error that fleettest would turn into a skip: missing tools.
func skippable(err error) (bool, string) {
	if errors.Is(err, localcluster.ErrToolsMissing) && os.Getenv(fleettest.RequireToolsEnv) != "1" {
		return true, err.Error()
	}
	return false, ""
}

func TestMain(m *testing.M) { fleettest.BuildOnce(m) }
