package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/edgemigrate/edgemigrate/extender/schedtest"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// TestE2EExtenderCommand runs `edgemigrate extender` as operators do, against the shared
// cluster: it turns ready once its informers sync, judges a node with the flags given
// (memory reserve), and exits cleanly on SIGTERM.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestE2EExtenderCommand(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := clustertest.Namespace(t, e.cluster, nil)
	e.schedtest().AddNodes(ctx, t, ns, "command", []schedtest.Node{{Name: "command-a", Model: localcluster.OrinNX, Occupied: 4 * jetsontest.Gi}})

	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), "edgemigrate")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/edgemigrate")
	build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building edgemigrate: %v\n%s", err, out)
	}
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	addr, metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "extender", "--kubeconfig", e.cluster.Kubeconfig, "--listen-address", addr,
		"--metrics-address", metricsAddr, "--memory-reserve", "2Gi", "--policy", "spread", "-v", "2")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("extender never ready: %v\n%s", err, logs.String())
	}
	// 16Gi less the 4Gi occupant less the 2Gi reserve leaves 10Gi.
	body, _ := json.Marshal(extenderv1.ExtenderArgs{Pod: schedtest.Pod(ns, "probe", "command", 11*jetsontest.Gi), NodeNames: &[]string{"command-a"}})
	resp, err := http.Post("http://"+addr+"/filter", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res extenderv1.ExtenderFilterResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := "unified memory: need 11.0Gi, free 10.0Gi of 14.0Gi on NVIDIA-Jetson-Orin-NX"; res.FailedNodes["command-a"] != want {
		t.Errorf("filter answered %+v, want command-a rejected with %q", res, want)
	}
	// The metrics address serves probes and metrics (the filter above counted), and not the verbs.
	for path, want := range map[string]int{"/readyz": http.StatusOK, "/filter": http.StatusNotFound} {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on the metrics address: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if metrics := get(t, "http://"+metricsAddr+"/metrics"); !strings.Contains(metrics, "edgemigrate_extender_nodes_rejected_total") {
		t.Errorf("no extender metrics on the metrics address:\n%.500s", metrics)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("extender exited with %v after SIGTERM\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"Serving scheduler extender"`) {
		t.Errorf("no structured start-up log line:\n%s", logs.String())
	}
}
