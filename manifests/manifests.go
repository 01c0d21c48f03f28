// Package manifests embeds the plain YAML that edgemigrate ships, so that programs (tests,
// the demo) run exactly what operators apply. scheduler-config.yaml,
// scheduler-plugin-config.yaml and webhook.yaml are rendered from the Helm chart, their one source, by `make manifests`; test/chart fails when
// they drift.
package manifests

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	schedconfig "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/api"
)

// SchedulerConfigYAML is scheduler-config.yaml: edgemigrate-scheduler with the extender.
//
//go:embed scheduler-config.yaml
var SchedulerConfigYAML []byte

// SchedulerPluginConfigYAML is scheduler-plugin-config.yaml: the edgemigrate-scheduler build
// with the Jetson plugin (the chart's scheduler.mode plugin).
//
//go:embed scheduler-plugin-config.yaml
var SchedulerPluginConfigYAML []byte

// WebhookYAML is webhook.yaml: the webhook's Deployment, Service, RBAC and
// MutatingWebhookConfiguration.
//
//go:embed webhook.yaml
var WebhookYAML []byte

// MigrationCRDYAML is crds/edgemigrate.io_migrations.yaml: the Migration CRD.
//
//go:embed crds/edgemigrate.io_migrations.yaml
var MigrationCRDYAML []byte

// SchedulerConfig decodes scheduler-config.yaml strictly and checks that it holds the one
// profile and the one extender the rest of edgemigrate expects.
func SchedulerConfig() (*schedconfig.KubeSchedulerConfiguration, error) {
	var cfg schedconfig.KubeSchedulerConfiguration
	if err := yaml.UnmarshalStrict(SchedulerConfigYAML, &cfg); err != nil {
		return nil, fmt.Errorf("decoding scheduler-config.yaml: %w", err)
	}
	if len(cfg.Extenders) != 1 || len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName == nil ||
		*cfg.Profiles[0].SchedulerName != api.SchedulerName {
		return nil, fmt.Errorf("scheduler-config.yaml: want one profile %s and one extender", api.SchedulerName)
	}
	return &cfg, nil
}

// SchedulerPluginConfig decodes scheduler-plugin-config.yaml strictly and checks that it holds
// the one profile, enabling and configuring the Jetson plugin, and no extender.
func SchedulerPluginConfig() (*schedconfig.KubeSchedulerConfiguration, error) {
	var cfg schedconfig.KubeSchedulerConfiguration
	if err := yaml.UnmarshalStrict(SchedulerPluginConfigYAML, &cfg); err != nil {
		return nil, fmt.Errorf("decoding scheduler-plugin-config.yaml: %w", err)
	}
	if len(cfg.Extenders) != 0 || len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName == nil ||
		*cfg.Profiles[0].SchedulerName != api.SchedulerName || cfg.Profiles[0].Plugins == nil ||
		len(cfg.Profiles[0].Plugins.MultiPoint.Enabled) != 1 || cfg.Profiles[0].Plugins.MultiPoint.Enabled[0].Name != api.SchedulerPluginName ||
		len(cfg.Profiles[0].PluginConfig) != 1 || cfg.Profiles[0].PluginConfig[0].Name != api.SchedulerPluginName {
		return nil, fmt.Errorf("scheduler-plugin-config.yaml: want one profile %s enabling and configuring %s, no extender",
			api.SchedulerName, api.SchedulerPluginName)
	}
	return &cfg, nil
}

// WebhookConfiguration decodes, strictly, the MutatingWebhookConfiguration of webhook.yaml.
func WebhookConfiguration() (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	for doc := range strings.SplitSeq(string(WebhookYAML), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("decoding webhook.yaml: %w", err)
		}
		if meta.Kind != "MutatingWebhookConfiguration" {
			continue
		}
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := yaml.UnmarshalStrict([]byte(doc), cfg); err != nil {
			return nil, fmt.Errorf("decoding webhook.yaml: %w", err)
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("webhook.yaml has no MutatingWebhookConfiguration")
}

// InstallYAML is install/edgemigrate.yaml: the whole chart rendered with its defaults.
//
//go:embed install/edgemigrate.yaml
var InstallYAML []byte

// Hosting are the cluster-scoped objects under which a destination hosts peers' services,
// from install/edgemigrate.yaml: ClusterRole api.HostClusterRole and the
// ValidatingAdmissionPolicy api.HostValidatingPolicy with its binding.
type Hosting struct {
	ClusterRole *rbacv1.ClusterRole
	Policy      *admissionregistrationv1.ValidatingAdmissionPolicy
	Binding     *admissionregistrationv1.ValidatingAdmissionPolicyBinding
}

// HostingObjects decodes, strictly, the hosting objects of install/edgemigrate.yaml.
func HostingObjects() (*Hosting, error) {
	h := &Hosting{}
	for doc := range strings.SplitSeq(string(InstallYAML), "\n---\n") {
		var meta struct {
			metav1.TypeMeta   `json:",inline"`
			metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("decoding install/edgemigrate.yaml: %w", err)
		}
		var into any
		switch {
		case meta.Kind == "ClusterRole" && meta.Name == api.HostClusterRole:
			h.ClusterRole = &rbacv1.ClusterRole{}
			into = h.ClusterRole
		case meta.Kind == "ValidatingAdmissionPolicy" && meta.Name == api.HostValidatingPolicy:
			h.Policy = &admissionregistrationv1.ValidatingAdmissionPolicy{}
			into = h.Policy
		case meta.Kind == "ValidatingAdmissionPolicyBinding" && meta.Name == api.HostValidatingPolicy:
			h.Binding = &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
			into = h.Binding
		default:
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			return nil, fmt.Errorf("decoding %s %s of install/edgemigrate.yaml: %w", meta.Kind, meta.Name, err)
		}
	}
	if h.ClusterRole == nil || h.Policy == nil || h.Binding == nil {
		return nil, fmt.Errorf("install/edgemigrate.yaml lacks ClusterRole %s or ValidatingAdmissionPolicy %s and its binding", api.HostClusterRole, api.HostValidatingPolicy)
	}
	return h, nil
}

// InstallHosting creates the hosting objects in a cluster (tests and local fleets, which
// run edgemigrate without the chart); objects that exist are left as they are.
func InstallHosting(ctx context.Context, cs kubernetes.Interface) error {
	h, err := HostingObjects()
	if err != nil {
		return err
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, h.ClusterRole, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRole %s: %w", h.ClusterRole.Name, err)
	}
	adm := cs.AdmissionregistrationV1()
	if _, err := adm.ValidatingAdmissionPolicies().Create(ctx, h.Policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ValidatingAdmissionPolicy %s: %w", h.Policy.Name, err)
	}
	if _, err := adm.ValidatingAdmissionPolicyBindings().Create(ctx, h.Binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ValidatingAdmissionPolicyBinding %s: %w", h.Binding.Name, err)
	}
	return nil
}
