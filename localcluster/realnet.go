package localcluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// Real nodes' networks. Every cluster with real nodes takes a slot k, held by a lock file
// for as long as the cluster runs (the kernel releases it if the process dies), and owns
// everything named emrn<k>…: the host bridge emrn<k>br with 10.250.k.1/24, each node's
// veth emrn<k>n<i> to a network namespace where the node has 10.250.k.(10+i) and its pods
// 10.251.(8k+i).0/24. Nothing else on the host is changed: no default route, no forwarding,
// no iptables rule (kube-proxy's rules live in the nodes' namespaces).
const (
	realNodeSlots    = 32
	maxRealNodes     = 8
	realNodeLockDir  = "/run/edgemigrate-localcluster"
	realNodeIfPrefix = "emrn"
)

// realNet is one cluster's share of the host's network.
type realNet struct {
	slot     int
	prefix   string // emrn<k>
	bridge   string
	hostIP   string // the bridge's address: the API server proxy and the registry listen here
	lock     *os.File
	apiProxy net.Listener
	wg       sync.WaitGroup
}

func (n *realNet) nodeIP(i int) string  { return fmt.Sprintf("10.250.%d.%d", n.slot, 10+i) }
func (n *realNet) podCIDR(i int) string { return fmt.Sprintf("10.251.%d.0/24", 8*n.slot+i) }

// clusterCIDR covers every node's pod subnet.
func (n *realNet) clusterCIDR() string { return fmt.Sprintf("10.251.%d.0/21", 8*n.slot) }

// allocateRealNet takes a free slot and creates its bridge. A bridge left by a process that
// died holding the same slot is removed first: the slot's lock says it is no one's.
func allocateRealNet() (*realNet, error) {
	if err := os.MkdirAll(realNodeLockDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", realNodeLockDir, err)
	}
	for k := range realNodeSlots {
		f, err := os.OpenFile(filepath.Join(realNodeLockDir, fmt.Sprintf("slot-%d.lock", k)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening slot lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		n := &realNet{slot: k, prefix: fmt.Sprintf("%s%d", realNodeIfPrefix, k), lock: f}
		n.bridge = n.prefix + "br"
		n.hostIP = fmt.Sprintf("10.250.%d.1", k)
		if err := n.createBridge(); err != nil {
			n.release()
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("all %d real-node network slots are taken (see %s)", realNodeSlots, realNodeLockDir)
}

func (n *realNet) createBridge() error {
	if linkExists(n.bridge) {
		klog.InfoS("Removing a bridge left by a dead cluster", "bridge", n.bridge)
		if err := run("ip", "link", "del", n.bridge); err != nil {
			return err
		}
	}
	n.removeStaleCgroups()
	for _, args := range [][]string{
		{"link", "add", n.bridge, "type", "bridge"},
		{"addr", "add", n.hostIP + "/24", "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return fmt.Errorf("creating bridge %s: %w", n.bridge, err)
		}
	}
	return nil
}

// startAPIProxy forwards the bridge's address to the API server on loopback, so nodes and
// pods (through the kubernetes Service) reach it while it stays bound to 127.0.0.1.
func (n *realNet) startAPIProxy(apiserverPort int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(n.hostIP, "0"))
	if err != nil {
		return 0, fmt.Errorf("API server proxy: %w", err)
	}
	n.apiProxy = l
	target := fmt.Sprintf("127.0.0.1:%d", apiserverPort)
	n.wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go proxyConn(conn, target)
		}
	})
	return l.Addr().(*net.TCPAddr).Port, nil
}

func proxyConn(conn net.Conn, target string) {
	defer conn.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// release removes the bridge (and with it the routes through it) and frees the slot.
func (n *realNet) release() {
	if n.apiProxy != nil {
		n.apiProxy.Close()
	}
	if linkExists(n.bridge) {
		if err := run("ip", "link", "del", n.bridge); err != nil {
			klog.ErrorS(err, "Removing bridge", "bridge", n.bridge)
		}
	}
	if n.lock != nil {
		n.lock.Close()
	}
}

// removeStaleCgroups kills the containers a dead process's nodes of this slot left running
// and removes their cgroups, so that new nodes start clean.
func (n *realNet) removeStaleCgroups() {
	mounts, err := cgroupMounts()
	if err != nil {
		return
	}
	for _, m := range mounts {
		stale, _ := filepath.Glob(filepath.Join(m, n.prefix+"n*"))
		for _, dir := range stale {
			klog.InfoS("Removing a cgroup left by a dead cluster", "cgroup", dir)
			for range 50 {
				pids := cgroupProcs(dir)
				if len(pids) == 0 {
					break
				}
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				time.Sleep(50 * time.Millisecond)
			}
			removeCgroup(dir)
		}
	}
}

// cgroupProcs lists the processes in a cgroup and its children.
func cgroupProcs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// run runs a host command, its output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ErrRealNodesUnavailable says this machine cannot run real nodes: not Linux as root, or
// without containerd, runc, the CNI plugins, iptables or the images.
var ErrRealNodesUnavailable = errors.New("real nodes unavailable")

// CNIBinDirs are where the CNI plugins are looked for: Debian's package, then the usual place.
var CNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// RealNodeRequirements checks what real nodes need on this machine, saying what is missing.
func RealNodeRequirements() (cniDir string, err error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: they need root (kubelet, containerd, network namespaces)", ErrRealNodesUnavailable)
	}
	var missing []string
	for _, bin := range []string{"containerd", "runc", "iptables", "ip", "nsenter", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	for _, dir := range CNIBinDirs {
		if _, err := os.Stat(filepath.Join(dir, "bridge")); err == nil {
			cniDir = dir
			break
		}
	}
	if cniDir == "" {
		missing = append(missing, "CNI plugins")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: missing %s (Debian: apt-get install containerd runc containernetworking-plugins iptables iproute2 util-linux; `make tools` does it as root)",
			ErrRealNodesUnavailable, strings.Join(missing, ", "))
	}
	return cniDir, nil
}
