package realnode

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// testServiceImage is the test service as `make images` names it, resolved by the nodes'
// containerd to the cluster's registry.
var testServiceImage = images.Registry + "/" + images.TestService + ":" + chartAppVersion()

// chartAppVersion is the tag `make images` gives the project's images.
func chartAppVersion() string {
	data, err := os.ReadFile("../../charts/edgemigrate/Chart.yaml")
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "appVersion:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	panic("no appVersion in Chart.yaml")
}

const waitTimeout = 2 * time.Minute

// onRealNode places a pod on the cluster's real node.
func onRealNode(spec *corev1.PodSpec) {
	spec.NodeSelector, spec.Tolerations = localcluster.RealNodePlacement()
}

func testServicePod(name string, args ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: testServiceImage, Args: args}},
		},
	}
	onRealNode(&p.Spec)
	return p
}

// waitPod waits until cond holds for the pod, returning it; on timeout the error says the
// pod's last status.
func waitPod(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		status, _ := json.Marshal(last)
		t.Fatalf("pod %s/%s: %v; last seen: %s", ns, name, err, status)
	}
	return last
}

func podLogs(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns, name string) string {
	t.Helper()
	data, err := c.Client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s/%s (through the API server and the kubelet): %v", ns, name, err)
	}
	return string(data)
}

func succeeded(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// TestE2ERealNodeServes: a Deployment of the real test service runs on the real node, is
// Ready by its readiness probe (the kubelet's HTTP GET into the container) and answers from
// the host at its pod IPs, from another pod through its Service (kube-proxy's rules in the
// node's namespace) by address and by name (the cluster's DNS), and a pod reaches the API
// server at 10.96.0.1 with its ServiceAccount token. The image was really pulled from the cluster's registry and is in the node's
// status.images with its size.
func TestE2ERealNodeServes(t *testing.T) {
	c := shared.Require(t)[0]
	ns := clustertest.Namespace(t, c, nil)
	ctx := context.Background()

	podLabels := map[string]string{"app": "testservice"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "testservice"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "main", Image: testServiceImage,
					Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
	onRealNode(&d.Spec.Template.Spec)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "testservice"},
		Spec:       corev1.ServiceSpec{Selector: podLabels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var pods []corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(podLabels).String()})
		if err != nil {
			return false, nil
		}
		pods = slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return !podReady(&p) })
		return len(pods) == 2, nil
	})
	if err != nil {
		t.Fatalf("Deployment not Ready on the real node: %v (%d ready)", err, len(pods))
	}
	node := c.RealNodes()[0]
	for _, p := range pods {
		if p.Spec.NodeName != node.Name {
			t.Errorf("pod %s on %s, want the real node %s", p.Name, p.Spec.NodeName, node.Name)
		}
		// From the host, at the pod's address on the node's pod subnet.
		var got struct{ Pod string }
		body := httpGet(t, "http://"+p.Status.PodIP+":8080/")
		if err := json.Unmarshal([]byte(body), &got); err != nil || got.Pod != p.Name {
			t.Errorf("GET / of pod %s at %s answered %q (%v)", p.Name, p.Status.PodIP, body, err)
		}
	}

	// Pulled from the registry: each node's containerd starts with no image.
	pulls := c.Registry().BlobPulls(images.TestService)
	if pulls == 0 {
		t.Errorf("no blob of %s was pulled from the cluster's registry", images.TestService)
	}

	// Through the Service's ClusterIP, from another pod on the node (retrying until
	// kube-proxy has programmed the new Service: a second or so).
	client := testServicePod("client", "get", "--retry=30s", "http://"+svc.Spec.ClusterIP+"/")
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := waitPod(ctx, t, c, ns, "client", succeeded); p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("client pod %s: %s", p.Status.Phase, podLogs(ctx, t, c, ns, "client"))
	} else if logs := podLogs(ctx, t, c, ns, "client"); !strings.Contains(logs, `"pod":"testservice-`) {
		t.Errorf("Service %s answered %q, want a testservice pod's answer", svc.Spec.ClusterIP, logs)
	}

	// By the Service's name, through the cluster's DNS.
	byName := testServicePod("client-by-name", "get", "--retry=30s", "http://testservice."+ns+".svc/")
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, byName, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := waitPod(ctx, t, c, ns, "client-by-name", succeeded); p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("client by name %s: %s", p.Status.Phase, podLogs(ctx, t, c, ns, "client-by-name"))
	} else if logs := podLogs(ctx, t, c, ns, "client-by-name"); !strings.Contains(logs, `"pod":"testservice-`) {
		t.Errorf("testservice.%s.svc answered %q", ns, logs)
	}

	// The API server through the kubernetes Service, with the pod's ServiceAccount.
	apiClient := testServicePod("api-client", "get", "--in-cluster", "--retry=30s", "https://10.96.0.1/api")
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, apiClient, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := waitPod(ctx, t, c, ns, "api-client", succeeded); p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("in-cluster API call failed: %s", podLogs(ctx, t, c, ns, "api-client"))
	} else if logs := podLogs(ctx, t, c, ns, "api-client"); !strings.Contains(logs, `"kind":"APIVersions"`) {
		t.Errorf("GET https://10.96.0.1/api answered %q", logs)
	}

	// The client pods found the image cached on the node: no pull.
	if got := c.Registry().BlobPulls(images.TestService); got != pulls {
		t.Errorf("%d blob pulls of %s after the client pods, %d before: the node's cache was not used", got, images.TestService, pulls)
	}

	// The kubelet reports the image with its size (its image list is refreshed every 30s).
	var size int64
	var n *corev1.Node
	err = wait.PollUntilContextTimeout(ctx, time.Second, waitTimeout, true, func(ctx context.Context) (bool, error) {
		if n, err = c.Client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{}); err != nil {
			return false, nil
		}
		for _, img := range n.Status.Images {
			if slices.Contains(img.Names, testServiceImage) {
				size = img.SizeBytes
			}
		}
		return size > 0, nil
	})
	if err != nil {
		t.Errorf("node %s does not list %s with a size in status.images: %v", node.Name, testServiceImage, n.Status.Images)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s %s", url, resp.Status, body)
	}
	return string(body)
}

