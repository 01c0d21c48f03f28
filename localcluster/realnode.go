package localcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/images"
)

// RealNodeLabel (value "true") and RealNodeTaint (NoSchedule) mark real nodes. The taint
// keeps pods meant for kwok's fake nodes off them; real workloads select the label and
// tolerate the taint (RealNodePlacement).
const (
	RealNodeLabel = "localcluster.edgemigrate.io/real-node"
	RealNodeTaint = RealNodeLabel
)

// RealNodeModel is the Jetson a real node is labelled as. Its capacity is the host's, as
// its kubelet reports it; only the GPU slot is added.
var RealNodeModel = AGXXavier

// realNodeBinaries are what real nodes need besides the control plane.
var realNodeBinaries = []string{"kubelet", "kube-proxy"}

// hostSysctls are the kernel settings the kubelet rewrites at start (kernel.panic to 10,
// …). None is namespaced, so each node's mount namespace covers them with files of its
// own: the host keeps its values. Stop checks them and restores any that changed anyway.
var hostSysctls = []string{
	"kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"vm/overcommit_memory", "vm/panic_on_oom",
}

// RealNodePlacement returns the node selector and toleration that put a pod on a real node.
func RealNodePlacement() (map[string]string, []corev1.Toleration) {
	return map[string]string{RealNodeLabel: "true"},
		[]corev1.Toleration{{Key: RealNodeTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
}

// RealNode is a node run by a real kubelet and containerd, in network and mount namespaces
// of its own.
type RealNode struct {
	Name string
	// IP is the node's address on the cluster's bridge; PodCIDR its pods' subnet.
	IP, PodCIDR string
	// Dir holds its configuration, containerd's and the kubelet's state.
	Dir string
	// NetNS and MountNS are /proc/<pid>/ns links of the node's namespaces ("net:[4026…]").
	NetNS, MountNS string
	// CgroupRoot is the kubelet's cgroupRoot, created in every cgroup v1 hierarchy.
	CgroupRoot string

	cluster    *Cluster
	index      int
	hostVeth   string
	holder     *process
	daemons    []*process // containerd, kubelet, kube-proxy
	cgroupDirs []string
	sysctls    map[string]string // host values before the node started
}

// RealNodes returns the cluster's real nodes.
func (c *Cluster) RealNodes() []*RealNode { return c.realNodes }

// RealNodeHostIP is the host's address on the real nodes' bridge: a server listening there
// (a ledger, say) is reachable from their pods. Empty without real nodes.
func (c *Cluster) RealNodeHostIP() string {
	if c.net == nil {
		return ""
	}
	return c.net.hostIP
}

// Registry returns the cluster's image registry, nil without real nodes.
func (c *Cluster) Registry() *Registry { return c.registry }

// Exec runs a command in the node's network and mount namespaces (as its kubelet sees the
// machine) and returns its combined output.
func (n *RealNode) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(n.holder.pid()), "--net", "--mount", "--", name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s on node %s: %w: %s", name, strings.Join(args, " "), n.Name, err, out)
	}
	return out, nil
}

// RemoveImages deletes every image of repository from the node's containerd, so the next
// pod of it pulls again, as on a node that never ran it; it returns the references removed.
func (n *RealNode) RemoveImages(ctx context.Context, repository string) ([]string, error) {
	ctr := func(args ...string) ([]byte, error) {
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.containerdSocket(), "--namespace", "k8s.io"}, args...)...).CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("ctr %s on node %s: %w: %s", strings.Join(args, " "), n.Name, err, out)
		}
		return out, nil
	}
	// REF TYPE DIGEST ...: the runtime keeps an image under its tag, its digest and its
	// configuration's id; all three must go, found by the manifest digest they share.
	out, err := ctr("images", "ls")
	if err != nil {
		return nil, err
	}
	var rows [][]string
	targets := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		rows = append(rows, f)
		if strings.Contains(f[0], "/"+repository+":") || strings.Contains(f[0], "/"+repository+"@") {
			targets[f[2]] = true
		}
	}
	var refs []string
	for _, f := range rows {
		if targets[f[2]] {
			refs = append(refs, f[0])
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("node %s holds no image of %s: %s", n.Name, repository, out)
	}
	_, err = ctr(append([]string{"images", "rm", "--sync"}, refs...)...)
	return refs, err
}

