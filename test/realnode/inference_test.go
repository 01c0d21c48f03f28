package realnode

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/inference"
	"github.com/edgemigrate/edgemigrate/internal/inference/mnist"
	"github.com/edgemigrate/edgemigrate/internal/inference/profile"
	"github.com/edgemigrate/edgemigrate/internal/inference/service"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// TestE2ERealNodeInference: each inference image, deployed with inference.Deployment, runs
// on the real node, is Ready through its probes, and answers POST /infer from the host at
// its pod IP with a right result and the identity the downward API gave it; bad input is
// a 400 from the real container.
func TestE2ERealNodeInference(t *testing.T) {
	c := shared.Require(t)[0]
	ns := clustertest.Namespace(t, c, nil)
	ctx := context.Background()
	node := c.RealNodes()[0]

	test, err := mnist.TestSplit(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, repo string
		check      func(t *testing.T, url string) service.Identity
	}{
		{"classifier", images.Classifier, func(t *testing.T, url string) service.Identity {
			right := 0
			var id service.Identity
			for i := range 20 {
				var a mnist.Answer
				postJSON(t, url, mnist.NewRequest(test.Images[i]), http.StatusOK, &a)
				if a.Digit == int(test.Labels[i]) {
					right++
				}
				id = a.Identity
			}
			if right < 18 {
				t.Errorf("classifier: %d of the first 20 t10k digits right, want ≥ 18 (98%% on the split)", right)
			}
			var e service.ErrorAnswer
			postJSON(t, url, mnist.Request{Pixels: []int{1, 2, 3}}, http.StatusBadRequest, &e)
			if e.Error == "" {
				t.Error("classifier: a 3-pixel image gave no error message")
			}
			return id
		}},
		{"profiler", images.Profiler, func(t *testing.T, url string) service.Identity {
			var id service.Identity
			for _, style := range profile.Styles {
				var a profile.Answer
				postJSON(t, url, profile.Request{Samples: profile.Window(42, style)}, http.StatusOK, &a)
				if a.Profile != style {
					t.Errorf("profiler: a generated %s window was profiled %s (%+v)", style, a.Profile, a.Result)
				}
				id = a.Identity
			}
			var e service.ErrorAnswer
			postJSON(t, url, profile.Request{}, http.StatusBadRequest, &e)
			if e.Error == "" {
				t.Error("profiler: an empty window gave no error message")
			}
			return id
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := inference.Deployment(tc.name, ns, images.Registry+"/"+tc.repo+":"+chartAppVersion(), "car-1")
			// The webhook writes the admitting cluster; this cluster runs none, so the test does.
			d.Spec.Template.Annotations[api.AnnotationSourceCluster] = c.Name
			onRealNode(&d.Spec.Template.Spec)
			if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var pod corev1.Pod
			err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
				list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()})
				if err != nil {
					return false, nil
				}
				ready := slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return !podReady(&p) })
				if len(ready) == 1 {
					pod = ready[0]
				}
				return len(ready) == 1, nil
			})
			if err != nil {
				t.Fatalf("%s not Ready on the real node: %v", tc.name, err)
			}
			if pod.Spec.NodeName != node.Name {
				t.Errorf("pod %s on %s, want the real node %s", pod.Name, pod.Spec.NodeName, node.Name)
			}
			id := tc.check(t, "http://"+pod.Status.PodIP+":"+strconv.Itoa(inference.Port)+"/infer")
			want := service.Identity{Cluster: c.Name, Pod: pod.Name, Namespace: ns, Node: node.Name}
			if id != want {
				t.Errorf("answers came from %+v, want %+v", id, want)
			}
			// Its liveness probe passed all along: the kubelet never restarted it.
			if p, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
				t.Error(err)
			} else if n := p.Status.ContainerStatuses[0].RestartCount; n != 0 {
				t.Errorf("pod %s restarted %d times", pod.Name, n)
			}
			if pulls := c.Registry().BlobPulls(tc.repo); pulls == 0 {
				t.Errorf("no blob of %s was pulled from the cluster's registry", tc.repo)
			}
		})
	}
}

// postJSON posts v to url, wants status, and decodes the answer into out.
func postJSON(t *testing.T, url string, v any, status int, out any) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("POST %s: %s %s, want %d", url, resp.Status, answer, status)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		t.Fatalf("POST %s: answer %s: %v", url, answer, err)
	}
}
