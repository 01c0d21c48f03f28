// Package e2e holds end-to-end tests against real local clusters.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// TestE2ESmokeTwoClusters proves the harness: two independent clusters at once, each with
// three fake Jetson nodes, a Deployment placed by the real kube-scheduler and made Running
// by kwok, a pod evicted through the Eviction API and replaced by its ReplicaSet, and no
// process left behind once the clusters stop.
func TestE2ESmokeTwoClusters(t *testing.T) {
	clusters := clustertest.Start(t, 2, localcluster.Options{
		Name:      "smoke",
		Scheduler: &schedconfig.KubeSchedulerConfiguration{},
	})

	t.Run("workloads", func(t *testing.T) {
		for _, c := range clusters {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				exerciseCluster(t, c)
			})
		}
	})
	if t.Failed() {
		return
	}

	if clusters[0].Config.Host == clusters[1].Config.Host {
		t.Fatalf("both clusters serve at %s", clusters[0].Config.Host)
	}
	var pids []int
	for _, c := range clusters {
		pids = append(pids, c.PIDs()...)
	}
	if len(pids) != 2*5 {
		t.Errorf("started %d processes, want 5 per cluster (etcd, apiserver, controller-manager, scheduler, kwok)", len(pids))
	}
	localcluster.StopAll(clusters)
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after the clusters stopped (kill -0: %v)", pid, err)
		}
	}
}

func exerciseCluster(t *testing.T, c *localcluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	nodes := []*corev1.Node{
		localcluster.JetsonNode("xavier-a", localcluster.AGXXavier, localcluster.NodeOptions{}),
		localcluster.JetsonNode("xavier-b", localcluster.AGXXavier, localcluster.NodeOptions{GPUReplicas: 4}),
		localcluster.JetsonNode("orin-nx", localcluster.OrinNX, localcluster.NodeOptions{}),
	}
	if err := c.AddNodes(ctx, nodes...); err != nil {
		t.Fatal(err)
	}
	// kwok's node-initialize stage rewrites status: what the tests later rely on must survive it.
	shared, err := c.Client.CoreV1().Nodes().Get(ctx, "xavier-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := shared.Status.Allocatable[api.ResourceGPU]; got.Value() != 4 {
		t.Errorf("time-sliced node allocatable %s = %s, want 4", api.ResourceGPU, got.String())
	}
	if got := shared.Status.Allocatable[corev1.ResourceMemory]; got.Cmp(resource.MustParse("32Gi")) != 0 {
		t.Errorf("node allocatable memory = %s, want 32Gi", got.String())
	}
	if len(shared.Status.Images) == 0 || shared.Status.Images[0].SizeBytes == 0 {
		t.Errorf("node status.images lost or without sizes: %v", shared.Status.Images)
	}

	ns := clustertest.Namespace(t, c, nil)
	labels := map[string]string{"app": "inference"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "inference", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{corev1.LabelArchStable: "arm64"},
					Containers: []corev1.Container{{
						Name:  "model",
						Image: "nvcr.io/nvidia/l4t-ml:r35.2.1-py3",
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
							Limits:   corev1.ResourceList{api.ResourceGPU: resource.MustParse("1")},
						},
					}},
				},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	running := waitRunning(ctx, t, c.Client, ns, "app=inference", 2, nil)
	for _, p := range running {
		if p.Spec.NodeName == "" || p.Spec.SchedulerName != corev1.DefaultSchedulerName {
			t.Errorf("pod %s: node %q scheduler %q, want placed by %s", p.Name, p.Spec.NodeName, p.Spec.SchedulerName, corev1.DefaultSchedulerName)
		}
	}

	victim := running[0]
	err = c.Client.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: victim.Name, Namespace: ns},
	})
	if err != nil {
		t.Fatalf("evicting %s: %v", victim.Name, err)
	}
	replaced := waitRunning(ctx, t, c.Client, ns, "app=inference", 2, func(pods []corev1.Pod) error {
		for _, p := range pods {
			if p.Name == victim.Name {
				return fmt.Errorf("evicted pod %s still listed", victim.Name)
			}
		}
		return nil
	})
	for _, p := range replaced {
		if p.Name == running[1].Name {
			continue
		}
		if len(p.OwnerReferences) == 0 || p.OwnerReferences[0].Kind != "ReplicaSet" {
			t.Errorf("replacement pod %s not owned by a ReplicaSet: %v", p.Name, p.OwnerReferences)
		}
	}
}

// waitRunning waits until exactly want pods match selector, all Running and Ready, and
// check (when given) accepts them.
func waitRunning(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, selector string, want int, check func([]corev1.Pod) error) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	var problem error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			problem = err
			return false, nil
		}
		pods = list.Items
		if len(pods) != want {
			problem = fmt.Errorf("%d pods, want %d", len(pods), want)
			return false, nil
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
				problem = fmt.Errorf("pod %s is %s (ready %v)", p.Name, p.Status.Phase, podReady(&p))
				return false, nil
			}
		}
		if check != nil {
			if problem = check(pods); problem != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d running pods %q in %s: %v (last: %v)", want, selector, ns, err, problem)
	}
	return pods
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
