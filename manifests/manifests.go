// Package manifests embeds the plain YAML that edgemigrate ships, so that programs (tests,
// the demo) run exactly what operators apply. scheduler-config.yaml,
// scheduler-plugin-config.yaml and webhook.yaml are rendered from the Helm chart, their one source, by `make manifests`; test/chart fails when
// they drift.
package manifests

import (
	_ "embed"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
