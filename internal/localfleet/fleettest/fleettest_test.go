package fleettest

import (
	"fmt"
	"testing"

	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

func TestSkipReason(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		require string // for RequireToolsEnv and RequireRealNodesEnv
		want    bool
	}{
		{"short", errShort, "", true},
		{"short even when tools are required", errShort, "1", true},
		{"tools missing", fmt.Errorf("starting: %w", localcluster.ErrToolsMissing), "", true},
		{"tools missing but required", fmt.Errorf("starting: %w", localcluster.ErrToolsMissing), "1", false},
		{"no real nodes", fmt.Errorf("starting: %w", localcluster.ErrRealNodesUnavailable), "", true},
		{"no real nodes but required", fmt.Errorf("starting: %w", localcluster.ErrRealNodesUnavailable), "1", false},
		{"any other failure", fmt.Errorf("webhook exited"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(RequireToolsEnv, tc.require)
			t.Setenv(clustertest.RequireRealNodesEnv, tc.require)
			if got, reason := skipReason(tc.err); got != tc.want {
				t.Errorf("skipReason(%v) = %v (%q), want %v", tc.err, got, reason, tc.want)
			}
		})
	}
}