// startRealNodes starts the registry and opts.RealNodes nodes, after the control plane.
func (c *Cluster) startRealNodes(ctx context.Context) error {
	proxyPort, err := c.net.startAPIProxy(c.ports.apiserver)
	if err != nil {
		return err
	}
	c.nodeAPIServer = fmt.Sprintf("https://%s:%d", c.net.hostIP, proxyPort)
	if err := c.publishAPIServerEndpoint(ctx, proxyPort); err != nil {
		return err
	}
	if c.registry, err = startRegistry(ctx, c.imagesDir, c.net.hostIP); err != nil {
		return err
	}
	c.dnsStop = make(chan struct{})
	if c.dns, err = c.startClusterDNS(ctx, c.net.hostIP); err != nil {
		return err
	}
	for i := range c.opts.RealNodes {
		n := &RealNode{
			Name: fmt.Sprintf("%s-real-%d", c.Name, i), IP: c.net.nodeIP(i), PodCIDR: c.net.podCIDR(i),
			Dir: filepath.Join(c.Dir, "nodes", fmt.Sprintf("real-%d", i)), CgroupRoot: fmt.Sprintf("/%sn%d", c.net.prefix, i),
			cluster: c, index: i, hostVeth: fmt.Sprintf("%sn%d", c.net.prefix, i),
		}
		c.mu.Lock()
		c.realNodes = append(c.realNodes, n)
		c.mu.Unlock()
		if err := n.start(ctx); err != nil {
			return fmt.Errorf("starting real node %s (files in %s): %w", n.Name, n.Dir, err)
		}
	}
	// Pods on one node reach pods on another through that node's address.
	for _, n := range c.realNodes {
		for _, peer := range c.realNodes {
			if peer != n {
				if _, err := n.Exec(ctx, "ip", "route", "replace", peer.PodCIDR, "via", peer.IP); err != nil {
					return err
				}
			}
		}
	}
	for _, n := range c.realNodes {
		if err := n.waitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// publishAPIServerEndpoint points the kubernetes Service at the proxy on the bridge, as the
// API server's endpoint reconciler would at its own address: pods reach 10.96.0.1 through
// kube-proxy.
func (c *Cluster) publishAPIServerEndpoint(ctx context.Context, port int) error {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: map[string]string{
			discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "localcluster.edgemigrate.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{c.net.hostIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, c.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return true, nil
		}
		klog.V(2).InfoS("Publishing the API server's endpoint", "cluster", c.Name, "err", err)
		return false, nil
	})
}

func (n *RealNode) start(ctx context.Context) error {
	for _, sub := range []string{"containerd", "kubelet", "kube-proxy", "cni/net.d", "cni/ipam", "var-lib", "var-log", "sysctl", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", sub, err)
		}
	}
	// The holder process creates the node's namespaces and keeps them while the node runs;
	// every daemon of the node joins both with nsenter.
	holder, err := startProcess("node-namespaces", "unshare",
		[]string{"--net", "--mount", "--propagation", "slave", "--", "sleep", "infinity"},
		filepath.Join(n.cluster.Dir, "logs", n.Name+"-namespaces.log"))
	if err != nil {
		return err
	}
	n.holder = holder
	if err := n.waitNamespaces(ctx); err != nil {
		return err
	}
	if err := n.isolateHostPaths(ctx); err != nil {
		return err
	}
	if err := n.setupNetwork(ctx); err != nil {
		return err
	}
	if err := n.createCgroups(); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	if err := n.startKubelet(); err != nil {
		return err
	}
	return n.startKubeProxy()
}

func (n *RealNode) waitNamespaces(ctx context.Context) error {
	self, _ := os.Readlink("/proc/self/ns/net")
	selfMnt, _ := os.Readlink("/proc/self/ns/mnt")
	pid := strconv.Itoa(n.holder.pid())
	return wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		if done, err := n.holder.exited(); done {
			return false, fmt.Errorf("unshare exited: %v: %s", err, n.holder.tail(logTailLines))
		}
		netns, err1 := os.Readlink("/proc/" + pid + "/ns/net")
		mntns, err2 := os.Readlink("/proc/" + pid + "/ns/mnt")
		if err1 != nil || err2 != nil || netns == self || mntns == selfMnt {
			return false, nil
		}
		n.NetNS, n.MountNS = netns, mntns
		return true, nil
	})
}