// TestE2ERealNodeMissingConfigMap: what kwok hides. A pod whose ConfigMap does not exist is
// never Running: it stays ContainerCreating and the kubelet reports FailedMount.
func TestE2ERealNodeMissingConfigMap(t *testing.T) {
	c := shared.Require(t)[0]
	ns := clustertest.Namespace(t, c, nil)
	ctx := context.Background()
	p := testServicePod("needs-config")
	p.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}},
	}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/config"}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var event *corev1.Event
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.name": "needs-config", "reason": "FailedMount"}.String(),
		})
		if err != nil || len(list.Items) == 0 {
			return false, nil
		}
		event = &list.Items[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("no FailedMount event: %v", err)
	}
	if !strings.Contains(event.Message, `"absent" not found`) {
		t.Errorf("FailedMount says %q, want the missing ConfigMap named", event.Message)
	}
	got, err := c.Client.CoreV1().Pods(ns).Get(ctx, "needs-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodPending || len(got.Status.ContainerStatuses) != 1 ||
		got.Status.ContainerStatuses[0].State.Waiting == nil || got.Status.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
		status, _ := json.Marshal(got.Status)
		t.Errorf("pod without its ConfigMap: %s, want Pending in ContainerCreating", status)
	}
}

// TestE2ERealNodeLooksLikeAJetson: the real node carries GPU Feature Discovery's labels, a
// GPU slot in capacity and allocatable, the host's architecture and memory as its kubelet
// reports them, and the taint that keeps kwok's workloads off it.
func TestE2ERealNodeLooksLikeAJetson(t *testing.T) {
	c := shared.Require(t)[0]
	n, err := c.Client.CoreV1().Nodes().Get(context.Background(), c.RealNodes()[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		api.LabelGPUProduct: localcluster.RealNodeModel.Product, api.LabelGPUPresent: "true",
		"kubernetes.io/arch": runtime.GOARCH, localcluster.RealNodeLabel: "true",
	} {
		if n.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, n.Labels[k], v)
		}
	}
	if gpu := n.Status.Allocatable[api.ResourceGPU]; gpu.Value() != 1 {
		t.Errorf("allocatable %s = %s, want 1", api.ResourceGPU, gpu.String())
	}
	if mem := n.Status.Allocatable[corev1.ResourceMemory]; mem.Value() <= 0 {
		t.Errorf("allocatable memory %s", mem.String())
	}
	if n.Status.NodeInfo.ContainerRuntimeVersion == "" || !strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("container runtime %q, want containerd", n.Status.NodeInfo.ContainerRuntimeVersion)
	}
	if !slices.ContainsFunc(n.Spec.Taints, func(tt corev1.Taint) bool { return tt.Key == localcluster.RealNodeTaint }) {
		t.Errorf("taints %v lack %s", n.Spec.Taints, localcluster.RealNodeTaint)
	}
}

