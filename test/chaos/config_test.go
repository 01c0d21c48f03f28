package chaos

import (
	"testing"
	"time"
)

func TestReadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want config
	}{
		{"make test's short run", nil,
			config{seed: defaultSeed, migrations: 10, duration: 2 * time.Minute, settle: defaultSettle, mobilityCars: 3, offloads: 1}},
		{"make chaos", map[string]string{"CHAOS_MIGRATIONS": "50", "CHAOS_SEED": "42"},
			config{seed: 42, migrations: 50, duration: 400 * time.Second, settle: defaultSettle, mobilityCars: maxMobilityCars, offloads: maxOffloads}},
		{"bounds set", map[string]string{"CHAOS_MIGRATIONS": "1", "CHAOS_DURATION": "30s", "CHAOS_SETTLE": "1m"},
			config{seed: defaultSeed, migrations: 1, duration: 30 * time.Second, settle: time.Minute, mobilityCars: 3, offloads: 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"CHAOS_SEED", "CHAOS_MIGRATIONS", "CHAOS_DURATION", "CHAOS_SETTLE"} {
				t.Setenv(k, tt.env[k])
			}
			if got := readConfig(t); got != tt.want {
				t.Errorf("readConfig() = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Setenv("CHAOS_SEED", "random")
	if a, b := readConfig(t).seed, readConfig(t).seed; a == b {
		t.Errorf("two random seeds are both %d", a)
	}
}