// isolateHostPaths gives the node, in its mount namespace, its own /var/lib and /var/log
// (the kubelet hard-codes /var/lib/kubelet/device-plugins and /var/log/containers, which two
// kubelets would clear for each other) and files of its own over the kernel settings the
// kubelet rewrites.
func (n *RealNode) isolateHostPaths(ctx context.Context) error {
	n.sysctls = map[string]string{}
	for _, name := range hostSysctls {
		data, err := os.ReadFile("/proc/sys/" + name)
		if err != nil {
			return fmt.Errorf("reading host setting %s: %w", name, err)
		}
		n.sysctls[name] = string(data)
		own := filepath.Join(n.Dir, "sysctl", strings.ReplaceAll(name, "/", "."))
		if err := os.WriteFile(own, data, 0o644); err != nil {
			return err
		}
		if _, err := n.Exec(ctx, "mount", "--bind", own, "/proc/sys/"+name); err != nil {
			return err
		}
	}
	for _, m := range [][2]string{{"var-lib", "/var/lib"}, {"var-log", "/var/log"}} {
		if _, err := n.Exec(ctx, "mount", "--bind", filepath.Join(n.Dir, m[0]), m[1]); err != nil {
			return err
		}
	}
	return nil
}

func (n *RealNode) setupNetwork(ctx context.Context) error {
	if linkExists(n.hostVeth) {
		_ = run("ip", "link", "del", n.hostVeth)
	}
	pid := strconv.Itoa(n.holder.pid())
	if err := run("ip", "link", "add", n.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", pid); err != nil {
		return err
	}
	if err := run("ip", "link", "set", n.hostVeth, "master", n.cluster.net.bridge, "up"); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
	} {
		if _, err := n.Exec(ctx, args[0], args[1:]...); err != nil {
			return err
		}
	}
	// The host reaches the node's pods (the API server calls webhooks at their addresses)
	// through the node; the route goes with the bridge.
	return run("ip", "route", "replace", n.PodCIDR, "via", n.IP, "dev", n.cluster.net.bridge)
}

// createCgroups creates the kubelet's cgroupRoot in every cgroup hierarchy, cpuset's
// filled from its parent, so that two kubelets never manage each other's pods.
func (n *RealNode) createCgroups() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, n.CgroupRoot)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		n.cgroupDirs = append(n.cgroupDirs, dir)
		if filepath.Base(m) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				data, err := os.ReadFile(filepath.Join(m, f))
				if err != nil {
					return fmt.Errorf("reading %s: %w", f, err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
					return fmt.Errorf("writing %s of %s: %w", f, dir, err)
				}
			}
		}
	}
	return nil
}

// cgroupMounts lists the mount points of the cgroup hierarchies (v1 and v2).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fs := fields[sep+1]; fs == "cgroup" || fs == "cgroup2" {
			out = append(out, fields[4])
		}
	}
	return out, s.Err()
}

