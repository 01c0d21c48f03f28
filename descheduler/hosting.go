package descheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
)

// hostUser is the user name the API server gives api.HostServiceAccount in namespace.
func hostUser(namespace string) string {
	return "system:serviceaccount:" + namespace + ":" + api.HostServiceAccount
}

// hostClient returns the client a peer's objects are created with in namespace (the hosted
// namespace, policy.HostNamespace's answer for source): the descheduler impersonating
// api.HostServiceAccount there, which api.HostClusterRole lets create exactly a bundle's
// kinds in that namespace and nothing else, and which the API server's
// ValidatingAdmissionPolicy holds to the hosting rules. It first ensures the namespace
// (created only if the policy allows, with Pod Security enforce=restricted), the
// ServiceAccount and its RoleBinding. Without Deps.RestConfig (unit tests with a fake
// clientset) the objects are ensured and the controller's own client is returned.
func (c *Controller) hostClient(ctx context.Context, source, namespace string) (kubernetes.Interface, error) {
	if c.policy.Reserved(namespace) {
		return nil, fmt.Errorf("hosting cluster %s's service: namespace %s is a system namespace", source, namespace)
	}
	if err := c.ensureHostNamespace(ctx, source, namespace); err != nil {
		return nil, err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: api.HostServiceAccount, Namespace: namespace},
		// The descheduler impersonates it; nothing runs as it, so it needs no token.
		AutomountServiceAccountToken: ptr.To(false)}
	if _, err := c.kube.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating ServiceAccount %s/%s: %w", namespace, api.HostServiceAccount, err)
	}
	if err := c.ensureHostRoleBinding(ctx, namespace); err != nil {
		return nil, err
	}
	if c.restConfig == nil {
		return c.kube, nil
	}
	if cs, ok := c.hostClients.Load(namespace); ok {
		return cs.(kubernetes.Interface), nil
	}
	cfg := rest.CopyConfig(c.restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: hostUser(namespace)}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the client impersonating %s: %w", hostUser(namespace), err)
	}
	if err := bindingEffective(ctx, cs, namespace); err != nil {
		return nil, err
	}
	got, _ := c.hostClients.LoadOrStore(namespace, cs)
	return got.(kubernetes.Interface), nil
}

// ensureHostNamespace creates a missing hosted namespace if the policy allows it, with Pod
// Security admission enforcing restricted, so the API server refuses what the policy would.
func (c *Controller) ensureHostNamespace(ctx context.Context, source, namespace string) error {
	_, err := c.kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if !c.policy.Namespaces.Create {
		return fmt.Errorf("namespace %s does not exist here and this cluster's policy does not create namespaces for peers", namespace)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{
		psaapi.EnforceLevelLabel:   string(psaapi.LevelRestricted),
		psaapi.EnforceVersionLabel: psaapi.VersionLatest,
	}}}
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	klog.FromContext(ctx).Info("Created a namespace to host a peer's service", "namespace", namespace, "source", source)
	return nil
}

// ensureHostRoleBinding binds api.HostClusterRole to the host ServiceAccount in namespace.
// A RoleBinding of that name that binds anything else is an error, not silently kept.
func (c *Controller) ensureHostRoleBinding(ctx context.Context, namespace string) error {
	want := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: api.HostServiceAccount, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: api.HostClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: api.HostServiceAccount, Namespace: namespace}},
	}
	rbs := c.kube.RbacV1().RoleBindings(namespace)
	have, err := rbs.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		have, err = rbs.Get(ctx, want.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("ensuring RoleBinding %s/%s: %w", namespace, want.Name, err)
	}
	if have.RoleRef != want.RoleRef || !slices.Equal(have.Subjects, want.Subjects) {
		return fmt.Errorf("RoleBinding %s/%s exists but does not bind ClusterRole %s to ServiceAccount %s only; fix or delete it",
			namespace, want.Name, api.HostClusterRole, api.HostServiceAccount)
	}
	return nil
}

// bindingEffective waits until the API server's authorizer has seen the RoleBinding just
// made: its RBAC cache lags the write, and a bid's first read as the new identity would
// otherwise be forbidden and say "cannot tell" where the answer is "yes".
func bindingEffective(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "create", Group: "apps", Resource: "deployments"}}}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, hostBindingTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			last = err
			return false, nil
		}
		last = fmt.Errorf("not allowed yet: %s", got.Status.Reason)
		return got.Status.Allowed, nil
	})
	if err != nil {
		return fmt.Errorf("%s cannot create Deployments in %s within %s of its RoleBinding: %v", hostUser(namespace), namespace, hostBindingTimeout, last)
	}
	return nil
}

// hostBindingTimeout bounds the wait for a new RoleBinding to take effect (milliseconds, usually).
const hostBindingTimeout = 5 * time.Second
