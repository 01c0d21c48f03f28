package webhook

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/edgemigrate/edgemigrate/api"
)

// TestClusterState: the informer-backed state answers from its caches, strips what it does
// not read, and reports what does not exist.
func TestClusterState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml", Labels: map[string]string{api.LabelNamespaceEnabled: "true"}}},
		&appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ml", OwnerReferences: []metav1.OwnerReference{*controllerRef("apps/v1", "Deployment", "web")}},
			Spec:       appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "big"}}}}},
		},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"busybox:1"}, SizeBytes: 10}}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"docker.io/library/busybox:1"}, SizeBytes: 12}}}},
	)
	s, err := NewClusterState(client)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(ctx)
	if err := s.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Synced(); err != nil {
		t.Fatal(err)
	}
	labels, err := s.NamespaceLabels(ctx, "ml")
	if err != nil || labels[api.LabelNamespaceEnabled] != "true" {
		t.Errorf("namespace labels %v, %v", labels, err)
	}
	if _, err := s.NamespaceLabels(ctx, "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("missing namespace: %v, want not found", err)
	}
	owner, err := s.ReplicaSetController(ctx, "ml", "web-1")
	if err != nil || owner == nil || owner.Kind != "Deployment" || owner.Name != "web" {
		t.Errorf("ReplicaSet controller %+v, %v", owner, err)
	}
	if _, err := s.ReplicaSetController(ctx, "ml", "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("missing ReplicaSet: %v, want not found", err)
	}
	// Nodes disagreeing on a size: the largest, as a destination may pull all of it.
	if size, ok := s.ImageSize("busybox:1"); !ok || size != 12 {
		t.Errorf("image size %d %v, want 12", size, ok)
	}
	cached, err := s.replicaSets.ReplicaSets("ml").Get("web-1")
	if err != nil || len(cached.Spec.Template.Spec.Containers) != 0 {
		t.Errorf("cached ReplicaSet keeps its pod template (%v)", err)
	}
}