func (n *RealNode) writeFile(rel string, data []byte) (string, error) {
	path := filepath.Join(n.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// writeYAML writes a configuration file of the node as YAML.
func (n *RealNode) writeYAML(rel string, v any) (string, error) {
	data, err := yaml.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding %s: %w", rel, err)
	}
	return n.writeFile(rel, data)
}

func (n *RealNode) containerdSocket() string {
	return filepath.Join(n.runDir(), "containerd.sock")
}

// runDir holds what contains Unix sockets: containerd's and the kubelet's root directory
// (pod-resources, plugins). Not in Dir: a socket's path is limited (104 bytes in
// containerd, 108 in Linux) and a cluster's directory can be deeper (a fleet's is). The
// network slot's lock makes the name, the node's veth, this node's alone. The kubelet's
// mounts there are in the node's mount namespace, gone with it.
func (n *RealNode) runDir() string {
	return filepath.Join(realNodeLockDir, n.hostVeth)
}

func (n *RealNode) startContainerd(ctx context.Context) error {
	c := n.cluster
	// What a node that died holding the same slot left there is no one's.
	if err := os.RemoveAll(n.runDir()); err != nil {
		return fmt.Errorf("removing what a dead node left in its run directory: %w", err)
	}
	if err := os.MkdirAll(n.runDir(), 0o755); err != nil {
		return fmt.Errorf("creating the node's run directory: %w", err)
	}
	cfg := containerdConfig(n.Dir, n.runDir(), c.cniDir)
	path, err := n.writeFile("containerd/config.toml", []byte(cfg))
	if err != nil {
		return err
	}
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n",
		"http://"+c.registry.NodeHost, "http://"+c.registry.NodeHost)
	if _, err := n.writeFile(filepath.Join("containerd", "certs.d", images.Registry, "hosts.toml"), []byte(hosts)); err != nil {
		return err
	}
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "localcluster",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "loopback"}
  ]
}
`, n.PodCIDR, filepath.Join(n.Dir, "cni", "ipam"))
	if _, err := n.writeFile("cni/net.d/10-localcluster.conflist", []byte(cni)); err != nil {
		return err
	}
	p, err := n.run("containerd", "containerd", "--config", path)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, c.opts.ReadyTimeout, true, func(context.Context) (bool, error) {
		if done, werr := p.exited(); done {
			return false, fmt.Errorf("containerd exited (%v); last log lines:\n%s", werr, p.tail(logTailLines))
		}
		_, err := os.Stat(n.containerdSocket())
		return err == nil, nil
	})
}

// containerdConfig is containerd 1.6's configuration for one node: every path its own,
// plain-HTTP pulls of images.Registry from the cluster's registry (certs.d/), the local
// pause image, and what this VM lacks: CAP_SYS_RESOURCE (restrict_oom_score_adj) and
// AppArmor. The streaming server listens on the node's loopback.
func containerdConfig(dir, socketDir, cniDir string) string {
	d := func(rel string) string { return strconv.Quote(filepath.Join(dir, rel)) }
	sock := func(name string) string { return strconv.Quote(filepath.Join(socketDir, name)) }
	return fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %s

[ttrpc]
  address = %s

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %s

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%s/%s:%s"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %s

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %s

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %s
`, d("containerd/root"), d("containerd/state"), sock("containerd.sock"), sock("containerd.sock.ttrpc"),
		d("containerd/opt"), images.Registry, images.Pause, images.PauseTag, d("containerd/runc"), cniDir, d("cni/net.d"),
		d("containerd/certs.d"))
}

// nodeLabels are GPU Feature Discovery's labels of RealNodeModel and RealNodeLabel. The
// architecture stays the host's (the kubelet restores kubernetes.io/arch anyway): select
// these nodes as Jetsons by nvidia.com/gpu.product alone.
func (n *RealNode) nodeLabels() string {
	fake := JetsonNode(n.Name, RealNodeModel, NodeOptions{})
	labels := fake.Labels
	for _, k := range []string{corev1.LabelHostname, corev1.LabelArchStable, corev1.LabelOSStable, "type"} {
		delete(labels, k)
	}
	labels[RealNodeLabel] = "true"
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		pairs = append(pairs, k+"="+labels[k])
	}
	return strings.Join(pairs, ",")
}

// kubeconfigFor writes a kubeconfig for a client of the API server through the bridge.
func (n *RealNode) kubeconfigFor(file, user string, groups ...string) (string, error) {
	c := n.cluster
	cert, key, err := c.pki.clientCredentials(user, groups...)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.nodeAPIServer, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos["local"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "local"}
	cfg.CurrentContext = "local"
	path := filepath.Join(n.Dir, file)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

func (n *RealNode) startKubelet() error {
	c := n.cluster
	kubeconfig, err := n.kubeconfigFor("kubelet/kubeconfig", "system:node:"+n.Name, "system:nodes")
	if err != nil {
		return err
	}
	// Pods resolve Services through the cluster's DNS, and nothing else: no upstream.
	resolv, err := n.writeFile("kubelet/resolv.conf", []byte("# the cluster's DNS only: no upstream resolver\n"))
	if err != nil {
		return err
	}
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		// cgroup v1 (this VM) still works in v1.37 when asked; PID 1 is not systemd.
		"failCgroupV1":             false,
		"cgroupDriver":             "cgroupfs",
		"cgroupRoot":               n.CgroupRoot,
		"containerRuntimeEndpoint": "unix://" + n.containerdSocket(),
		"address":                  n.IP,
		"readOnlyPort":             0,
		"healthzBindAddress":       "127.0.0.1",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": c.pki.CACert},
		},
		"authorization":      map[string]any{"mode": "Webhook"},
		"registerWithTaints": []corev1.Taint{{Key: RealNodeTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}},
		"resolvConf":         resolv,
		"clusterDNS":         []string{c.net.hostIP},
		"clusterDomain":      clusterDomain,
		"podLogsDir":         filepath.Join(n.Dir, "pod-logs"),
		"failSwapOn":         false,
		// A shared machine's disk: evict on a nearly full disk only, never collect our images.
		"evictionHard":                map[string]string{"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"serializeImagePulls":         false,
		"nodeStatusUpdateFrequency":   "2s",
		"syncFrequency":               "10s",
		"fileCheckFrequency":          "10s",
		"maxPods":                     110,
	}
	path, err := n.writeYAML("kubelet/config.yaml", cfg)
	if err != nil {
		return err
	}
	_, err = n.run("kubelet", filepath.Join(c.opts.BinDir, "kubelet"),
		"--config="+path,
		"--kubeconfig="+kubeconfig,
		"--root-dir="+filepath.Join(n.runDir(), "kubelet"),
		"--cert-dir="+filepath.Join(n.Dir, "kubelet", "pki"),
		"--hostname-override="+n.Name,
		"--node-ip="+n.IP,
		"--node-labels="+n.nodeLabels(),
		"--v=1",
	)
	return err
}