// TestE2ERealNodeTwoClusters: two clusters' real nodes run side by side on one machine, on
// distinct subnets, each running its own pods.
func TestE2ERealNodeTwoClusters(t *testing.T) {
	clusters := shared.Require(t)
	a, b := clusters[0].RealNodes()[0], clusters[1].RealNodes()[0]
	if a.IP == b.IP || a.PodCIDR == b.PodCIDR || a.NetNS == b.NetNS || a.CgroupRoot == b.CgroupRoot {
		t.Errorf("nodes share an address, subnet, namespace or cgroup: %+v and %+v", a, b)
	}
	ctx := context.Background()
	for _, c := range clusters {
		ns := clustertest.Namespace(t, c, nil)
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, testServicePod("hello", "get", "http://127.0.0.1:1/"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The container really ran: it tried to connect and said why it failed.
		p := waitPod(ctx, t, c, ns, "hello", succeeded)
		if p.Status.Phase != corev1.PodFailed || !strings.Contains(podLogs(ctx, t, c, ns, "hello"), "connection refused") {
			t.Errorf("cluster %s: pod %s, logs %q", c.Name, p.Status.Phase, podLogs(ctx, t, c, ns, "hello"))
		}
	}
}

// TestE2ERealNodeStopLeavesNothing: a cluster of its own with a real node running a pod is
// stopped; afterwards no process of the node is left (shims included), no cgroup, veth or
// bridge, no mount of its directory, and the host's kernel settings are as they were,
// although the kubelet did rewrite them, in the node's own copies.
func TestE2ERealNodeStopLeavesNothing(t *testing.T) {
	before, err := localcluster.HostSysctls()
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, 1, localcluster.Options{Name: "rn-stop", Scheduler: &schedconfig.KubeSchedulerConfiguration{}, RealNodes: 1, KeepDir: true})[0]
	t.Cleanup(func() { os.RemoveAll(c.Dir) })
	ctx := context.Background()
	ns := metav1.NamespaceDefault // a test namespace's cleanup would come after Stop
	p := testServicePod("sleeper")
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(ctx, t, c, ns, "sleeper", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	node := c.RealNodes()[0]
	running := node.Processes()
	if len(running) < 6 { // holder, containerd, kubelet, kube-proxy, a shim, pause, the service
		t.Errorf("node runs %d processes (%v), want its daemons, a shim and the pod's", len(running), running)
	}
	during, err := localcluster.HostSysctls()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(during) != fmt.Sprint(before) {
		t.Errorf("host kernel settings changed while the node ran: %v, were %v", during, before)
	}
	own, err := os.ReadFile(filepath.Join(node.Dir, "sysctl", "kernel.panic"))
	if err != nil || strings.TrimSpace(string(own)) != "10" {
		t.Errorf("the node's own kernel.panic is %q (%v): the kubelet should have set it to 10", own, err)
	}

	c.Stop()
	if left := node.Processes(); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
	for _, pid := range running {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process %d (%s) still exists after Stop", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	for _, dir := range node.CgroupDirs() {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left after Stop", dir)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + node.HostVeth()); err == nil {
		t.Errorf("veth %s left after Stop", node.HostVeth())
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), c.Dir) {
		t.Errorf("mounts of %s left after Stop", c.Dir)
	}
	after, err := localcluster.HostSysctls()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("host kernel settings after Stop: %v, were %v", after, before)
	}
}
