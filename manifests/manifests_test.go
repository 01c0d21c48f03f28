package manifests

import (
	"testing"

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