func (n *RealNode) startKubeProxy() error {
	c := n.cluster
	kubeconfig, err := n.kubeconfigFor("kube-proxy/kubeconfig", "system:kube-proxy")
	if err != nil {
		return err
	}
	cfg := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "iptables",
		"clientConnection":   map[string]any{"kubeconfig": kubeconfig},
		"hostnameOverride":   n.Name,
		"clusterCIDR":        c.net.clusterCIDR(),
		"bindAddress":        n.IP,
		"healthzBindAddress": "127.0.0.1:10256",
		"metricsBindAddress": "127.0.0.1:10249",
		// Conntrack's table size is the host's, not the namespace's: leave it alone.
		"conntrack": map[string]any{"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
	}
	path, err := n.writeYAML("kube-proxy/config.yaml", cfg)
	if err != nil {
		return err
	}
	_, err = n.run("kube-proxy", filepath.Join(c.opts.BinDir, "kube-proxy"), "--config="+path, "--v=1")
	return err
}

// run starts a daemon of the node inside its namespaces, logging to the cluster's logs/.
func (n *RealNode) run(name, binary string, args ...string) (*process, error) {
	nsenter := append([]string{"--target", strconv.Itoa(n.holder.pid()), "--net", "--mount", "--", binary}, args...)
	p, err := startProcess(name, "nsenter", nsenter, filepath.Join(n.cluster.Dir, "logs", n.Name+"-"+name+".log"))
	if err != nil {
		return nil, err
	}
	n.daemons = append(n.daemons, p)
	return p, nil
}

// waitReady waits until the node is Ready and then advertises its GPU slot, as Kubernetes
// documents for extended resources: a patch of the node's status capacity.
func (n *RealNode) waitReady(ctx context.Context) error {
	c := n.cluster
	var why string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, c.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		for _, p := range n.daemons {
			if done, werr := p.exited(); done {
				return false, fmt.Errorf("%s of node %s exited (%v); last log lines:\n%s", p.name, n.Name, werr, p.tail(logTailLines))
			}
		}
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		why = nodeUnusable(node)
		return why == "", nil
	})
	if err != nil {
		tail := ""
		if len(n.daemons) > 1 {
			tail = n.daemons[1].tail(logTailLines)
		}
		return fmt.Errorf("real node %s not Ready within %s (%s): %w; kubelet's last log lines:\n%s", n.Name, c.opts.ReadyTimeout, why, err, tail)
	}
	patch := []byte(`{"status":{"capacity":{"` + api.ResourceGPU + `":"1"},"allocatable":{"` + api.ResourceGPU + `":"1"}}}`)
	if _, err := c.Client.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("advertising the GPU of node %s: %w", n.Name, err)
	}
	return nil
}

// stopRealNodes deletes the pods of real nodes through the API (their kubelets stop the
// containers and release their networks and volumes), stops the daemons, then removes
// whatever a dead kubelet would leave: processes in the nodes' namespaces or cgroups (the
// containerd shims have been reparented to PID 1, so no process group reaches them),
// cgroups, the veths and the bridge. Mounts go with the nodes' mount namespaces.
func (c *Cluster) stopRealNodes() {
	c.mu.Lock()
	nodes := c.realNodes
	c.realNodes = nil
	c.mu.Unlock()
	if len(nodes) > 0 && c.process("kube-apiserver") != nil {
		c.drainRealNodes(nodes)
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(n.stop)
	}
	wg.Wait()
	if c.registry != nil {
		c.registry.stop()
	}
	c.dns.stop()
	if c.dnsStop != nil {
		close(c.dnsStop)
		c.dnsStop = nil
	}
	if c.net != nil {
		c.net.release()
	}
}

