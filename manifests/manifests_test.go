package manifests

import (
	"testing"

	schedconfig "k8s.io/kube-scheduler/config/v1"

	"github.com/edgemigrate/edgemigrate/api"
)

func TestSchedulerConfig(t *testing.T) {
	cfg, err := SchedulerConfig()
	if err != nil {
		t.Fatal(err)
	}
	ext := cfg.Extenders[0]
	if ext.FilterVerb == "" || ext.PrioritizeVerb == "" || ext.BindVerb == "" || !ext.NodeCacheCapable || ext.Ignorable {
		t.Errorf("extender %+v: want filter, prioritize and bind, names only, not ignorable", ext)
	}
	if *cfg.Profiles[0].SchedulerName != api.SchedulerName {
		t.Errorf("profile %s", *cfg.Profiles[0].SchedulerName)
	}
	// Each call returns a fresh copy: callers rewrite the URL.
	again, _ := SchedulerConfig()
	again.Extenders[0].URLPrefix = "http://elsewhere"
	if cfg.Extenders[0].URLPrefix == "http://elsewhere" {
		t.Error("SchedulerConfig results share state")
	}
}

func TestSchedulerPluginConfig(t *testing.T) {
	cfg, err := SchedulerPluginConfig()
	if err != nil {
		t.Fatal(err)
	}
	prof := cfg.Profiles[0]
	if w := prof.Plugins.MultiPoint.Enabled[0].Weight; w == nil || int64(*w) != schedulerConfig(t).Extenders[0].Weight {
		t.Errorf("plugin weight %v, want the extender's", w)
	}
	if *prof.PercentageOfNodesToScore != *schedulerConfig(t).Profiles[0].PercentageOfNodesToScore {
		t.Errorf("percentageOfNodesToScore %d differs from extender mode's", *prof.PercentageOfNodesToScore)
	}
	if cfg.LeaderElection.ResourceNamespace != "edgemigrate-system" {
		t.Errorf("lease namespace %q, want the release's", cfg.LeaderElection.ResourceNamespace)
	}
}

func schedulerConfig(t *testing.T) *schedconfig.KubeSchedulerConfiguration {
	t.Helper()
	cfg, err := SchedulerConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestHostingObjects(t *testing.T) {
	h, err := HostingObjects()
	if err != nil {
		t.Fatal(err)
	}
	if h.ClusterRole.Name != api.HostClusterRole || len(h.ClusterRole.Rules) == 0 || h.Policy.Name != api.HostValidatingPolicy ||
		len(h.Policy.Spec.Validations) == 0 || h.Binding.Spec.PolicyName != api.HostValidatingPolicy {
		t.Errorf("hosting objects %s (%d rules), %s (%d validations), binding of %s", h.ClusterRole.Name, len(h.ClusterRole.Rules),
			h.Policy.Name, len(h.Policy.Spec.Validations), h.Binding.Spec.PolicyName)
	}
}
