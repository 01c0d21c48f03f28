package descheduler

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"
)

// Stand-ins until s4's hosting.go and s2's peer client merge.

func (c *Controller) hostClient(ctx context.Context, source, namespace string) (kubernetes.Interface, error) {
	return c.kube, c.ensureNamespace(ctx, namespace)
}

func (c *Controller) peerClient() *http.Client { return http.DefaultClient }

func (c *Controller) ensureNamespace(ctx context.Context, name string) error {
	_, err := c.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("ensuring namespace %s: %w", name, err)
	}
	return nil
}