// drainRealNodes cordons the nodes and deletes their pods, waiting (boundedly) until their
// kubelets have confirmed it.
func (c *Cluster) drainRealNodes(nodes []*RealNode) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for _, n := range nodes {
		_, _ = c.Client.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	}
	pending := func() []corev1.Pod {
		var left []corev1.Pod
		for _, n := range nodes {
			list, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", n.Name).String()})
			if err == nil {
				left = append(left, list.Items...)
			}
		}
		return left
	}
	for _, p := range pending() {
		_ = c.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(1))})
	}
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		return len(pending()) == 0, nil
	})
	if err != nil {
		klog.InfoS("Real nodes' pods not all gone, removing them by force", "cluster", c.Name, "left", len(pending()))
	}
}

func (n *RealNode) stop() {
	grace := n.cluster.opts.StopGrace
	// kube-proxy and the kubelet first, then the runtime they use.
	for i := len(n.daemons) - 1; i >= 0; i-- {
		n.daemons[i].stop(grace)
	}
	n.killLeftovers()
	if n.holder != nil {
		n.holder.stop(grace)
	}
	if err := os.RemoveAll(n.runDir()); err != nil {
		klog.ErrorS(err, "Removing the node's run directory", "node", n.Name)
	}
	for _, dir := range n.cgroupDirs {
		removeCgroup(dir)
	}
	if linkExists(n.hostVeth) {
		if err := run("ip", "link", "del", n.hostVeth); err != nil {
			klog.ErrorS(err, "Removing veth", "node", n.Name)
		}
	}
	n.restoreSysctls()
}

// killLeftovers kills every process in the node's namespaces or cgroups until none is left.
func (n *RealNode) killLeftovers() {
	holder := 0
	if n.holder != nil {
		holder = n.holder.pid()
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		left := n.Processes()
		left = slices.DeleteFunc(left, func(pid int) bool { return pid == holder })
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	klog.InfoS("Processes of a real node survived SIGKILL", "node", n.Name, "pids", n.Processes())
}

// Processes returns the ids of the processes in the node's namespaces or cgroups, the
// holder of the namespaces included: after Stop there are none.
func (n *RealNode) Processes() []int {
	seen := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		netns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		mntns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		if (n.NetNS != "" && netns == n.NetNS) || (n.MountNS != "" && mntns == n.MountNS) {
			seen[pid] = true
		}
	}
	for _, dir := range n.cgroupDirs {
		for _, pid := range cgroupProcs(dir) {
			seen[pid] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// CgroupDirs are the node's cgroup directories, one per hierarchy; after Stop none exists.
func (n *RealNode) CgroupDirs() []string { return slices.Clone(n.cgroupDirs) }

// HostVeth is the host's end of the node's veth; after Stop it is gone.
func (n *RealNode) HostVeth() string { return n.hostVeth }

// removeCgroup removes a cgroup and its children, deepest first; a cgroup is removed once
// its last task has gone, which may take a moment after the kill.
func removeCgroup(root string) {
	for attempt := 0; attempt < 50; attempt++ {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		if len(dirs) == 0 {
			return
		}
		slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
		failed := false
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				failed = true
			}
		}
		if !failed {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	klog.InfoS("Cgroup not removed", "cgroup", root)
}

// restoreSysctls puts back any host setting that changed while the node ran (none should:
// the node covers them with its own files).
func (n *RealNode) restoreSysctls() {
	for name, want := range n.sysctls {
		got, err := os.ReadFile("/proc/sys/" + name)
		if err != nil || string(got) == want {
			continue
		}
		klog.InfoS("Host kernel setting changed while a real node ran, restoring it", "node", n.Name, "setting", name,
			"was", strings.TrimSpace(want), "now", strings.TrimSpace(string(got)))
		if err := os.WriteFile("/proc/sys/"+name, []byte(want), 0o644); err != nil {
			klog.ErrorS(err, "Restoring host kernel setting", "setting", name)
		}
	}
}

// HostSysctls reads the host kernel settings the kubelet would rewrite, for tests to compare.
func HostSysctls() (map[string]string, error) {
	out := map[string]string{}
	for _, name := range hostSysctls {
		data, err := os.ReadFile("/proc/sys/" + name)
		if err != nil {
			return nil, err
		}
		out[name] = strings.TrimSpace(string(data))
	}
	return out, nil
}
