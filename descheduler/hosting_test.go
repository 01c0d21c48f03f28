package descheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/internal/inference"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/manifests"
	"github.com/edgemigrate/edgemigrate/policy"
)

// restrictedSpec is a pod spec the hosting rules accept.
func restrictedSpec() corev1.PodSpec {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}}
	inference.Restrict(&spec)
	return spec
}

// applyInstalled creates the rendered chart's objects of the given kinds/names as the admin.
func applyInstalled(ctx context.Context, t *testing.T, cs kubernetes.Interface, want map[string]bool) {
	t.Helper()
	created := 0
	// The chart rendered with its defaults (test/chart keeps it up to date).
	for doc := range strings.SplitSeq(string(manifests.InstallYAML), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			if runtime.IsNotRegisteredError(err) || runtime.IsMissingKind(err) {
				continue // the CRD, comments
			}
			t.Fatalf("decoding install/edgemigrate.yaml: %v", err)
		}
		m, err := metaOf(obj)
		if err != nil || !want[obj.GetObjectKind().GroupVersionKind().Kind+"/"+m.GetName()] {
			continue
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.ServiceAccount:
			_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = cs.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("no client for %T", obj)
		}
		if err != nil {
			t.Fatalf("creating %T %s from install/edgemigrate.yaml: %v", obj, m.GetName(), err)
		}
		created++
	}
	if created != len(want) {
		t.Fatalf("created %d objects of install/edgemigrate.yaml, want %d (%v)", created, len(want), want)
	}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, errors.New("no metadata")
	}
	return m, nil
}

