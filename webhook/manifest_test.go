package webhook

import (
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/manifests"
)

// manifestWebhookConfig returns the MutatingWebhookConfiguration of manifests/webhook.yaml.
func manifestWebhookConfig(t testing.TB) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	cfg, err := manifests.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestManifest: the shipped configuration is safe for the cluster and matches the server.
func TestManifest(t *testing.T) {
	cfg := manifestWebhookConfig(t)
	if len(cfg.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(cfg.Webhooks))
	}
	w := cfg.Webhooks[0]
	opts := NewOptions()
	if cfg.Name != opts.WebhookConfigName {
		t.Errorf("configuration %q, but --webhook-config-name defaults to %q", cfg.Name, opts.WebhookConfigName)
	}
	check := func(what string, got, want any) {
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("failurePolicy", *w.FailurePolicy, admissionregistrationv1.Ignore)
	check("sideEffects", *w.SideEffects, admissionregistrationv1.SideEffectClassNone)
	check("timeoutSeconds", *w.TimeoutSeconds, int32(5))
	check("reinvocationPolicy", *w.ReinvocationPolicy, admissionregistrationv1.IfNeededReinvocationPolicy)
	check("matchPolicy", *w.MatchPolicy, admissionregistrationv1.Equivalent)
	check("service path", *w.ClientConfig.Service.Path, Path)
	check("service name", w.ClientConfig.Service.Name, ServiceName)
	check("service namespace", w.ClientConfig.Service.Namespace, opts.InstallNamespace)
	if !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("admissionReviewVersions %v, want [v1]", w.AdmissionReviewVersions)
	}
	if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
		!slices.Equal(w.Rules[0].Resources, []string{"pods"}) || !slices.Equal(w.Rules[0].APIGroups, []string{""}) {
		t.Errorf("rules %+v, want pod CREATE only", w.Rules)
	}
	excluded := map[string]bool{}
	for _, e := range w.NamespaceSelector.MatchExpressions {
		if e.Key == corev1.LabelMetadataName && e.Operator == metav1.LabelSelectorOpNotIn {
			for _, v := range e.Values {
				excluded[v] = true
			}
		}
	}
	for _, ns := range []string{"kube-system", "kube-public", "kube-node-lease", opts.InstallNamespace} {
		if !excluded[ns] {
			t.Errorf("namespaceSelector does not exclude %s", ns)
		}
	}
	optOut := false
	for _, e := range w.ObjectSelector.MatchExpressions {
		optOut = optOut || (e.Key == api.LabelMigrate && e.Operator == metav1.LabelSelectorOpNotIn && slices.Equal(e.Values, []string{"false"}))
	}
	if !optOut {
		t.Errorf("objectSelector %+v does not leave out %s=false", w.ObjectSelector, api.LabelMigrate)
	}
}