// TestE2EHostClient runs hostClient as the descheduler's ServiceAccount with the chart's
// ClusterRole, on a real API server with the chart's ClusterRole edgemigrate-host and
// ValidatingAdmissionPolicy: the impersonated client creates exactly a bundle's kinds in
// its namespace and nothing elsewhere, and the API server refuses what the policy forbids
// even when the controller is bypassed.
func TestE2EHostClient(t *testing.T) {
	c := clustertest.Start(t, 1, localcluster.Options{Name: "hosting"})[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := c.Client
	desched := "edgemigrate-descheduler"
	applyInstalled(ctx, t, admin, map[string]bool{
		"Namespace/" + api.SystemNamespace: true, "ServiceAccount/" + desched: true, "ClusterRole/" + desched: true,
		"ClusterRoleBinding/" + desched: true,
	})
	if err := manifests.InstallHosting(ctx, admin); err != nil {
		t.Fatal(err)
	}
	// The descheduler's own identity, with only the chart's rights.
	tok, err := admin.CoreV1().ServiceAccounts(api.SystemNamespace).CreateToken(ctx, desched, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	descCfg := rest.AnonymousClientConfig(c.Config)
	descCfg.BearerToken = tok.Status.Token
	descKube, err := kubernetes.NewForConfig(descCfg)
	if err != nil {
		t.Fatal(err)
	}
	pol := policy.Default()
	pol.OwnNamespace = api.SystemNamespace
	ctrl := &Controller{kube: descKube, policy: pol, restConfig: descCfg}

	host, err := ctrl.hostClient(ctx, "edge-b", "cars")
	if err != nil {
		t.Fatalf("hostClient: %v", err)
	}
	// Its rights hold as soon as hostClient returns: a bid's first read as the new identity
	// is answered, not forbidden while the authorizer catches up with the new RoleBinding.
	if _, err := host.CoreV1().Secrets("cars").Get(ctx, "svc-key", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the first read of a Secret as the host identity: %v, want not found", err)
	}
	ns, err := admin.CoreV1().Namespaces().Get(ctx, "cars", metav1.GetOptions{})
	if err != nil || ns.Labels[psaapi.EnforceLevelLabel] != string(psaapi.LevelRestricted) {
		t.Fatalf("hosted namespace %+v, %v: want it created with Pod Security enforce=restricted", ns.Labels, err)
	}
	if again, err := ctrl.hostClient(ctx, "edge-b", "cars"); err != nil || again != host {
		t.Errorf("a second hostClient for the same namespace = %v, %v; want the same client", again, err)
	}
	waitDefaultSA(ctx, t, admin, "cars")
	waitPolicyActive(ctx, t, host, "cars")

	// Exactly a bundle's kinds, in its own namespace.
	labels := map[string]string{"app": "detector"}
	for what, create := range map[string]func() error{
		"Deployment": func() error {
			_, err := host.AppsV1().Deployments("cars").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "detector"},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: restrictedSpec()}}}, metav1.CreateOptions{})
			return err
		},
		"Pod": func() error {
			_, err := host.CoreV1().Pods("cars").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "detector-0"}, Spec: restrictedSpec()}, metav1.CreateOptions{})
			return err
		},
		"Service": func() error {
			_, err := host.CoreV1().Services("cars").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "detector"},
				Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
			return err
		},
		"ConfigMap": func() error {
			_, err := host.CoreV1().ConfigMaps("cars").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "labels"}}, metav1.CreateOptions{})
			return err
		},
		"PodDisruptionBudget": func() error {
			_, err := host.PolicyV1().PodDisruptionBudgets("cars").Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "detector"},
				Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}}}, metav1.CreateOptions{})
			return err
		},
		"HorizontalPodAutoscaler": func() error {
			_, err := host.AutoscalingV2().HorizontalPodAutoscalers("cars").Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "detector"},
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 3,
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "detector"}}}, metav1.CreateOptions{})
			return err
		},
	} {
		if err := create(); err != nil {
			t.Errorf("the host identity cannot create a %s in its namespace: %v", what, err)
		}
	}
	// Nothing else, and nothing elsewhere.
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for what, try := range map[string]func() error{
		"a Secret in its namespace": func() error {
			_, err := host.CoreV1().Secrets("cars").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
			return err
		},
		"a RoleBinding in its namespace": func() error {
			_, err := host.RbacV1().RoleBindings("cars").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rb"},
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"}}, metav1.CreateOptions{})
			return err
		},
		"a ConfigMap in another namespace": func() error {
			_, err := host.CoreV1().ConfigMaps("elsewhere").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		},
		"a namespace": func() error {
			_, err := host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "more"}}, metav1.CreateOptions{})
			return err
		},
		"the pods of every namespace": func() error {
			_, err := host.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return err
		},
	} {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("the host identity creating or listing %s: %v, want forbidden", what, err)
		}
	}

	// The ValidatingAdmissionPolicy on its own: in a namespace the operator made without Pod
	// Security labels, the API server still refuses what the hosting rules forbid.
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	legacy, err := ctrl.hostClient(ctx, "edge-b", "legacy")
	if err != nil {
		t.Fatal(err)
	}
	waitDefaultSA(ctx, t, admin, "legacy")
	// It exists, so that what refuses a pod naming it is the policy, not the lookup.
	if _, err := admin.CoreV1().ServiceAccounts("legacy").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "powerful"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPolicyActive(ctx, t, legacy, "legacy")
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.PodSpec)
		want   string
	}{
		{"privileged", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Privileged, s.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true), nil
		}, "privileged"},
		{"hostPath /", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}, "no hostPath"},
		{"hostNetwork and hostPID", func(s *corev1.PodSpec) { s.HostNetwork, s.HostPID = true, true }, "host's network, PID or IPC"},
		{"nodeName", func(s *corev1.PodSpec) { s.NodeName = "control-plane" }, "may not name its node"},
		{"foreign ServiceAccount", func(s *corev1.PodSpec) { s.ServiceAccountName = "powerful" }, "only as the ServiceAccounts default"},
		{"token automount", func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = nil }, "automountServiceAccountToken: false"},
		{"root", func(s *corev1.PodSpec) {
			s.SecurityContext.RunAsNonRoot, s.SecurityContext.RunAsUser = nil, ptr.To[int64](0)
		}, "non-root"},
		{"added capability", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
		}, "NET_BIND_SERVICE"},
	} {
		spec := restrictedSpec()
		tc.mutate(&spec)
		_, err := legacy.CoreV1().Pods("legacy").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-"}, Spec: spec}, metav1.CreateOptions{})
		wantRefused(t, "Pod with "+tc.name, err, tc.want)
		_, err = legacy.AppsV1().Deployments("legacy").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}, metav1.CreateOptions{})
		wantRefused(t, "Deployment with "+tc.name, err, tc.want)
	}
	_, err = legacy.CoreV1().Services("legacy").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "open"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	wantRefused(t, "NodePort Service", err, "ClusterIP")

	// kube-system: hostClient refuses it, and were the host identity bound there by mistake,
	// the API server refuses anything it creates.
	if _, err := ctrl.hostClient(ctx, "edge-b", metav1.NamespaceSystem); err == nil || !strings.Contains(err.Error(), "system namespace") {
		t.Errorf("hostClient(kube-system) = %v, want a refusal", err)
	}
	if _, err := admin.CoreV1().ServiceAccounts(metav1.NamespaceSystem).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: api.HostServiceAccount}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(metav1.NamespaceSystem).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: api.HostServiceAccount},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: api.HostClusterRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: api.HostServiceAccount, Namespace: metav1.NamespaceSystem}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sysCfg := rest.CopyConfig(c.Config)
	sysCfg.Impersonate = rest.ImpersonationConfig{UserName: hostUser(metav1.NamespaceSystem)}
	sys := kubernetes.NewForConfigOrDie(sysCfg)
	_, err = sys.AppsV1().Deployments(metav1.NamespaceSystem).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "detector"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: restrictedSpec()}}}, metav1.CreateOptions{})
	wantRefused(t, "Deployment in kube-system", err, "system namespace")
	_, err = sys.CoreV1().ConfigMaps(metav1.NamespaceSystem).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	wantRefused(t, "ConfigMap in kube-system", err, "system namespace")

	// A policy that creates no namespaces; a RoleBinding of the name that binds more.
	closed := policy.Default()
	closed.Namespaces.Create = false
	if _, err := (&Controller{kube: descKube, policy: closed, restConfig: descCfg}).hostClient(ctx, "edge-b", "absent"); err == nil ||
		!strings.Contains(err.Error(), "does not create namespaces") {
		t.Errorf("hostClient(absent namespace, no creation) = %v, want a refusal", err)
	}
	if _, err := admin.CoreV1().Namespaces().Get(ctx, "absent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace absent: %v, want it not created", err)
	}
	if _, err := admin.RbacV1().RoleBindings("elsewhere").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: api.HostServiceAccount},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: api.HostServiceAccount, Namespace: "elsewhere"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.hostClient(ctx, "edge-b", "elsewhere"); err == nil || !strings.Contains(err.Error(), "does not bind ClusterRole edgemigrate-host") {
		t.Errorf("hostClient over a RoleBinding to admin = %v, want a refusal", err)
	}
}

// waitDefaultSA: pods can be created once the controller manager made the default account.
func waitDefaultSA(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := admin.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("no default ServiceAccount in %s: %v", ns, err)
	}
}

// waitPolicyActive waits until the API server enforces the ValidatingAdmissionPolicy (it
// reads new policies asynchronously): a Service with external IPs is refused by it.
func waitPolicyActive(ctx context.Context, t *testing.T, host kubernetes.Interface, ns string) {
	t.Helper()
	probe := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: corev1.ServiceSpec{ExternalIPs: []string{"192.0.2.1"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := host.CoreV1().Services(ns).Create(ctx, probe, metav1.CreateOptions{})
		if err == nil {
			return false, host.CoreV1().Services(ns).Delete(ctx, probe.Name, metav1.DeleteOptions{})
		}
		return strings.Contains(err.Error(), api.HostValidatingPolicy), nil
	}); err != nil {
		t.Fatalf("the ValidatingAdmissionPolicy %s never took effect: %v", api.HostValidatingPolicy, err)
	}
}

func wantRefused(t *testing.T, what string, err error, message string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: created, want the ValidatingAdmissionPolicy to refuse it", what)
		return
	}
	if !strings.Contains(err.Error(), api.HostValidatingPolicy) || !strings.Contains(err.Error(), message) {
		t.Errorf("%s: %v, want a refusal by %s saying %q", what, err, api.HostValidatingPolicy, message)
	}
}
